"""Wyoming satellites through Assist: added as subentries, one device each, in a room.

The satellite is the project's simulator of ESP32-S3 firmware (a real Wyoming
server on 127.0.0.1); speech is piper's, the engines the session's engine host.
"""

from homeassistant.components.assist_satellite.entity import AssistSatelliteState
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PORT, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    intent,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator
from wyoming.asr import Transcript
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.timer import TimerStarted

from custom_components.private_voice.const import (
    CONF_AREA_ID,
    DOMAIN,
    SUBENTRY_SATELLITE,
)
from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.protocol.client import Endpoint

from .conftest import KITCHEN_LIGHT, StartSatellite
from .engines import (
    COMMAND,
    WAKE_PHRASE,
    async_create_pipeline,
    async_set_up,
    remote_entry,
    silence,
    speech,
)
from .protocol.simulator import Device, Fault, Firmware, SimulatedSatellite
from .waiting import until

# A speaker that plays 16 kHz: piper's 22.05 kHz replies are converted for it.
SPEAKER = PcmFormat(16000, 2, 1)


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Keep what the tests write (the TTS cache) out of the shared config."""
    return hass_tmp_config_dir


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    engine_host_endpoint: Endpoint,
    free_port: int,
) -> MockConfigEntry:
    """Private Voice on the session's engines, its pipeline the preferred one."""
    entry = remote_entry(engine_host_endpoint, free_port)
    await async_set_up(hass, entry)
    await async_create_pipeline(hass, await hass_ws_client(hass), entry, preferred=True)
    return entry


async def add_satellite(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    satellite: SimulatedSatellite,
    area_id: str | None = None,
) -> str:
    """Add a satellite as the UI does; return its subentry id."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_SATELLITE), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    user_input = {CONF_HOST: "127.0.0.1", CONF_PORT: satellite.port}
    if area_id is not None:
        user_input[CONF_AREA_ID] = area_id
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    [subentry_id] = [
        subentry.subentry_id
        for subentry in entry.subentries.values()
        if subentry.unique_id == f"127.0.0.1:{satellite.port}"
    ]
    return subentry_id


def satellite_entity(hass: HomeAssistant, subentry_id: str) -> str:
    """Return the satellite's assist_satellite entity id."""
    found = er.async_get(hass).async_get_entity_id(
        "assist_satellite", DOMAIN, f"{subentry_id}-assist_satellite"
    )
    assert found is not None
    return found


def command_audio(*spoken: str) -> bytes:
    """Speech with a lead-in and the silence that ends an utterance."""
    audio = silence(0.5)
    for text in spoken:
        audio += speech(text) + silence(0.5)
    return audio + silence(1.5)


async def test_added_satellite_is_a_device_in_its_room(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    area_registry: ar.AreaRegistry,
    device_registry: dr.DeviceRegistry,
    start_satellite: StartSatellite,
) -> None:
    """One device in the chosen area, with a satellite entity and its selects."""
    kitchen = area_registry.async_create("Kitchen")
    satellite = await start_satellite(b"", Device(snd_format=SPEAKER))
    subentry_id = await add_satellite(hass, entry, satellite, kitchen.id)

    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, subentry_id), entry.entry_id
    )
    assert device is not None
    assert device.area_id == kitchen.id
    assert (device.config_entry_id, device.config_subentry_id) == (
        entry.entry_id,
        subentry_id,
    )
    entities = er.async_entries_for_device(er.async_get(hass), device.id)
    assert {(e.domain, e.unique_id) for e in entities} == {
        ("assist_satellite", f"{subentry_id}-assist_satellite"),
        ("select", f"{subentry_id}-pipeline"),
        ("select", f"{subentry_id}-vad_sensitivity"),
    }
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
    assert hass.states.get(entity).state == AssistSatelliteState.IDLE
    assert RunSatellite().event().type in satellite.recording.types()
    # What the satellite says of itself shows on its device.
    device = device_registry.async_get(device.id)
    assert device is not None
    assert device.manufacturer == "Private Voice tests"


