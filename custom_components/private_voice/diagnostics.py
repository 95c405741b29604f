"""Diagnostics for Private Voice: settings, engines, satellites, rooms, voices.

Never audio, transcripts or voice prints (DESIGN §3): a room is described by
its settings and its counters only. The whole report is redacted once more on
its way out, so that a transcript, voice print or address that ever reached
any of its parts would not reach the report.

Addresses are redacted: hosts and URIs are usually LAN addresses, which say
more about a home than a bug report needs, and MAC addresses identify the
hardware. Ports stay, as they are often the problem.
"""

from collections.abc import Mapping
from dataclasses import asdict
import re
from typing import Any, Final, cast

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
from .rooms import Room
from .satellites import satellite_subentries

TO_REDACT: Final = {
    # Where things are.
    CONF_HOST,
    CONF_URI,
    CONF_STT_URI,
    CONF_TTS_URI,
    CONF_WAKE_URI,
    CONF_ALLOWED_ADDRESSES,
    CONF_MAC,
    "mac_address",
    "bluetooth_mac_address",
    # What was said: an Assist pipeline's words in and out.
    "text",
    "transcript",
    "stt_output",
    "intent_input",
    "tts_input",
    # Who said it.
    "print",
    "voice_print",
    "voice_prints",
    "embedding",
    "embeddings",
}
# A MAC address in any text (a satellite's name may carry one, and
# wyoming-satellite announces itself by its MAC): colon or dash separated, or
# the 12 bare hex digits of a zeroconf name.
_MAC: Final = re.compile(
    r"(?<![0-9a-f])(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}(?![0-9a-f])"
    r"|(?<![0-9a-z])[0-9a-f]{12}(?![0-9a-z])",
    re.IGNORECASE,
)


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
        "data": dict(subentry.data),
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


def _room(room: Room) -> dict[str, Any]:
    """Describe one room: its settings and what its audio did, only numbers."""
    policy = room.policy
    ledger = room.state.ledger
    return {
        "area_id": room.area_id,
        "name": room.name,
        "satellites": sorted(room.satellites),
        "mode": policy.mode.value,
        "cloud_allowed": policy.cloud_allowed,
        "announce_when_muted": policy.announce_when_muted,
        "listening": ledger.listening,
        # The day the counters are of: they start afresh at the next count.
        "counters": {
            "day": ledger.day.isoformat(),
            "requests": ledger.requests,
            "audio_seconds": ledger.audio_seconds,
            "offhub_bytes": ledger.offhub_bytes,
        },
        "last_mode_change": (
            ledger.mode_changed.isoformat() if ledger.mode_changed else None
        ),
        "temporary_revert": (
            {"mode": room.revert[0].value, "at": room.revert[1].isoformat()}
            if room.revert
            else None
        ),
        "debug_recording_until": (
            room.debug_until.isoformat() if room.debug_until else None
        ),
    }


def _without_macs(data: object) -> object:
    """Redact MAC addresses wherever they appear in text, however deep."""
    if isinstance(data, str):
        return _MAC.sub(REDACTED, data)
    if isinstance(data, Mapping):
        return {key: _without_macs(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_without_macs(value) for value in data]
    return data


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PrivateVoiceConfigEntry
) -> dict[str, Any]:
    """Return what a bug report needs."""
    data = entry.runtime_data
    coordinator = data.coordinator
    engines = coordinator.data
    process = data.process
    report: dict[str, Any] = {
        "entry": {
            "data": dict(entry.data),
            "options": dict(entry.options),
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
        "rooms": {area_id: _room(room) for area_id, room in data.rooms.rooms.items()},
        # Who is enrolled and how well: never the prints themselves.
        "voice_id": {
            person: {
                "phrases": speaker["phrases"],
                "quality": speaker["quality"],
                "agreement": speaker["agreement"],
                "sensitive_actions": speaker["sensitive"],
                "enrolled": speaker["enrolled"],
            }
            for person, speaker in data.voice_id.enrolled.items()
        },
    }
    return cast("dict[str, Any]", _without_macs(async_redact_data(report, TO_REDACT)))
