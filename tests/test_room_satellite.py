"""A room's settings at its satellite: local only, announcements, debug recording.

The satellite is the simulator of ESP32-S3 firmware, in the Kitchen; speech is
piper's, the engines the session's engine host.
"""

from datetime import timedelta
import os
from pathlib import Path
import wave

from homeassistant.components import assist_pipeline
from homeassistant.components.assist_pipeline.pipeline import async_get_pipeline
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar, issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from wyoming.asr import Transcript

from custom_components.private_voice.const import DOMAIN
from custom_components.private_voice.debug_recording import recordings_dir
from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.privacy.policy import PrivacyMode
from custom_components.private_voice.rooms import RoomManager

from .conftest import KITCHEN_LIGHT, StartSatellite
from .engines import COMMAND, WAKE_PHRASE
from .protocol.simulator import Device, Firmware
from .test_assist_satellite import add_satellite, command_audio, entry, satellite_entity
from .waiting import until

__all__ = ["entry"]

SPEAKER = PcmFormat(16000, 2, 1)


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Keep what the tests write (recordings, the TTS cache) in a fresh folder."""
    return hass_tmp_config_dir


@pytest.fixture
def kitchen(hass: HomeAssistant, kitchen_light: str) -> str:
    """Return the Kitchen's area id (the kitchen light is in it)."""
    area = ar.async_get(hass).async_get_area_by_name("Kitchen")
    assert area is not None
    return area.id


def rooms(entry: MockConfigEntry) -> RoomManager:
    """Return the entry's rooms."""
    return entry.runtime_data.rooms


async def use_home_assistant_cloud_voice(hass: HomeAssistant) -> None:
    """Make the preferred pipeline speak with Home Assistant Cloud ("cloud")."""
    pipeline = async_get_pipeline(hass, None)
    await assist_pipeline.async_update_pipeline(hass, pipeline, tts_engine="cloud")


@pytest.mark.parametrize(
    ("firmware", "spoken"),
    [
        (Firmware.ON_DEVICE_WAKE, [COMMAND]),
        (Firmware.ALWAYS_STREAMING, [WAKE_PHRASE, COMMAND]),
    ],
    ids=["on-device-wake", "always-streaming"],
)
async def test_a_cloud_engine_in_a_local_room_is_refused_out_loud(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    entry: MockConfigEntry,
    kitchen: str,
    start_satellite: StartSatellite,
    firmware: Firmware,
    spoken: list[str],
) -> None:
    """Cloud not allowed, a cloud voice in the pipeline: refused, said, raised.

    The refusal is spoken by our own voice. Nothing is transcribed (an
    always-streaming satellite is refused once woken, not before), the light
    stays off, and a repair issue names the room and Home Assistant Cloud.
    """
    await use_home_assistant_cloud_voice(hass)
    satellite = await start_satellite(
        command_audio(*spoken), Device(firmware=firmware, snd_format=SPEAKER)
    )
    await add_satellite(hass, entry, satellite, kitchen)

    await until(lambda: satellite.recording.replies, within=60)
    await until(lambda: satellite.recording.replies[0].stopped)
    # A sentence, not a click.
    assert len(satellite.recording.replies[0].audio) > SPEAKER.bytes_per_second
    assert satellite.recording.of_type(Transcript(text="").event().type) == []
    assert hass.states.get(KITCHEN_LIGHT).state == STATE_OFF
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"cloud_not_allowed_{kitchen}")
    assert issue is not None
    assert issue.translation_placeholders == {
        "room": "Kitchen",
        "engines": "Home Assistant Cloud",
    }


@pytest.mark.usefixtures("kitchen_light")
async def test_a_quiet_room_holds_announcements_until_it_leaves_quiet(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    kitchen: str,
    start_satellite: StartSatellite,
) -> None:
    """Quiet: an announcement is held (the action returns), and played after."""
    satellite = await start_satellite(b"", Device(snd_format=SPEAKER))
    entity_id = satellite_entity(
        hass, await add_satellite(hass, entry, satellite, kitchen)
    )
    await until(lambda: hass.states.get(entity_id).state == "idle")
    rooms(entry).async_set_policy(kitchen, mode=PrivacyMode.QUIET)

    await hass.services.async_call(
        "assist_satellite",
        "announce",
        {"message": "Dinner is ready.", "preannounce": False},
        target={"entity_id": entity_id},
        blocking=True,
    )
    assert satellite.recording.replies == []

    rooms(entry).async_set_policy(kitchen, mode=PrivacyMode.NORMAL)
    await until(lambda: satellite.recording.played >= 1, within=30)
    assert len(satellite.recording.replies[0].audio) > SPEAKER.bytes_per_second // 2


async def test_a_muted_room_drops_announcements(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    kitchen: str,
    start_satellite: StartSatellite,
) -> None:
    """Muted: announcements are dropped, unless the room allows them."""
    satellite = await start_satellite(b"", Device(snd_format=SPEAKER))
    entity_id = satellite_entity(
        hass, await add_satellite(hass, entry, satellite, kitchen)
    )
    await until(lambda: hass.states.get(entity_id).state == "idle")
    rooms(entry).async_set_policy(kitchen, mode=PrivacyMode.MUTED)
    announce = {"message": "Dinner is ready.", "preannounce": False}

    await hass.services.async_call(
        "assist_satellite",
        "announce",
        announce,
        target={"entity_id": entity_id},
        blocking=True,
    )
    assert satellite.recording.replies == []

    rooms(entry).async_set_policy(kitchen, announce_when_muted=True)
    await hass.services.async_call(
        "assist_satellite",
        "announce",
        announce,
        target={"entity_id": entity_id},
        blocking=True,
    )
    assert satellite.recording.played == 1


def _recordings(hass: HomeAssistant, area_id: str) -> list[Path]:
    folder = recordings_dir(hass, area_id)
    return sorted(folder.glob("*.wav")) if folder.is_dir() else []


async def test_debug_recording_is_one_rooms_and_expires(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    kitchen: str,
    start_satellite: StartSatellite,
) -> None:
    """Turned on, a room's commands are kept as WAV; it stops, and they go, by itself.

    Without it, nothing is written (the retention tests check every path).
    """
    # An idle satellite makes the Kitchen a room before anyone speaks.
    await add_satellite(hass, entry, await start_satellite(b"", Device()), kitchen)
    await until(lambda: kitchen in rooms(entry).rooms)
    rooms(entry).async_set_debug_recording(kitchen, on=True)
    satellite = await start_satellite(
        command_audio(COMMAND), Device(snd_format=SPEAKER)
    )
    await add_satellite(hass, entry, satellite, kitchen)
    await until(lambda: satellite.recording.played >= 1, within=60)
    assert hass.states.get(KITCHEN_LIGHT).state == STATE_ON
    await until(lambda: _recordings(hass, kitchen))

    [recording] = _recordings(hass, kitchen)
    with wave.open(str(recording)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (
            16000,
            2,
            1,
        )
        # The whole command, as the pipeline heard it.
        assert wav.getnframes() > 16000

    # An hour on, it has turned itself off.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=1, seconds=1))
    await hass.async_block_till_done()
    assert rooms(entry).rooms[kitchen].debug_until is None

    # Made a day ago: deleted at the next hourly look, with its emptied folder.
    made = recording.stat().st_mtime - timedelta(days=1).total_seconds()
    os.utime(recording, (made, made))
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=2, seconds=2))
    await hass.async_block_till_done(wait_background_tasks=True)
    await until(lambda: not recording.exists())
    assert not recordings_dir(hass, kitchen).exists()
