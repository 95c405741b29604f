"""The local-only check: which engines of an Assist pipeline run off the hub.

Pipelines are made as the UI makes them, on our engines and Home Assistant's
built-in agent; one engine at a time is then swapped for another integration's.
No cloud can run here: mock integrations whose manifests say they run in the
cloud stand in for one, with real entities and agents in Home Assistant.
"""

from collections.abc import AsyncIterable
from typing import Literal, override

from homeassistant.components import assist_pipeline, conversation, stt, tts
from homeassistant.components.assist_pipeline.pipeline import async_get_pipeline
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    area_registry as ar,
    entity_registry as er,
    intent,
    issue_registry as ir,
    translation,
)
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    mock_config_flow,
    mock_integration,
    mock_platform,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.private_voice.const import DOMAIN
from custom_components.private_voice.locality import (
    EngineIntegration,
    OffHubEngine,
    Stage,
    async_clear_cloud_issue,
    async_offhub_engines,
    async_raise_cloud_issue,
)
from custom_components.private_voice.protocol.client import Endpoint

from .engines import async_create_pipeline, async_set_up, remote_entry

MOCK_CLOUD = EngineIntegration("mock_cloud_voice", "Mock Cloud Voice")
MOCK_CUSTOM = EngineIntegration("mock_custom_agent", "Mock Custom Agent")
CLOUD_AGENT = "conversation.mock_cloud_agent"


