"""Diagnostics for Private Voice: settings and engine state, never audio or text."""

from dataclasses import asdict
from typing import Any

from homeassistant.core import HomeAssistant

from .coordinator import PrivateVoiceConfigEntry


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> dict[str, Any]:
    """Return what a bug report needs."""
    data = entry.runtime_data
    coordinator = data.coordinator
    engines = coordinator.data
    process = data.process
    return {
        "entry": {"data": dict(entry.data), "options": dict(entry.options)},
        "engines": {
            "endpoints": {
                role: endpoint.uri if endpoint else None
                for role, endpoint in (
                    ("stt", coordinator.endpoints.stt),
                    ("tts", coordinator.endpoints.tts),
                    ("wake", coordinator.endpoints.wake),
                )
            },
            "available": coordinator.last_update_success,
            "stt": asdict(engines.stt) if engines.stt else None,
            "tts": asdict(engines.tts) if engines.tts else None,
            "wake": asdict(engines.wake) if engines.wake else None,
        },
        "engine_host_process": (
            {
                "pid": process.pid,
                "running": process.running,
                "restarts": process.restarts,
            }
            if process
            else None
        ),
    }
