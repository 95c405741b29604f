"""Voice ID end to end: enrolment at a satellite, identification, forgetting.

The satellite is the simulator of ESP32-S3 firmware (on-device wake) in the
Kitchen, answered by ``PromptedSatellite``'s person; the engines are the
session's engine host (its GE2E voice encoder included) behind a counting
proxy. Bob is piper's voice; Alice is a real person, from the AMI meeting
recordings (``tests/speakers``). Telling people apart is measured in
``test_voice_id_speakers``; here it is the path: what is asked, kept, said,
shown, and what the guard lets a voice do.
"""

from collections.abc import AsyncIterator, Iterator
import json
from pathlib import Path
from typing import Any

from homeassistant.components.assist_pipeline import async_get_pipelines
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    area_registry as ar,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.private_voice.const import DOMAIN
from custom_components.private_voice.privacy.policy import PrivacyMode
from custom_components.private_voice.protocol.client import Endpoint
from custom_components.private_voice.spoken import async_spoken_text
from custom_components.private_voice.voice_id import PHRASES

from .conftest import KITCHEN_LIGHT, run_engine_host
from .engine_proxy import TRANSCRIBE, EngineProxy
from .engines import (
    COMMAND,
    async_set_up_guarded,
    silence,
    speech,
)
from .fake_esphome import async_set_up_fake_esphome
from .prompted_satellite import PromptedSatellite
from .speakers import Utterance, fetch, locate, split, utterances
from .test_assist_satellite import add_satellite
from .test_guard import FRONT_DOOR, async_set_up_fake_home
from .test_retention import _container, _snapshot
from .waiting import until

# Bob speaks with piper's voice; Alice with a real person's (see tests/speakers).
JOE = "person.bob"
ANNA = "person.alice"


def utterance(text: str) -> bytes:
    """Piper saying ``text``, with the silence that ends an utterance."""
    return silence(0.3) + speech(text) + silence(1.2)


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Keep what the tests write (the store) in a fresh folder."""
    return hass_tmp_config_dir


@pytest.fixture
async def people(hass: HomeAssistant) -> None:
    """Alice and Bob live here, with a front door lock and a garage door.

    (Diagnostics too: they, like people, add web views before the server starts.)
    """
    assert await async_setup_component(hass, "diagnostics", {})
    assert await async_setup_component(hass, "intent", {})
    assert await async_setup_component(hass, "conversation", {})
    await async_set_up_fake_home(hass)


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    people: None,
    hass_ws_client: WebSocketGenerator,
    engine_proxy: EngineProxy,
    free_port: int,
) -> MockConfigEntry:
    """Private Voice on the engines behind the proxy, guarded."""
    return await async_set_up_guarded(
        hass, hass_ws_client, engine_proxy.endpoint, free_port
    )


@pytest.fixture
async def kitchen(area_registry: ar.AreaRegistry, kitchen_light: str) -> str:
    """Return the Kitchen's area id (the kitchen light's area)."""
    area = area_registry.async_get_area_by_name("Kitchen")
    assert area is not None
    return area.id


@pytest.fixture
async def satellite(
    hass: HomeAssistant, entry: MockConfigEntry, kitchen: str
) -> AsyncIterator[PromptedSatellite]:
    """Return a satellite in the Kitchen, connected, nobody speaking yet."""
    satellite = PromptedSatellite()
    await satellite.start()
    await add_satellite(hass, entry, satellite, kitchen)
    await until(lambda: satellite.recording.of_type("run-satellite"))
    yield satellite
    await satellite.stop()


def satellite_entity(hass: HomeAssistant) -> str:
    """Return the satellite's assist_satellite entity id."""
    [entity] = [
        entity.entity_id
        for entity in er.async_get(hass).entities.values()
        if entity.domain == "assist_satellite" and entity.platform == DOMAIN
    ]
    return entity