class MockCloudSpeechToText(stt.SpeechToTextEntity):
    """The mock cloud's speech-to-text; nothing is ever sent to it here."""

    _attr_name = "Mock cloud speech-to-text"
    _attr_unique_id = "stt"

    @property
    @override
    def supported_languages(self) -> list[str]:
        return ["en"]

    @property
    @override
    def supported_formats(self) -> list[stt.AudioFormats]:
        return [stt.AudioFormats.WAV]

    @property
    @override
    def supported_codecs(self) -> list[stt.AudioCodecs]:
        return [stt.AudioCodecs.PCM]

    @property
    @override
    def supported_bit_rates(self) -> list[stt.AudioBitRates]:
        return [stt.AudioBitRates.BITRATE_16]

    @property
    @override
    def supported_sample_rates(self) -> list[stt.AudioSampleRates]:
        return [stt.AudioSampleRates.SAMPLERATE_16000]

    @property
    @override
    def supported_channels(self) -> list[stt.AudioChannels]:
        return [stt.AudioChannels.CHANNEL_MONO]

    @override
    async def async_process_audio_stream(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> stt.SpeechResult:
        return stt.SpeechResult(None, stt.SpeechResultState.ERROR)


class MockCloudTextToSpeech(tts.TextToSpeechEntity):
    """The mock cloud's text-to-speech."""

    _attr_name = "Mock cloud text-to-speech"
    _attr_unique_id = "tts"
    _attr_default_language = "en"
    _attr_supported_languages = ["en"]  # noqa: RUF012 - Home Assistant's type


class MockCloudAgent(conversation.ConversationEntity):
    """The mock cloud's conversation agent: no unique id, so in no registry."""

    _attr_name = "Mock cloud agent"

    @property
    @override
    def supported_languages(self) -> Literal["*"]:
        return "*"


class MockCustomAgent(conversation.AbstractConversationAgent):
    """An agent of a config entry, as custom integrations still register them."""

    @property
    @override
    def supported_languages(self) -> Literal["*"]:
        return "*"

    @override
    async def async_process(
        self, user_input: conversation.ConversationInput
    ) -> conversation.ConversationResult:
        response = intent.IntentResponse(language=user_input.language)
        response.async_set_speech("Done.")
        return conversation.ConversationResult(response=response)


type MockEntity = (
    stt.SpeechToTextEntity | tts.TextToSpeechEntity | conversation.ConversationEntity
)


class MockFlow(ConfigFlow):
    """A mock integration's config flow: its entries are made by the tests."""


def _mock_entity_platform(
    hass: HomeAssistant, domain: str, platform: Platform, entity: MockEntity
) -> None:
    async def async_setup_entry(
        hass: HomeAssistant,
        entry: ConfigEntry,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        async_add_entities([entity])

    mock_platform(
        hass, f"{domain}.{platform}", MockPlatform(async_setup_entry=async_setup_entry)
    )


async def _async_set_up_mock(
    hass: HomeAssistant,
    integration: EngineIntegration,
    manifest: dict[str, str],
    entities: dict[Platform, MockEntity],
    *,
    built_in: bool = True,
) -> MockConfigEntry:
    """Register a mock integration with ``entities``, and set up an entry of it."""
    assert integration.domain is not None

    async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        await hass.config_entries.async_forward_entry_setups(entry, list(entities))
        return True

    module = MockModule(
        integration.domain,
        async_setup_entry=async_setup_entry,
        partial_manifest={"name": integration.name, **manifest},
    )
    mock_integration(hass, module, built_in=built_in)
    mock_platform(hass, f"{integration.domain}.config_flow")
    for platform, entity in entities.items():
        _mock_entity_platform(hass, integration.domain, platform, entity)
    entry = MockConfigEntry(domain=integration.domain)
    with mock_config_flow(integration.domain, MockFlow):
        await async_set_up(hass, entry)
    return entry


@pytest.fixture
async def mock_cloud(hass: HomeAssistant) -> None:
    """Set up a mock integration that runs in the cloud, by its manifest.

    It provides a speech-to-text, a text-to-speech and a conversation entity.
    """
    await _async_set_up_mock(
        hass,
        MOCK_CLOUD,
        {"iot_class": "cloud_polling"},
        {
            Platform.STT: MockCloudSpeechToText(),
            Platform.TTS: MockCloudTextToSpeech(),
            Platform.CONVERSATION: MockCloudAgent(),
        },
    )


def _mock_cloud_entity(hass: HomeAssistant, domain: str) -> str:
    found = er.async_get(hass).async_get_entity_id(domain, MOCK_CLOUD.domain, domain)
    assert found is not None
    return found


@pytest.fixture
async def pipeline_id(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    engine_host_endpoint: Endpoint,
    free_port: int,
) -> str:
    """Create the preferred pipeline on our engines, as the UI does."""
    entry = remote_entry(engine_host_endpoint, free_port)
    await async_set_up(hass, entry)
    return await async_create_pipeline(
        hass, await hass_ws_client(hass), entry, preferred=True
    )


async def _use(hass: HomeAssistant, pipeline_id: str, **engines: str) -> None:
    """Change the pipeline's engines, as the UI does."""
    await assist_pipeline.async_update_pipeline(
        hass, async_get_pipeline(hass, pipeline_id), **engines
    )


@pytest.mark.parametrize("agent", ["conversation.home_assistant", "homeassistant"])
async def test_local_pipeline_has_nothing_off_hub(
    hass: HomeAssistant, pipeline_id: str, agent: str
) -> None:
    """Our wake word, speech and voice with the built-in agent (by either id)."""
    await _use(hass, pipeline_id, conversation_engine=agent)
    pipeline = async_get_pipeline(hass, pipeline_id)
    assert pipeline.stt_engine
    assert pipeline.tts_engine
    assert pipeline.wake_word_entity

    assert await async_offhub_engines(hass, pipeline_id) == []


@pytest.mark.usefixtures("mock_cloud")
async def test_mock_cloud_stt_of_preferred_pipeline_is_off_hub(
    hass: HomeAssistant, pipeline_id: str
) -> None:
    """No pipeline id: the preferred pipeline's engines are checked."""
    engine = _mock_cloud_entity(hass, Platform.STT)
    await _use(hass, pipeline_id, stt_engine=engine)

    assert await async_offhub_engines(hass, None) == [
        OffHubEngine(Stage.STT, engine, MOCK_CLOUD)
    ]


@pytest.mark.usefixtures("mock_cloud")
async def test_mock_cloud_tts_is_off_hub(hass: HomeAssistant, pipeline_id: str) -> None:
    """A cloud voice reads the reply: the reply's text leaves the home."""
    engine = _mock_cloud_entity(hass, Platform.TTS)
    await _use(hass, pipeline_id, tts_engine=engine)

    assert await async_offhub_engines(hass, pipeline_id) == [
        OffHubEngine(Stage.TTS, engine, MOCK_CLOUD)
    ]


@pytest.mark.usefixtures("mock_cloud")
async def test_mock_cloud_conversation_agent_is_off_hub(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, pipeline_id: str
) -> None:
    """An agent entity in no registry is traced through its loaded entity."""
    assert hass.states.get(CLOUD_AGENT) is not None
    assert entity_registry.async_get(CLOUD_AGENT) is None
    await _use(hass, pipeline_id, conversation_engine=CLOUD_AGENT)

    assert await async_offhub_engines(hass, pipeline_id) == [
        OffHubEngine(Stage.CONVERSATION, CLOUD_AGENT, MOCK_CLOUD)
    ]


@pytest.mark.parametrize("stage", [Stage.STT, Stage.TTS])
async def test_legacy_cloud_provider_is_off_hub(
    hass: HomeAssistant, pipeline_id: str, stage: Stage
) -> None:
    """Home Assistant Cloud by its provider name, "cloud", named from its manifest."""
    await _use(hass, pipeline_id, **{f"{stage}_engine": "cloud"})

    assert await async_offhub_engines(hass, pipeline_id) == [
        OffHubEngine(stage, "cloud", EngineIntegration("cloud", "Home Assistant Cloud"))
    ]


async def test_mock_custom_agent_without_iot_class_is_off_hub(
    hass: HomeAssistant, pipeline_id: str
) -> None:
    """A custom integration that does not say where it runs is not trusted."""
    entry = await _async_set_up_mock(hass, MOCK_CUSTOM, {}, {}, built_in=False)
    conversation.async_set_agent(hass, entry, MockCustomAgent())
    await _use(hass, pipeline_id, conversation_engine=entry.entry_id)

    assert await async_offhub_engines(hass, pipeline_id) == [
        OffHubEngine(Stage.CONVERSATION, entry.entry_id, MOCK_CUSTOM)
    ]


@pytest.mark.parametrize(
    ("engine", "integration"),
    [
        ("stt.gone", EngineIntegration(None, "stt.gone")),
        (
            "no_such_integration",
            EngineIntegration("no_such_integration", "no_such_integration"),
        ),
    ],
    ids=["entity", "provider"],
)
async def test_unknown_engine_counts_as_off_hub(
    hass: HomeAssistant,
    pipeline_id: str,
    engine: str,
    integration: EngineIntegration,
) -> None:
    """Where an engine runs cannot be told: fail closed."""
    await _use(hass, pipeline_id, stt_engine=engine)

    assert await async_offhub_engines(hass, pipeline_id) == [
        OffHubEngine(Stage.STT, engine, integration)
    ]


async def _text(
    hass: HomeAssistant, category: str, key: str, placeholders: dict[str, str]
) -> str:
    """Return the English text Home Assistant shows for ``key``, filled in."""
    strings = await translation.async_get_translations(hass, "en", category, [DOMAIN])
    return strings[f"component.{DOMAIN}.{category}.{key}"].format(**placeholders)


@pytest.mark.usefixtures("mock_cloud")
async def test_cloud_issue_names_room_and_mock_cloud_then_clears(
    hass: HomeAssistant,
    area_registry: ar.AreaRegistry,
    issue_registry: ir.IssueRegistry,
    pipeline_id: str,
) -> None:
    """The repair issue and the spoken refusal name the room and the integration.

    Two engines of one integration name it once.
    """
    kitchen = area_registry.async_create("Kitchen")
    hall = area_registry.async_create("Hall")
    await _use(
        hass,
        pipeline_id,
        stt_engine=_mock_cloud_entity(hass, Platform.STT),
        tts_engine=_mock_cloud_entity(hass, Platform.TTS),
    )
    engines = await async_offhub_engines(hass, pipeline_id)
    assert [engine.stage for engine in engines] == [Stage.STT, Stage.TTS]

    async_raise_cloud_issue(hass, kitchen.id, kitchen.name, engines)
    async_raise_cloud_issue(hass, hall.id, hall.name, engines)

    issue = issue_registry.async_get_issue(DOMAIN, f"cloud_not_allowed_{kitchen.id}")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable
    assert issue.translation_key == "cloud_not_allowed"
    placeholders = issue.translation_placeholders
    assert placeholders == {"room": "Kitchen", "engines": MOCK_CLOUD.name}
    title = await _text(hass, "issues", "cloud_not_allowed.title", placeholders)
    description = await _text(
        hass, "issues", "cloud_not_allowed.description", placeholders
    )
    assert "Kitchen" in title
    assert "Kitchen" in description
    assert MOCK_CLOUD.name in description
    spoken = await _text(
        hass, "exceptions", "spoken_cloud_not_allowed.message", placeholders
    )
    assert spoken.startswith("Kitchen ")
    assert f"uses {MOCK_CLOUD.name}." in spoken

    async_clear_cloud_issue(hass, kitchen.id)
    assert (
        issue_registry.async_get_issue(DOMAIN, f"cloud_not_allowed_{kitchen.id}")
        is None
    )
    assert issue_registry.async_get_issue(DOMAIN, f"cloud_not_allowed_{hall.id}")
