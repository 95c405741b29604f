"""Diagnostics for Private Voice: settings, engines and satellites, never audio or text.

Addresses are redacted: hosts and URIs are usually LAN addresses, which say
more about a home than a bug report needs. Ports stay, as they are often the
problem.
"""

from dataclasses import asdict
from typing import Any, Final

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_MAC, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from wyoming.audio import AudioFormat

from .const import (
    CONF_ALLOWED_ADDRESSES,
    CONF_STT_URI,
    CONF_TTS_URI,
    CONF_URI,
    CONF_WAKE_URI,
    DOMAIN,
)
from .coordinator import PrivateVoiceConfigEntry
from .protocol.client import Endpoint
from .satellites import satellite_subentries

TO_REDACT: Final = {
    CONF_HOST,
    CONF_URI,
    CONF_STT_URI,
    CONF_TTS_URI,
    CONF_WAKE_URI,
    CONF_ALLOWED_ADDRESSES,
    CONF_MAC,
    "mac_address",
}


def _redacted_uri(endpoint: Endpoint | None) -> str | None:
    """Show where an engine is by its port only."""
    return Endpoint(REDACTED, endpoint.port).uri if endpoint else None


def _audio_format(audio_format: AudioFormat | None) -> dict[str, int] | None:
    return asdict(audio_format) if audio_format else None


def _satellite(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry, subentry: ConfigSubentry
) -> dict[str, Any]:
    """Describe one satellite: its settings, its connection, what it says it is."""
    subentry_id = subentry.subentry_id
    link = entry.runtime_data.satellites.get(subentry_id)
    info = link.info if link else None
    described = info.satellite if info else None
    entity_id = er.async_get(hass).async_get_entity_id(
        "assist_satellite", DOMAIN, f"{subentry_id}-assist_satellite"
    )
    state = hass.states.get(entity_id) if entity_id else None
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, subentry_id), entry.entry_id
    )
    area = (
        ar.async_get(hass).async_get_area(device.area_id)
        if device and device.area_id
        else None
    )
    return {
        "title": subentry.title,
        "data": async_redact_data(subentry.data, TO_REDACT),
        # The device's area: the user may have moved it since adding it.
        "area": area.name if area else None,
        "state": state.state if state else None,
        "available": state is not None and state.state != STATE_UNAVAILABLE,
        "connected": link.connected if link else False,
        "paused": link.paused if link else None,
        "refused_chunks": link.refused_chunks if link else None,
        "described": (
            {
                "name": described.name,
                "description": described.description,
                "version": described.version,
                "attribution": described.attribution.name,
                "mic_format": _audio_format(
                    info.mic[0].mic_format if info and info.mic else None
                ),
                "snd_format": _audio_format(
                    info.snd[0].snd_format if info and info.snd else None
                ),
            }
            if described
            else None
        ),
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> dict[str, Any]:
    """Return what a bug report needs."""
    data = entry.runtime_data
    coordinator = data.coordinator
    engines = coordinator.data
    process = data.process
    return {
        "entry": {
            "data": async_redact_data(entry.data, TO_REDACT),
            "options": async_redact_data(entry.options, TO_REDACT),
        },
        "engines": {
            "endpoints": {
                role: _redacted_uri(endpoint)
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
        "satellites": {
            subentry.subentry_id: _satellite(hass, entry, subentry)
            for subentry in satellite_subentries(entry)
        },
    }
