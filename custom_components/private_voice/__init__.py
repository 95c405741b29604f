"""Private Voice: a voice assistant that never leaves the house."""

from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant

from .const import CONF_LANGUAGE
from .data import PrivateVoiceConfigEntry, PrivateVoiceData


async def async_setup_entry(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> bool:
    """Set up Private Voice from a config entry."""
    entry.runtime_data = PrivateVoiceData(
        language=entry.data[CONF_LANGUAGE],
        port=entry.data[CONF_PORT],
    )
    return True


async def async_unload_entry(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> bool:
    """Unload a config entry."""
    return True
