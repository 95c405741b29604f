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
    """Diagnostics show the settings the entry runs with."""
    port = init_integration.data["port"]
    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert result == {
        "entry": {"data": {"language": "en", "port": port}, "options": {}},
        "runtime": {"language": "en", "port": port},
    }