@pytest.mark.parametrize(
    ("firmware", "spoken"),
    [
        (Firmware.ON_DEVICE_WAKE, [COMMAND]),
        (Firmware.ALWAYS_STREAMING, [WAKE_PHRASE, COMMAND]),
    ],
    ids=["on-device-wake", "always-streaming"],
)
@pytest.mark.usefixtures("kitchen_light")
async def test_satellite_command_turns_on_the_kitchen_light(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    start_satellite: StartSatellite,
    firmware: Firmware,
    spoken: list[str],
) -> None:
    """Said at the satellite: the light turns on, the reply plays there."""
    satellite = await start_satellite(
        command_audio(*spoken), Device(firmware=firmware, snd_format=SPEAKER)
    )
    subentry_id = await add_satellite(hass, entry, satellite)

    await until(lambda: satellite.recording.played >= 1, within=60)
    assert hass.states.get(KITCHEN_LIGHT).state == STATE_ON
    [transcript] = satellite.recording.of_type("transcript")[:1]
    assert "kitchen" in Transcript.from_event(transcript).text.lower()
    reply = satellite.recording.replies[0]
    assert PcmFormat.of(reply.start) == SPEAKER
    assert reply.stopped
    # 2048-byte chunks but for the last; a spoken sentence, not a click.
    assert {len(chunk) for chunk in reply.chunks[:-1]} == {2048}
    assert len(reply.audio) > SPEAKER.bytes_per_second // 2
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state == AssistSatelliteState.IDLE)


async def test_unload_pauses_the_satellite(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    start_satellite: StartSatellite,
) -> None:
    """Unloading tells the satellite to stop streaming, then disconnects."""
    satellite = await start_satellite(b"", Device())
    subentry_id = await add_satellite(hass, entry, satellite)
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    assert satellite.recording.types()[-1] == PauseSatellite().event().type
    assert hass.states.get(entity).state == STATE_UNAVAILABLE


async def test_satellite_that_vanishes_comes_back(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    start_satellite: StartSatellite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mid-sentence it disappears: unavailable, logged once, then reconnected."""
    satellite = await start_satellite(
        command_audio(COMMAND), Device(fault=Fault.VANISH_MID_SENTENCE)
    )
    subentry_id = await add_satellite(hass, entry, satellite)
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
    await satellite.stop()
    await until(lambda: hass.states.get(entity).state == STATE_UNAVAILABLE)

    satellite.device = Device()
    satellite.mic_audio = b""
    await satellite.start()
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
    outages = [r for r in caplog.records if "is unavailable" in r.getMessage()]
    assert len(outages) == 1


async def test_announcement_plays_on_the_satellite(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    start_satellite: StartSatellite,
) -> None:
    """assist_satellite.announce speaks through our TTS on the satellite."""
    satellite = await start_satellite(b"", Device(snd_format=SPEAKER))
    subentry_id = await add_satellite(hass, entry, satellite)
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)

    await hass.services.async_call(
        "assist_satellite",
        "announce",
        {"entity_id": entity, "message": "Dinner is ready.", "preannounce": False},
        blocking=True,
    )

    [reply] = satellite.recording.replies
    assert PcmFormat.of(reply.start) == SPEAKER
    assert reply.stopped
    assert len(reply.audio) > SPEAKER.bytes_per_second // 2


async def test_timer_started_at_the_satellite_is_sent_to_it(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    start_satellite: StartSatellite,
) -> None:
    """A timer set from the satellite's device reaches the satellite."""
    satellite = await start_satellite(b"", Device())
    subentry_id = await add_satellite(hass, entry, satellite)
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, subentry_id), entry.entry_id
    )
    assert device is not None

    await intent.async_handle(
        hass,
        "test",
        intent.INTENT_START_TIMER,
        {"minutes": {"value": 5}},
        device_id=device.id,
    )

    await until(lambda: satellite.recording.of_type("timer-started"))
    timer = TimerStarted.from_event(satellite.recording.of_type("timer-started")[0])
    assert timer.total_seconds == 300


async def test_removed_satellite_leaves_nothing(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    start_satellite: StartSatellite,
) -> None:
    """Removing the subentry removes device and entities and disconnects."""
    satellite = await start_satellite(b"", Device())
    subentry_id = await add_satellite(hass, entry, satellite)
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)

    assert hass.config_entries.async_remove_subentry(entry, subentry_id)
    await hass.async_block_till_done()

    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, subentry_id), entry.entry_id
        )
        is None
    )
    assert hass.states.get(entity) is None
    assert entry.runtime_data.satellites == {}
    assert satellite.recording.types()[-1] == PauseSatellite().event().type


@pytest.mark.usefixtures("kitchen_light")
async def test_reply_streams_as_the_voice_speaks_without_conversion(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    start_satellite: StartSatellite,
) -> None:
    """Our TTS in the pipeline: its WAV is not run through ffmpeg first.

    A satellite that names no speaker format gets piper's own 22.05 kHz mono.
    """
    satellite = await start_satellite(command_audio(COMMAND), Device())
    await add_satellite(hass, entry, satellite)

    await until(lambda: satellite.recording.played >= 1, within=60)

    assert PcmFormat.of(satellite.recording.replies[0].start) == PcmFormat(22050, 2, 1)
