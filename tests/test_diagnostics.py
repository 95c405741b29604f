"""Tests for Private Voice diagnostics."""

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
) -> None:
    """Diagnostics show the settings and what the engines offer."""
    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert result["entry"]["data"] == dict(init_integration.data)
    engines = result["engines"]
    uri = init_integration.data["uri"]
    assert engines["endpoints"] == {"stt": uri, "tts": uri, "wake": uri}
    assert engines["available"] is True
    assert engines["stt"]["name"] == "faster-whisper"
    assert [model["name"] for model in engines["stt"]["models"]] == ["tiny.en"]
    assert [voice["name"] for voice in engines["tts"]["voices"]] == ["en_US-joe-medium"]
    assert "okay_nabu" in [model["name"] for model in engines["wake"]["models"]]
    assert result["engine_host_process"] is None
