"""The guard: room modes and speakers applied to voice commands, end to end in HA.

Real Home Assistant with Private Voice on the session's engine host, the
built-in conversation agent and intents, and real lock, cover, light and
person entities exposed to Assist (a small test integration holds the lock and
covers: no device needed). The room is the Kitchen, with an ESPHome-like
satellite of another integration (a fake: ``fake_esphome``). Commands are sent
as a satellite's pipeline sends them: ``conversation.async_converse`` with the
satellite's id and the guard as agent.

Who spoke is given to voice ID with ``VoiceId.note``, as speech-to-text will
give it (tests that do so say "noted speaker").
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
import time
from typing import Any, Final, Literal, override

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline import (
    async_get_pipelines,
    async_update_pipeline,
)
from homeassistant.components.assist_pipeline.pipeline import (
    KEY_ASSIST_PIPELINE,
    async_get_pipeline,
)
from homeassistant.components.conversation.chat_log import current_chat_log
from homeassistant.components.cover import (
    CoverDeviceClass,
    CoverEntity,
    CoverEntityFeature,
)
from homeassistant.components.homeassistant.exposed_entities import (
    async_expose_entity,
)
from homeassistant.components.lock import LockEntity
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import STATE_OFF, STATE_ON, Platform
from homeassistant.core import Context, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import (
    area_registry as ar,
    entity_registry as er,
    intent,
    issue_registry as ir,
    translation,
)
from homeassistant.helpers.chat_session import async_get_chat_session
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    MockUser,
    async_fire_time_changed,
    mock_config_flow,
    mock_integration,
    mock_platform,
)

from custom_components.private_voice.const import (
    CONF_GUARD_AGENT,
    CONF_SENSITIVE_ACTIONS,
    DEFAULT_GUARD_AGENT,
    DOMAIN,
)
from custom_components.private_voice.conversation import guard_entity_id
from custom_components.private_voice.pipeline import (
    ISSUE_GUARD_BYPASSED,
    ISSUE_ROOM_UNGUARDED,
    PIPELINE_NAME,
    RECHECK_INTERVAL,
    async_ensure_pipeline,
)
from custom_components.private_voice.privacy.policy import PrivacyMode
from custom_components.private_voice.privacy.sensitive import SensitiveAction
from custom_components.private_voice.voice_id import Identification

from .fake_esphome import FakeEsphome, async_set_up_fake_esphome

FAKE_HOME: Final = "fake_home"
FRONT_DOOR: Final = "lock.front_door"
GARAGE_DOOR: Final = "cover.garage_door"
AWNING: Final = "cover.patio_awning"
ALICE: Final = "person.alice"
BOB: Final = "person.bob"


class FakeLock(LockEntity):
    """A lock that does what it is told at once."""

    _attr_should_poll = False

    def __init__(self, name: str) -> None:
        """Start locked."""
        self._attr_name = name
        self._attr_unique_id = f"{FAKE_HOME}-{name}"
        self._attr_is_locked = True

    @override
    async def async_lock(self, **kwargs: Any) -> None:
        self._attr_is_locked = True
        self.async_write_ha_state()

    @override
    async def async_unlock(self, **kwargs: Any) -> None:
        self._attr_is_locked = False
        self.async_write_ha_state()


class FakeCover(CoverEntity):
    """A cover of a given class that opens and closes at once."""

    _attr_should_poll = False
    _attr_supported_features = CoverEntityFeature.OPEN | CoverEntityFeature.CLOSE

    def __init__(self, name: str, device_class: CoverDeviceClass) -> None:
        """Start closed."""
        self._attr_name = name
        self._attr_unique_id = f"{FAKE_HOME}-{name}"
        self._attr_device_class = device_class
        self._attr_is_closed = True

    @override
    async def async_open_cover(self, **kwargs: Any) -> None:
        self._attr_is_closed = False
        self.async_write_ha_state()

    @override
    async def async_close_cover(self, **kwargs: Any) -> None:
        self._attr_is_closed = True
        self.async_write_ha_state()


async def async_set_up_fake_home(hass: HomeAssistant) -> None:
    """Set up the lock and covers; expose them, and people, to Assist."""
    entities = {
        Platform.LOCK: [FakeLock("Front door")],
        Platform.COVER: [
            FakeCover("Garage door", CoverDeviceClass.GARAGE),
            FakeCover("Patio awning", CoverDeviceClass.AWNING),
        ],
    }

    async def _setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        await hass.config_entries.async_forward_entry_setups(entry, list(entities))
        return True

    async def _unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        return await hass.config_entries.async_unload_platforms(entry, list(entities))

    def _platform(platform_entities: list[Any]) -> MockPlatform:
        async def _add(
            hass: HomeAssistant,
            entry: ConfigEntry,
            async_add_entities: AddConfigEntryEntitiesCallback,
        ) -> None:
            async_add_entities(platform_entities)

        return MockPlatform(async_setup_entry=_add)

    mock_integration(
        hass,
        MockModule(
            FAKE_HOME, async_setup_entry=_setup_entry, async_unload_entry=_unload_entry
        ),
    )
    for platform, platform_entities in entities.items():
        mock_platform(hass, f"{FAKE_HOME}.{platform}", _platform(platform_entities))
    # Entries are only set up for integrations with a config flow.
    mock_platform(hass, f"{FAKE_HOME}.config_flow", MockPlatform())
    entry = MockConfigEntry(domain=FAKE_HOME)
    entry.add_to_hass(hass)
    with mock_config_flow(FAKE_HOME, ConfigFlow):
        assert await hass.config_entries.async_setup(entry.entry_id)
    assert await async_setup_component(
        hass,
        "person",
        {"person": [{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}]},
    )
    await hass.async_block_till_done()
    for entity_id in (FRONT_DOOR, GARAGE_DOOR, AWNING, ALICE):
        assert hass.states.get(entity_id) is not None, entity_id
        async_expose_entity(hass, conversation.DOMAIN, entity_id, should_expose=True)


@dataclass
class Home:
    """The home the guard works in."""

    hass: HomeAssistant
    entry: MockConfigEntry
    satellite: FakeEsphome
    kitchen: str
    light: str

    @property
    def guard(self) -> str:
        """The guard's entity id."""
        found = guard_entity_id(self.hass, self.entry)
        assert found is not None
        return found

    def mode(self, mode: PrivacyMode) -> None:
        """Put the Kitchen in ``mode``."""
        self.entry.runtime_data.rooms.async_set_policy(self.kitchen, mode=mode)

    def noted_speaker(
        self, person: str | None, *, may_run_sensitive: bool = False
    ) -> None:
        """Tell voice ID who just spoke at the satellite (as speech-to-text will)."""
        self.entry.runtime_data.voice_id.note(
            self.satellite.satellite_id,
            Identification(
                person=person,
                score=0.9 if person else 0.2,
                may_run_sensitive=may_run_sensitive,
                at=time.monotonic(),
            ),
        )

    async def say(
        self,
        text: str,
        *,
        conversation_id: str | None = None,
        agent_id: str | None = None,
    ) -> conversation.ConversationResult:
        """Say ``text`` at the Kitchen satellite, as its pipeline hands it on."""
        return await conversation.async_converse(
            self.hass,
            text,
            conversation_id,
            Context(),
            language="en",
            agent_id=agent_id or self.guard,
            satellite_id=self.satellite.satellite_id,
        )


