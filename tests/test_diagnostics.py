"""Tests for Private Voice diagnostics."""

from datetime import timedelta
import json
from types import MappingProxyType

from homeassistant.components.diagnostics import REDACTED
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_MAC, CONF_PORT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.private_voice.const import (
    CONF_ALLOWED_ADDRESSES,
    CONF_AREA_ID,
    CONF_BIND_ADDRESS,
    CONF_URI,
    SUBENTRY_SATELLITE,
)
from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.privacy.ledger import ENGINE_BYTES_PER_SECOND
from custom_components.private_voice.privacy.policy import PrivacyMode
from custom_components.private_voice.protocol.client import Endpoint

from .conftest import StartSatellite
from .protocol.simulator import ESP_MIC, Device, SimulatedSatellite
from .test_assist_satellite import add_satellite, satellite_entity
from .waiting import until

SPEAKER = PcmFormat(22050, 2, 1)
# A client the user allowed, on the home's network (TEST-NET-1).
LAN_CLIENT = "192.0.2.10"
# A satellite's MAC address, as wyoming-satellite announces itself by it.
MAC = "0a:1b:2c:3d:4e:5f"
MAC_NAME = MAC.replace(":", "")
# What a room said, and who said it: never in a report.
TRANSCRIPT = "unlock the front door"
VOICE_PRINT = [0.125, -0.5, 0.75]


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
) -> None:
    """Diagnostics show the settings and what the engines offer, not where."""
    hass.config_entries.async_update_entry(
        init_integration,
        options={CONF_BIND_ADDRESS: "127.0.0.1", CONF_ALLOWED_ADDRESSES: [LAN_CLIENT]},
    )
    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert result["entry"]["data"] == {
        **init_integration.data,
        CONF_URI: REDACTED,
    }
    assert result["entry"]["options"] == {
        CONF_BIND_ADDRESS: "127.0.0.1",
        CONF_ALLOWED_ADDRESSES: REDACTED,
    }
    assert LAN_CLIENT not in json.dumps(result)
    engines = result["engines"]
    port = Endpoint.from_uri(init_integration.data[CONF_URI]).port
    uri = f"tcp://{REDACTED}:{port}"
    assert engines["endpoints"] == {"stt": uri, "tts": uri, "wake": uri}
    assert engines["available"] is True
    assert engines["stt"]["name"] == "faster-whisper"
    assert [model["name"] for model in engines["stt"]["models"]] == ["tiny.en"]
    assert [voice["name"] for voice in engines["tts"]["voices"]] == ["en_US-joe-medium"]
    assert "okay_nabu" in [model["name"] for model in engines["wake"]["models"]]
    assert result["engine_host_process"] is None
    assert result["satellites"] == {}
    assert result["rooms"] == {}


async def test_diagnostics_show_satellites_without_their_addresses(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    area_registry: ar.AreaRegistry,
) -> None:
    """Each satellite: its room, its connection, what it says it is; no host."""
    kitchen = area_registry.async_create("Kitchen")
    satellite = SimulatedSatellite(b"", Device(snd_format=SPEAKER))
    await satellite.start()
    try:
        subentry_id = await add_satellite(hass, init_integration, satellite, kitchen.id)
        entity = satellite_entity(hass, subentry_id)
        await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
        # A Muted room pauses its satellite: diagnostics tell.
        await init_integration.runtime_data.satellites[subentry_id].async_pause()
        result = await get_diagnostics_for_config_entry(
            hass, hass_client, init_integration
        )
    finally:
        await satellite.stop()

    assert result["satellites"] == {
        subentry_id: {
            "title": "esp32-s3",
            "data": {
                CONF_HOST: REDACTED,
                CONF_PORT: satellite.port,
                CONF_AREA_ID: kitchen.id,
            },
            "area": "Kitchen",
            "state": "idle",
            "available": True,
            "connected": True,
            "paused": True,
            "refused_chunks": 0,
            "described": {
                "name": "esp32-s3",
                "description": "simulated ESP32-S3 satellite",
                "version": "1",
                "attribution": "Private Voice tests",
                "mic_format": {
                    "rate": ESP_MIC.rate,
                    "width": ESP_MIC.width,
                    "channels": ESP_MIC.channels,
                },
                "snd_format": {
                    "rate": SPEAKER.rate,
                    "width": SPEAKER.width,
                    "channels": SPEAKER.channels,
                },
            },
        }
    }
    # Neither the satellite's nor the engines' address is anywhere.
    assert "127.0.0.1" not in json.dumps(result)


