"""Diagnostics for Private Voice."""

from typing import Any

from homeassistant.core import HomeAssistant

from .data import PrivateVoiceConfigEntry


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> dict[str, Any]:
    """Return what a bug report needs: settings, never audio or transcripts."""
    return {
        "entry": {"data": dict(entry.data), "options": dict(entry.options)},
        "runtime": {
            "language": entry.runtime_data.language,
            "port": entry.runtime_data.port,
        },
    }