@pytest.fixture
async def home(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    kitchen_light: str,
    area_registry: ar.AreaRegistry,
) -> Home:
    """Private Voice, a satellite in the Kitchen, a lock, covers, a light, people."""
    assert await async_setup_component(hass, "intent", {})
    assert await async_setup_component(hass, "conversation", {})
    await async_set_up_fake_home(hass)
    kitchen = area_registry.async_get_area_by_name("Kitchen")
    assert kitchen is not None
    satellite = await async_set_up_fake_esphome(hass, kitchen.id)
    entry = init_integration
    assert entry.runtime_data.rooms.room_of_entity(satellite.satellite_id) is not None
    return Home(hass, entry, satellite, kitchen.id, kitchen_light)


def _speech(result: conversation.ConversationResult) -> str:
    return str(result.response.speech.get("plain", {}).get("speech", ""))


async def _message(hass: HomeAssistant, key: str, **placeholders: str) -> str:
    strings = await translation.async_get_translations(
        hass, "en", "exceptions", {DOMAIN}
    )

    def text(key: str) -> str:
        return strings[f"component.{DOMAIN}.exceptions.{key}.message"]

    if "action" in placeholders:
        placeholders["action"] = text(f"guard_action_{placeholders['action']}")
    return text(key).format(**placeholders)


