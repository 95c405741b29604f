"""Tests for setting up and unloading Private Voice."""

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry


async def test_setup_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The entry loads with typed runtime data and unloads cleanly."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.language == "en"
    assert entry.runtime_data.port == entry.data["port"]
    assert entry.runtime_data.coordinator.data.stt is not None

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_unreachable_engine_host_retries(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, unused_tcp_port: int
) -> None:
    """An engine host that does not answer: setup is retried, not failed."""
    entry = MockConfigEntry(
        domain=mock_config_entry.domain,
        unique_id=mock_config_entry.unique_id,
        data={**mock_config_entry.data, "uri": f"tcp://127.0.0.1:{unused_tcp_port}"},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_entry_from_before_engine_modes_asks_to_reconfigure(
    hass: HomeAssistant, free_port: int
) -> None:
    """An entry made before engines could be chosen fails with a clear reason."""
    entry = MockConfigEntry(
        domain="private_voice",
        unique_id="private_voice",
        data={"language": "en", "port": free_port},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.error_reason_translation_key == "engines_not_chosen"