async def enroll(
    hass: HomeAssistant,
    satellite: PromptedSatellite,
    person: str,
    answers: list[bytes],
    **data: Any,
) -> dict[str, Any]:
    """Enrol ``person``, who answers the prompts with ``answers``."""
    satellite.answers.extend(answers)
    response = await hass.services.async_call(
        DOMAIN,
        "enroll_speaker",
        {"person": person, "satellite": satellite_entity(hass), **data},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


def stored(hass_storage: dict[str, Any], entry: MockConfigEntry) -> dict[str, Any]:
    """Return the voice prints' store as it is saved (JSON, as on disk)."""
    return json.loads(
        json.dumps(hass_storage[f"{DOMAIN}.{entry.entry_id}.voice_prints"])
    )


def room_entity(hass: HomeAssistant, domain: str, area_id: str, key: str) -> str:
    """Return the entity id of one of a room's entities, by its key."""
    [entity_id] = [
        entity.entity_id
        for entity in er.async_get(hass).entities.values()
        if entity.domain == domain
        and entity.platform == DOMAIN
        and entity.unique_id.endswith(f"-room-{area_id}-{key}")
    ]
    return entity_id


async def select_mode(hass: HomeAssistant, area_id: str, mode: PrivacyMode) -> None:
    """Choose a room's mode as the UI does."""
    await hass.services.async_call(
        "select",
        "select_option",
        {
            "entity_id": room_entity(hass, "select", area_id, "privacy_mode"),
            "option": mode,
        },
        blocking=True,
    )


async def played_after(satellite: PromptedSatellite, replies: int) -> None:
    """Wait until a reply after the first ``replies`` has been played to its end."""
    await until(lambda: len(satellite.recording.replies) > replies)
    await until(lambda: satellite.recording.replies[-1].stopped)


def last_speaker(hass: HomeAssistant, area_id: str) -> str:
    """Return the room's Last speaker state."""
    state = hass.states.get(room_entity(hass, "sensor", area_id, "last_speaker"))
    assert state is not None
    return state.state


def audio_files(config_dir: Path) -> list[Path]:
    """Every file under the config folder that is in an audio format."""
    return [
        path
        for path in _snapshot([config_dir], set())
        if _container(path.read_bytes()[:4096]) is not None
    ]


async def test_enrolment_keeps_a_print_and_no_audio(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    satellite: PromptedSatellite,
    engine_proxy: EngineProxy,
    hass_client: ClientSessionGenerator,
) -> None:
    """Three prompts said, three phrases heard, one print stored, and said so.

    Nothing of the phrases is acted on or answered; the store holds 256
    numbers for Joe and nothing else of his.
    """
    response = await enroll(
        hass, satellite, JOE, [utterance(phrase) for phrase in PHRASES[:3]]
    )
    assert response["person"] == JOE
    assert response["quality"] in {"good", "fair"}
    assert response["phrases"] == 3
    assert len(response["agreement"]) == 3
    # Three prompts, then the thanks: each in the hub's voice.
    await until(lambda: len(satellite.recording.replies) == 4)
    assert all(reply.stopped for reply in satellite.recording.replies)
    # The phrases went to the engine with a request for their print; no
    # phrase was acted on (no text-to-speech answer, no transcript-only
    # reply played).
    transcriptions = engine_proxy.of(TRANSCRIBE)
    assert len(transcriptions) == 3
    assert all(connection.voice_print_asked for connection in transcriptions)
    await hass.async_block_till_done()
    data = stored(hass_storage, entry)["data"]
    assert list(data) == [JOE]
    assert len(data[JOE]["print"]) == 256
    assert set(data[JOE]) == {
        "print",
        "phrases",
        "agreement",
        "quality",
        "sensitive",
        "enrolled",
    }
    assert data[JOE]["phrases"] == 3
    assert data[JOE]["sensitive"] is False
    assert data[JOE]["quality"] == response["quality"]
    config_dir = Path(hass.config.config_dir)
    assert await hass.async_add_executor_job(audio_files, config_dir) == []
    # Diagnostics say who is enrolled and how well; never the print.
    report = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert report["voice_id"][JOE]["quality"] == response["quality"]
    assert "print" not in report["voice_id"][JOE]
    assert str(data[JOE]["print"][0]) not in json.dumps(report)


async def test_an_enrolled_voice_is_identified_in_its_room(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    kitchen: str,
    satellite: PromptedSatellite,
    engine_proxy: EngineProxy,
) -> None:
    """After enrolment, Joe's command is his: the room's Last speaker says so.

    In Guest the engine is not even asked for a print, and Last speaker keeps
    its value; once Joe is forgotten, nothing is asked either.
    """
    await enroll(hass, satellite, JOE, [utterance(phrase) for phrase in PHRASES[:3]])
    assert last_speaker(hass, kitchen) == "unknown"

    await satellite.say(utterance(COMMAND))
    await until(lambda: hass.states.get(KITCHEN_LIGHT).state == "on")
    await until(lambda: last_speaker(hass, kitchen) == "Bob")
    assert engine_proxy.of(TRANSCRIBE)[-1].voice_print_asked

    await select_mode(hass, kitchen, PrivacyMode.GUEST)
    asked = len(engine_proxy.of(TRANSCRIBE))
    await satellite.say(utterance("Turn off the kitchen lights."))
    await until(lambda: hass.states.get(KITCHEN_LIGHT).state == "off")
    assert len(engine_proxy.of(TRANSCRIBE)) == asked + 1
    assert not engine_proxy.of(TRANSCRIBE)[-1].voice_print_asked
    assert last_speaker(hass, kitchen) == "Bob"

    await select_mode(hass, kitchen, PrivacyMode.NORMAL)
    await hass.services.async_call(
        DOMAIN, "forget_speaker", {"person": JOE}, blocking=True
    )
    assert stored(hass_storage, entry)["data"] == {}
    replies = len(satellite.recording.replies)
    await satellite.say(utterance(COMMAND))
    await until(lambda: hass.states.get(KITCHEN_LIGHT).state == "on")
    assert not engine_proxy.of(TRANSCRIBE)[-1].voice_print_asked
    # The answer is played before the test ends.
    await played_after(satellite, replies)


async def test_enrolment_refusals(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    kitchen: str,
    satellite: PromptedSatellite,
) -> None:
    """Enrolment is refused in Guest, Muted and Quiet, for no person, or unheard.

    A phrase nobody says is asked again once, then the enrolment fails and
    nothing is stored.
    """
    for mode in (PrivacyMode.GUEST, PrivacyMode.MUTED, PrivacyMode.QUIET):
        await select_mode(hass, kitchen, mode)
        with pytest.raises(ServiceValidationError) as err:
            await enroll(hass, satellite, JOE, [])
        assert err.value.translation_key == "enrolment_mode"
    await select_mode(hass, kitchen, PrivacyMode.NORMAL)
    with pytest.raises(ServiceValidationError) as err:
        await enroll(hass, satellite, "person.nobody", [])
    assert err.value.translation_key == "unknown_person"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "forget_speaker", {"person": ANNA}, blocking=True
        )
    assert err.value.translation_key == "not_enrolled"