def _locked(hass: HomeAssistant) -> bool:
    state = hass.states.get(FRONT_DOOR)
    assert state is not None
    return state.state == "locked"


def _cover(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


# Unlocking -------------------------------------------------------------------


async def test_unknown_voice_cannot_unlock(hass: HomeAssistant, home: Home) -> None:
    """Normal room, a voice nobody enrolled: refused with a spoken reason."""
    home.noted_speaker(None)
    result = await home.say("unlock the front door")
    assert _locked(hass)
    assert result.response.response_type is intent.IntentResponseType.ERROR
    assert _speech(result) == await _message(
        hass, "guard_unknown_speaker", action=SensitiveAction.LOCK_UNLOCK
    )
    assert _speech(result) == "I can't unlock doors for a voice I don't recognise."


@pytest.mark.parametrize(
    "text",
    [
        "please could you unlock the front door for me",
        "front door unlock",
        # A misheard name: the built-in agent's fallback still finds the lock.
        "unlock the frunt door",
    ],
)
async def test_other_wordings_are_seen(
    hass: HomeAssistant, home: Home, text: str
) -> None:
    """Wordings the built-in agent unlocks with are refused for an unknown voice."""
    await home.say(text, agent_id=conversation.HOME_ASSISTANT_AGENT)
    assert not _locked(hass), "the built-in agent no longer unlocks with this"
    await hass.services.async_call(
        "lock", "lock", {"entity_id": FRONT_DOOR}, blocking=True
    )
    result = await home.say(text)
    assert _locked(hass)
    assert _speech(result) == await _message(
        hass, "guard_unknown_speaker", action=SensitiveAction.LOCK_UNLOCK
    )


async def test_no_identification_cannot_unlock(hass: HomeAssistant, home: Home) -> None:
    """Nothing identified the voice at all (voice ID had nothing): refused."""
    result = await home.say("unlock the front door")
    assert _locked(hass)
    assert _speech(result) == await _message(
        hass, "guard_unknown_speaker", action=SensitiveAction.LOCK_UNLOCK
    )


async def test_allowed_person_unlocks(hass: HomeAssistant, home: Home) -> None:
    """Noted speaker: an enrolled person allowed to unlock does."""
    home.noted_speaker(ALICE, may_run_sensitive=True)
    result = await home.say("unlock the front door")
    assert not _locked(hass)
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE


async def test_person_not_allowed_cannot_unlock(
    hass: HomeAssistant, home: Home
) -> None:
    """Noted speaker: enrolled, but not allowed sensitive actions: refused."""
    home.noted_speaker(BOB, may_run_sensitive=False)
    result = await home.say("unlock the front door")
    assert _locked(hass)
    assert _speech(result) == await _message(
        hass, "guard_speaker_not_allowed", action=SensitiveAction.LOCK_UNLOCK
    )


async def test_muted_room_refuses_the_allowed_person(
    hass: HomeAssistant, home: Home
) -> None:
    """Noted speaker: a command said to be from a Muted room is refused.

    (No voice reaches the hub from a Muted room; text said to come from one,
    such as an automation naming its satellite, is refused all the same.)
    """
    home.mode(PrivacyMode.MUTED)
    home.noted_speaker(ALICE, may_run_sensitive=True)
    result = await home.say("unlock the front door")
    assert _locked(hass)
    assert _speech(result) == await _message(hass, "guard_muted", room="Kitchen")


async def test_guest_room_refuses_the_allowed_person(
    hass: HomeAssistant, home: Home
) -> None:
    """Noted speaker: in Guest mode even an allowed person is refused."""
    home.mode(PrivacyMode.GUEST)
    home.noted_speaker(ALICE, may_run_sensitive=True)
    result = await home.say("unlock the front door")
    assert _locked(hass)
    assert _speech(result) == await _message(
        hass, "guard_guest_sensitive", room="Kitchen"
    )
    assert (
        _speech(result) == "Sensitive actions are off while Kitchen is in Guest mode."
    )


async def test_locking_is_not_sensitive(hass: HomeAssistant, home: Home) -> None:
    """Anybody may lock a door."""
    home.noted_speaker(ALICE, may_run_sensitive=True)
    await home.say("unlock the front door")
    assert not _locked(hass)
    home.noted_speaker(None)
    result = await home.say("lock the front door")
    assert _locked(hass)
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE


# Covers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speaker", "allowed", "mode", "opens"),
    [
        (None, False, PrivacyMode.NORMAL, False),
        (BOB, False, PrivacyMode.NORMAL, False),
        (ALICE, True, PrivacyMode.NORMAL, True),
        (ALICE, True, PrivacyMode.GUEST, False),
        (ALICE, True, PrivacyMode.QUIET, True),
    ],
)
async def test_garage_door(  # noqa: PLR0913, PLR0917 - one row of the table
    hass: HomeAssistant,
    home: Home,
    speaker: str | None,
    allowed: bool,  # noqa: FBT001 - a row of the table
    mode: PrivacyMode,
    opens: bool,  # noqa: FBT001
) -> None:
    """Noted speaker: the garage door opens only for an allowed person, not in Guest."""
    home.mode(mode)
    home.noted_speaker(speaker, may_run_sensitive=allowed)
    result = await home.say("open the garage door")
    assert _cover(hass, GARAGE_DOOR) == ("open" if opens else "closed")
    refused = result.response.response_type is intent.IntentResponseType.ERROR
    assert refused is not opens