async def test_diagnostics_describe_rooms_by_settings_and_counters(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    area_registry: ar.AreaRegistry,
    start_satellite: StartSatellite,
) -> None:
    """Each room: its mode and settings, what its audio did today, by numbers only."""
    kitchen = area_registry.async_create("Kitchen")
    satellite = await start_satellite(b"", Device())
    subentry_id = await add_satellite(hass, init_integration, satellite, kitchen.id)
    entity = satellite_entity(hass, subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
    rooms = init_integration.runtime_data.rooms
    room = rooms.rooms[kitchen.id]
    changed = dt_util.utcnow()
    # Guest for an hour, then Normal again; the cloud allowed.
    rooms.async_set_policy(
        kitchen.id,
        mode=PrivacyMode.GUEST,
        cloud_allowed=True,
        duration=timedelta(hours=1),
    )
    rooms.count_request(room)
    # Two seconds of the room's audio, still flowing, one of them off the hub.
    local = rooms.gate(room)
    offhub = rooms.gate(room, offhub=True)
    assert local is not None
    assert offhub is not None
    local.passed(ENGINE_BYTES_PER_SECOND)
    offhub.passed(ENGINE_BYTES_PER_SECOND)
    try:
        result = await get_diagnostics_for_config_entry(
            hass, hass_client, init_integration
        )
    finally:
        local.close()
        offhub.close()

    described = result["rooms"][kitchen.id]
    last_change = dt_util.parse_datetime(described.pop("last_mode_change"))
    revert = described.pop("temporary_revert")
    revert_at = dt_util.parse_datetime(revert.pop("at"))
    assert described == {
        "area_id": kitchen.id,
        "name": "Kitchen",
        "satellites": [entity],
        "mode": "guest",
        "cloud_allowed": True,
        "announce_when_muted": False,
        "listening": True,
        "counters": {
            "day": dt_util.now().date().isoformat(),
            "requests": 1,
            "audio_seconds": 2.0,
            "offhub_bytes": ENGINE_BYTES_PER_SECOND,
        },
        "debug_recording_until": None,
    }
    assert last_change is not None
    assert changed <= last_change <= dt_util.utcnow()
    assert revert == {"mode": "normal"}
    assert revert_at is not None
    assert revert_at - last_change <= timedelta(hours=1)
    assert revert_at - changed >= timedelta(hours=1)
    assert list(result["rooms"]) == [kitchen.id]


async def test_diagnostics_redact_what_was_said_and_mac_addresses(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    area_registry: ar.AreaRegistry,
    start_satellite: StartSatellite,
) -> None:
    """Transcripts, voice prints and MAC addresses never reach a report.

    Nothing of ours stores them where diagnostics look: a satellite whose
    stored settings and name carry them anyway (a discovered satellite named
    after its MAC, keys from some other version) shows that they would not
    get through.
    """
    hall = area_registry.async_create("Hall")
    satellite = await start_satellite(b"", Device())
    subentry = ConfigSubentry(
        data=MappingProxyType(
            {
                CONF_HOST: "127.0.0.1",
                CONF_PORT: satellite.port,
                CONF_AREA_ID: hall.id,
                CONF_MAC: MAC,
                "stt_output": {"text": TRANSCRIPT},
                "transcript": TRANSCRIPT,
                "voice_print": VOICE_PRINT,
                "embedding": VOICE_PRINT,
            }
        ),
        subentry_type=SUBENTRY_SATELLITE,
        title=f"Hall satellite {MAC.upper()}",
        unique_id=MAC_NAME,
    )
    hass.config_entries.async_add_subentry(init_integration, subentry)
    await hass.async_block_till_done()
    entity = satellite_entity(hass, subentry.subentry_id)
    await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)

    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)

    described = result["satellites"][subentry.subentry_id]
    assert described["title"] == f"Hall satellite {REDACTED}"
    assert described["data"] == {
        CONF_HOST: REDACTED,
        CONF_PORT: satellite.port,
        CONF_AREA_ID: hall.id,
        CONF_MAC: REDACTED,
        "stt_output": REDACTED,
        "transcript": REDACTED,
        "voice_print": REDACTED,
        "embedding": REDACTED,
    }
    # The room is there, and none of it anywhere.
    assert list(result["rooms"]) == [hall.id]
    dumped = json.dumps(result).lower()
    for secret in (TRANSCRIPT, MAC, MAC_NAME, str(VOICE_PRINT[0])):
        assert secret not in dumped