async def test_an_unheard_phrase_fails_enrolment_and_stores_nothing(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    satellite: PromptedSatellite,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Silence instead of a phrase: asked again once, then refused; no store."""
    monkeypatch.setattr("custom_components.private_voice.voice_id.PHRASE_TIMEOUT", 3)
    with pytest.raises(HomeAssistantError) as err:
        await enroll(hass, satellite, ANNA, [silence(2.5), silence(2.5)])
    assert err.value.translation_key == "enrolment_not_heard"
    assert f"{DOMAIN}.{entry.entry_id}.voice_prints" not in hass_storage


@pytest.fixture(scope="module")
def alice() -> list[bytes]:
    """Return a real person's utterances: the enrolled AMI speaker with most speech."""
    folder = locate() or fetch()
    enrolment = split(utterances(folder)).enrolment
    speaker = max(enrolment, key=lambda name: len(enrolment[name]))
    return [_padded(said) for said in enrolment[speaker]]


def _padded(said: Utterance) -> bytes:
    """Return the utterance with the silence that ends it for the satellite."""
    return silence(0.3) + said.samples.astype("<i2").tobytes() + silence(1.2)


def spoken(satellite: PromptedSatellite) -> list[str]:
    """Return what the satellite was given to say (Wyoming ``synthesize`` text)."""
    return [
        str(event.data.get("text"))
        for event in satellite.recording.of_type("synthesize")
    ]


async def test_the_guard_unlocks_for_the_enrolled_voice_only(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    kitchen: str,
    satellite: PromptedSatellite,
    alice: list[bytes],
) -> None:
    """End to end from satellite audio: an unknown voice cannot unlock.

    Alice (a real person) is enrolled and allowed to unlock; Bob's voice asks
    to unlock the front door: refused, with the reason said, the door stays
    locked. Once Bob is enrolled and allowed, the same words unlock it.
    """
    assert hass.states.get(FRONT_DOOR).state == "locked"
    enrolled = await enroll(
        hass, satellite, ANNA, alice[:3], allow_sensitive_actions=True
    )
    assert enrolled["quality"] in {"good", "fair"}

    unlock = utterance("Unlock the front door.")
    replies = len(satellite.recording.replies)
    await satellite.say(unlock)
    refusal = await async_spoken_text(
        hass,
        "guard_unknown_speaker",
        {
            "action": await async_spoken_text(hass, "guard_action_lock_unlock"),
            "room": "Kitchen",
        },
    )
    await until(lambda: refusal in spoken(satellite))
    # Said out loud: played to its end.
    await played_after(satellite, replies)
    assert last_speaker(hass, kitchen) == "unknown"
    assert hass.states.get(FRONT_DOOR).state == "locked"

    await enroll(
        hass,
        satellite,
        JOE,
        [utterance(phrase) for phrase in PHRASES[:3]],
        allow_sensitive_actions=True,
    )
    replies = len(satellite.recording.replies)
    await satellite.say(unlock)
    await until(lambda: hass.states.get(FRONT_DOOR).state == "unlocked")
    assert last_speaker(hass, kitchen) == "Bob"
    # Its answer is played before the test ends.
    await played_after(satellite, replies)


@pytest.fixture(scope="module")
def engines_without_voice_prints(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Endpoint]:
    """Run a real engine host with --no-voice-print (no encoder loaded)."""
    with run_engine_host(
        tmp_path_factory.mktemp("models"), "--no-voice-print"
    ) as endpoint:
        yield endpoint


async def test_enrolment_says_when_the_engines_make_no_voice_prints(
    hass: HomeAssistant,
    people: None,
    hass_ws_client: WebSocketGenerator,
    engines_without_voice_prints: Endpoint,
    free_port: int,
) -> None:
    """An engine host without its voice encoder: a clear error, nothing stored."""
    entry = await async_set_up_guarded(
        hass, hass_ws_client, engines_without_voice_prints, free_port
    )
    area = ar.async_get(hass).async_create("Hall")
    satellite = PromptedSatellite()
    await satellite.start()
    try:
        await add_satellite(hass, entry, satellite, area.id)
        await until(lambda: satellite.recording.of_type("run-satellite"))
        with pytest.raises(HomeAssistantError) as err:
            await enroll(hass, satellite, JOE, [utterance(PHRASES[0])])
        assert err.value.translation_key == "voice_prints_unsupported"
        assert entry.runtime_data.voice_id.enrolled == {}
    finally:
        await satellite.stop()


async def test_enrolment_at_another_integrations_satellite(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    kitchen: str,
) -> None:
    """An ESPHome-like satellite asks for each phrase as a question.

    Its person answers each one (no wake word: the satellite listens after a
    question); the print of each answer enrols Bob, and the satellite is told
    how it went. Nothing of the phrases is acted on.
    """
    fake = await async_set_up_fake_esphome(hass, kitchen)
    fake.satellite.answers = [utterance(phrase) for phrase in PHRASES[:3]]
    response = await hass.services.async_call(
        DOMAIN,
        "enroll_speaker",
        {"person": JOE, "satellite": fake.satellite_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["quality"] in {"good", "fair"}
    questions = [
        await async_spoken_text(
            hass,
            "spoken_enrolment_question",
            {"number": str(number), "total": "3", "phrase": PHRASES[number - 1]},
        )
        for number in (1, 2, 3)
    ]
    thanks = await async_spoken_text(
        hass, f"spoken_enrolled_{response['quality']}", {"person": "Bob"}
    )
    assert fake.satellite.announced == [*questions, thanks]
    assert len(stored(hass_storage, entry)["data"][JOE]["print"]) == 256
    assert hass.states.get(KITCHEN_LIGHT).state == "off"


async def test_choosing_a_pipeline_without_the_guard_raises_a_repair(
    hass: HomeAssistant,
    kitchen: str,
    satellite: PromptedSatellite,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The satellite's pipeline select: one without the guard, a repair at once."""
    issue_id = f"room_unguarded_{kitchen}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    [select] = [
        entity.entity_id
        for entity in er.async_get(hass).entities.values()
        if entity.domain == "select" and entity.unique_id.endswith("-pipeline")
    ]
    home_assistant = next(
        pipeline.name
        for pipeline in async_get_pipelines(hass)
        if pipeline.conversation_engine == "conversation.home_assistant"
    )
    for option, raised in ((home_assistant, True), ("preferred", False)):
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": select, "option": option},
            blocking=True,
        )
        await hass.async_block_till_done()
        assert (issue_registry.async_get_issue(DOMAIN, issue_id) is not None) is raised