async def test_awning_is_not_sensitive(hass: HomeAssistant, home: Home) -> None:
    """An unknown voice opens the awning: a cover, but no entrance."""
    result = await home.say("open the patio awning")
    assert _cover(hass, AWNING) == "open"
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE


async def test_sensitive_list_is_the_users(hass: HomeAssistant, home: Home) -> None:
    """A kind the user took off the list passes; the others are still refused."""
    await _async_set_options(
        hass,
        home.entry,
        sensitive_actions=[SensitiveAction.LOCK_UNLOCK],
    )
    await home.say("open the garage door")
    assert _cover(hass, GARAGE_DOOR) == "open"
    await home.say("unlock the front door")
    assert _locked(hass)


# Everything else passes unchanged ---------------------------------------------------


async def test_light_passes_unchanged(hass: HomeAssistant, home: Home) -> None:
    """An unknown voice turns the light on; the answer is the built-in agent's own."""
    built_in = await home.say(
        "turn on the kitchen light", agent_id=conversation.HOME_ASSISTANT_AGENT
    )
    assert hass.states.get(home.light).state == STATE_ON
    await hass.services.async_call(
        "light", "turn_off", {"entity_id": home.light}, blocking=True
    )
    guarded = await home.say("turn on the kitchen light")
    assert hass.states.get(home.light).state == STATE_ON
    assert guarded.response.as_dict() == built_in.response.as_dict()
    assert _speech(guarded)


async def test_quiet_room_acts_without_speech(hass: HomeAssistant, home: Home) -> None:
    """Quiet: the command runs, nothing is spoken, the chat log keeps the answer."""
    home.mode(PrivacyMode.QUIET)
    result = await home.say("turn on the kitchen light")
    assert hass.states.get(home.light).state == STATE_ON
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE
    assert _speech(result) == ""
    assert result.conversation_id is not None
    with _chat_log(hass, result.conversation_id) as content:
        assert content[-1]["role"] == "assistant"
        assert content[-1]["content"]


