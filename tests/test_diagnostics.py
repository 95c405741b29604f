"""Tests for Private Voice diagnostics."""

import json

from homeassistant.components.diagnostics import REDACTED
from homeassistant.const import CONF_HOST, CONF_PORT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
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
)
from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.protocol.client import Endpoint

from .protocol.simulator import ESP_MIC, Device, SimulatedSatellite
from .test_assist_satellite import add_satellite, satellite_entity
from .waiting import until

SPEAKER = PcmFormat(22050, 2, 1)
# A client the user allowed, on the home's network (TEST-NET-1).
LAN_CLIENT = "192.0.2.10"


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