async def test_typed_by_logged_in_user_passes(
    hass: HomeAssistant, home: Home, hass_admin_user: MockUser
) -> None:
    """Typed in the app (no satellite, a logged-in user): the login is trusted."""
    result = await conversation.async_converse(
        hass,
        "unlock the front door",
        None,
        Context(user_id=hass_admin_user.id),
        language="en",
        agent_id=home.guard,
    )
    assert not _locked(hass)
    assert result.response.response_type is intent.IntentResponseType.ACTION_DONE


async def test_no_satellite_no_user_is_refused(hass: HomeAssistant, home: Home) -> None:
    """No satellite and no user (an automation): nobody recognised, refused."""
    result = await conversation.async_converse(
        hass,
        "unlock the front door",
        None,
        Context(),
        language="en",
        agent_id=home.guard,
    )
    assert _locked(hass)
    assert _speech(result) == await _message(
        hass, "guard_unknown_speaker", action=SensitiveAction.LOCK_UNLOCK
    )


async def test_device_id_finds_the_satellite(hass: HomeAssistant, home: Home) -> None:
    """A command with the satellite's device only finds its room all the same."""
    home.mode(PrivacyMode.GUEST)
    entity = er.async_get(hass).async_get(home.satellite.satellite_id)
    assert entity is not None
    result = await conversation.async_converse(
        hass,
        "unlock the front door",
        None,
        Context(),
        language="en",
        agent_id=home.guard,
        device_id=entity.device_id,
    )
    assert _locked(hass)
    assert _speech(result) == await _message(
        hass, "guard_guest_sensitive", room="Kitchen"
    )


async def test_guest_room_keeps_where_people_are(
    hass: HomeAssistant, home: Home
) -> None:
    """Guest: where a person is is not said; in Normal the built-in agent says it."""
    normal = await home.say("where is Alice")
    assert normal.response.response_type is intent.IntentResponseType.QUERY_ANSWER
    home.mode(PrivacyMode.GUEST)
    guest = await home.say("where is Alice")
    assert guest.response.response_type is intent.IntentResponseType.ERROR
    assert _speech(guest) == await _message(
        hass, "guard_guest_personal", room="Kitchen"
    )


# Chat sessions -------------------------------------------------------------------


@contextmanager
def _chat_log(
    hass: HomeAssistant, conversation_id: str
) -> Iterator[list[dict[str, Any]]]:
    """Open a conversation's chat log; yield its content as dicts."""
    with (
        async_get_chat_session(hass, conversation_id) as session,
        conversation.async_get_chat_log(hass, session) as chat_log,
    ):
        assert chat_log.conversation_id == conversation_id
        yield [content.as_dict() for content in chat_log.content]


async def test_one_chat_session_with_the_agent(hass: HomeAssistant, home: Home) -> None:
    """The guard and the built-in agent share one chat session and one chat log."""
    first = await home.say("turn on the kitchen light")
    assert first.conversation_id is not None
    second = await home.say(
        "turn off the kitchen light", conversation_id=first.conversation_id
    )
    assert second.conversation_id == first.conversation_id
    assert hass.states.get(home.light).state == STATE_OFF
    with _chat_log(hass, first.conversation_id) as content:
        said = [c.get("content") for c in content if c["role"] == "user"]
        # Each sentence once: the agent found the guard's log, not a new one.
        assert said == ["turn on the kitchen light", "turn off the kitchen light"]
        answers = [c for c in content if c["role"] == "assistant" and c.get("content")]
        assert [a["content"] for a in answers] == [_speech(first), _speech(second)]
        assert {a["agent_id"] for a in answers} == {conversation.HOME_ASSISTANT_AGENT}


async def test_refusal_is_in_the_chat_log(hass: HomeAssistant, home: Home) -> None:
    """A refusal is the guard's answer in the conversation, and nothing ran."""
    result = await home.say("unlock the front door")
    assert result.conversation_id is not None
    with _chat_log(hass, result.conversation_id) as content:
        assert [c["role"] for c in content] == ["system", "user", "assistant"]
        assert content[-1]["content"] == _speech(result)
        assert content[-1]["agent_id"] == home.guard


# The chosen agent --------------------------------------------------------------------


class MockDownstreamAgent(conversation.AbstractConversationAgent):
    """A mock of another conversation agent (an LLM's): records what it gets."""

    def __init__(self) -> None:
        """Nothing received yet."""
        self.received: list[conversation.ConversationInput] = []
        self.chat_log_ids: list[str | None] = []

    @property
    @override
    def supported_languages(self) -> Literal["*"]:
        return "*"

    @override
    async def async_process(
        self, user_input: conversation.ConversationInput
    ) -> conversation.ConversationResult:
        self.received.append(user_input)
        log = current_chat_log.get()
        self.chat_log_ids.append(log.conversation_id if log else None)
        response = intent.IntentResponse(language=user_input.language)
        response.async_set_speech("The mock agent answers.")
        return conversation.ConversationResult(
            response=response, conversation_id=user_input.conversation_id
        )


async def _async_set_options(
    hass: HomeAssistant, entry: MockConfigEntry, **options: Any
) -> dict[str, Any]:
    """Submit the options form with ``options`` changed; return the result."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**entry.options, **options}
    )
    await hass.async_block_till_done()
    return dict(result)


async def test_downstream_agent_option_with_mock_agent(
    hass: HomeAssistant, home: Home
) -> None:
    """With a mock agent chosen, the guard hands it the command as it came."""
    agent = MockDownstreamAgent()
    agent_entry = MockConfigEntry(domain="mock_llm", title="Mock LLM")
    agent_entry.add_to_hass(hass)
    conversation.async_set_agent(hass, agent_entry, agent)
    result = await _async_set_options(
        hass, home.entry, **{CONF_GUARD_AGENT: agent_entry.entry_id}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert home.entry.options[CONF_GUARD_AGENT] == agent_entry.entry_id

    answer = await home.say("what time is it")
    assert _speech(answer) == "The mock agent answers."
    (received,) = agent.received
    assert received.text == "what time is it"
    assert received.satellite_id == home.satellite.satellite_id
    assert received.agent_id == agent_entry.entry_id
    assert received.conversation_id == answer.conversation_id
    assert agent.chat_log_ids == [answer.conversation_id]

    # Still guarded: the sensitive command never reaches the agent.
    refused = await home.say("unlock the front door")
    assert refused.response.response_type is intent.IntentResponseType.ERROR
    assert len(agent.received) == 1


async def test_guest_room_adds_nothing_about_the_speaker_with_mock_agent(
    hass: HomeAssistant, home: Home
) -> None:
    """Guest, noted speaker: the mock agent gets the words and no name, no prompt."""
    agent = MockDownstreamAgent()
    agent_entry = MockConfigEntry(domain="mock_llm", title="Mock LLM")
    agent_entry.add_to_hass(hass)
    conversation.async_set_agent(hass, agent_entry, agent)
    await _async_set_options(
        hass, home.entry, **{CONF_GUARD_AGENT: agent_entry.entry_id}
    )
    home.mode(PrivacyMode.GUEST)
    home.noted_speaker(ALICE, may_run_sensitive=True)
    await home.say("tell me a joke")
    (received,) = agent.received
    assert received.text == "tell me a joke"
    assert received.extra_system_prompt is None
    assert "alice" not in repr(received.as_dict()).casefold()


async def test_guard_cannot_be_its_own_agent(hass: HomeAssistant, home: Home) -> None:
    """The options refuse the guard as the agent behind the guard."""
    result = await _async_set_options(
        hass, home.entry, **{CONF_GUARD_AGENT: home.guard}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_GUARD_AGENT: "guard_is_agent"}


async def test_options_default_to_built_in_agent_and_every_kind(
    hass: HomeAssistant, home: Home
) -> None:
    """Submitted unchanged, the options name Home Assistant and every kind."""
    result = await _async_set_options(hass, home.entry)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert home.entry.options[CONF_GUARD_AGENT] == DEFAULT_GUARD_AGENT
    assert home.entry.options[CONF_SENSITIVE_ACTIONS] == sorted(
        action.value for action in SensitiveAction
    )


# The pipeline ------------------------------------------------------------------------


def _ours(hass: HomeAssistant) -> list[Any]:
    return [p for p in async_get_pipelines(hass) if p.name == PIPELINE_NAME]


async def test_pipeline_created_once_and_deletion_respected(
    hass: HomeAssistant, home: Home
) -> None:
    """Created with our engines and the guard; not again, not after deletion."""
    await async_ensure_pipeline(hass, home.entry)
    (pipeline,) = _ours(hass)
    assert pipeline.conversation_engine == home.guard
    assert pipeline.prefer_local_intents is False
    assert pipeline.stt_engine is not None
    assert pipeline.stt_engine.startswith("stt.")
    assert pipeline.tts_engine is not None
    assert pipeline.tts_engine.startswith("tts.")
    assert pipeline.wake_word_entity is not None
    assert pipeline.wake_word_id

    await async_ensure_pipeline(hass, home.entry)
    assert len(_ours(hass)) == 1

    await hass.data[KEY_ASSIST_PIPELINE].pipeline_store.async_delete_item(pipeline.id)
    assert await hass.config_entries.async_reload(home.entry.entry_id)
    await hass.async_block_till_done()
    await async_ensure_pipeline(hass, home.entry)
    assert _ours(hass) == []


async def test_guard_bypassed_repair(
    hass: HomeAssistant, home: Home, issue_registry: ir.IssueRegistry
) -> None:
    """Prefer local intents on the guard's pipeline raises a repair; off clears it."""
    await async_ensure_pipeline(hass, home.entry)
    (pipeline,) = _ours(hass)
    issue_id = f"{ISSUE_GUARD_BYPASSED}_{pipeline.id}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

    await async_update_pipeline(hass, pipeline, prefer_local_intents=True)
    await hass.async_block_till_done()
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_GUARD_BYPASSED
    assert issue.translation_placeholders == {"pipeline": PIPELINE_NAME}

    (pipeline,) = _ours(hass)
    await async_update_pipeline(hass, pipeline, prefer_local_intents=False)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_spoken_reasons_have_text(hass: HomeAssistant, home: Home) -> None:
    """Every reason the guard may speak, and every kind's words, are translated."""
    strings = await translation.async_get_translations(
        hass, "en", "exceptions", {DOMAIN}
    )
    keys = [
        "guard_muted",
        "guard_guest_sensitive",
        "guard_unknown_speaker",
        "guard_speaker_not_allowed",
        "guard_guest_personal",
        "guard_agent_missing",
        *(f"guard_action_{action}" for action in SensitiveAction),
    ]
    for key in keys:
        assert strings.get(f"component.{DOMAIN}.exceptions.{key}.message"), key


async def test_room_unguarded_repair(
    hass: HomeAssistant, home: Home, issue_registry: ir.IssueRegistry
) -> None:
    """A room whose satellite's pipeline has no guard gets a repair.

    The fake satellite runs the preferred pipeline, Home Assistant's own with
    the built-in agent; once the guard's pipeline is preferred, the repair
    goes (at the next look: Home Assistant announces no preferred change).
    """
    issue_id = f"{ISSUE_ROOM_UNGUARDED}_{home.kitchen}"
    preferred = async_get_pipeline(hass, None)
    assert preferred.conversation_engine != home.guard
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_ROOM_UNGUARDED
    assert issue.translation_placeholders == {
        "room": "Kitchen",
        "satellites": hass.states.get(home.satellite.satellite_id).name,
        "pipelines": preferred.name,
    }

    (pipeline,) = _ours(hass)
    hass.data[KEY_ASSIST_PIPELINE].pipeline_store.async_set_preferred_item(pipeline.id)
    async_fire_time_changed(hass, dt_util.utcnow() + RECHECK_INTERVAL)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

    # A pipeline's agent changed: looked at again at once.
    await async_update_pipeline(
        hass, pipeline, conversation_engine=conversation.HOME_ASSISTANT_AGENT
    )
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
