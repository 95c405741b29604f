"""Sensitive actions: what a voice command may do only for a person allowed to.

DESIGN §3, footnote 1. The guard finds, before anything runs, which services a
command would call on which entities; this module says which of those calls
are sensitive, by catalogue key. The keys are stored in the entry's options (the
user's list), so they never change.

Which keys Home Assistant 2026.10's own intents can reach by voice:

- ``lock_unlock``: "unlock the front door" (HassTurnOff on a lock);
- ``cover_open_garage`` / ``_door`` / ``_gate``: "open the garage door"
  (HassTurnOn, HassOpenCover, HassToggle, HassSetPosition on a cover);
- ``camera_off``: "turn off the porch camera" (HassTurnOff on a camera);
- ``microphone_unmute``: "turn off Voice PE mute" (HassTurnOff on a voice
  satellite's mute switch).

``lock_open`` and ``alarm_disarm`` have no intent in Home Assistant: they are
caught if an integration registers a service intent that calls them, and are
listed because the user may expect them; the guard cannot see them done by a
script, an automation or a sentence trigger.
"""

from enum import StrEnum
from typing import Final


class SensitiveAction(StrEnum):
    """A kind of sensitive action: the key of the user's list."""

    LOCK_UNLOCK = "lock_unlock"
    LOCK_OPEN = "lock_open"
    ALARM_DISARM = "alarm_disarm"
    COVER_OPEN_GARAGE = "cover_open_garage"
    COVER_OPEN_DOOR = "cover_open_door"
    COVER_OPEN_GATE = "cover_open_gate"
    CAMERA_OFF = "camera_off"
    MICROPHONE_UNMUTE = "microphone_unmute"


# The default list: every kind.
ALL_SENSITIVE_ACTIONS: Final = frozenset(SensitiveAction)

# Entities that tell where people are: not read out in a Guest room.
PERSONAL_DOMAINS: Final = frozenset({"person", "device_tracker"})

# Home Assistant's generic services, as its on/off intents call them.
_GENERIC_DOMAIN: Final = "homeassistant"
_TURN_ON: Final = "turn_on"
_TURN_OFF: Final = "turn_off"
_TOGGLE: Final = "toggle"

# What turning an entity of these domains on, off or over does (as Home
# Assistant's on/off intent handler calls it). A toggle is taken for the
# sensitive way: whether it opens or closes depends on a state that may change
# before it runs.
_ON_OFF_SERVICES: Final[dict[str, dict[str, str]]] = {
    "cover": {_TURN_ON: "open_cover", _TURN_OFF: "close_cover", _TOGGLE: "open_cover"},
    "lock": {_TURN_ON: "lock", _TURN_OFF: "unlock", _TOGGLE: "unlock"},
    "valve": {_TURN_ON: "open_valve", _TURN_OFF: "close_valve", _TOGGLE: "toggle"},
    "camera": {_TOGGLE: _TURN_OFF},
    "switch": {_TOGGLE: _TURN_OFF},
}

# Covers whose opening lets somebody in.
_ENTRANCE_COVERS: Final = {
    "garage": SensitiveAction.COVER_OPEN_GARAGE,
    "door": SensitiveAction.COVER_OPEN_DOOR,
    "gate": SensitiveAction.COVER_OPEN_GATE,
}


def service_called(
    entity_domain: str,
    domain: str,
    service: str,
    *,
    position: float | None = None,
) -> tuple[str, str]:
    """Return the service a call ends as, on an entity of ``entity_domain``.

    ``domain``/``service``: what an intent handler calls (e.g. the generic
    ``homeassistant.turn_off``, which unlocks a lock). ``position``: the target
    of a ``set_cover_position``; anything above closed may open the cover.
    """
    if domain == _GENERIC_DOMAIN:
        domain = entity_domain
    if domain == "cover" and service == "set_cover_position":
        service = "close_cover" if position == 0 else "open_cover"
    service = _ON_OFF_SERVICES.get(domain, {}).get(service, service)
    return domain, service


def sensitive_action(
    domain: str,
    service: str,
    device_class: str | None,
    enabled: frozenset[str],
    *,
    mute_switch: bool = False,
) -> SensitiveAction | None:
    """Return the kind of sensitive action a service call is, if on the user's list.

    ``domain``/``service``: the call as ``service_called`` ends it.
    ``device_class``: the entity's. ``mute_switch``: the entity is a voice
    satellite's microphone mute switch. ``enabled``: the user's list of keys.
    """
    found: SensitiveAction | None = None
    match domain, service:
        case "lock", "unlock":
            found = SensitiveAction.LOCK_UNLOCK
        case "lock", "open":
            found = SensitiveAction.LOCK_OPEN
        case "alarm_control_panel", "alarm_disarm":
            found = SensitiveAction.ALARM_DISARM
        case "cover", "open_cover" | "toggle":
            found = _ENTRANCE_COVERS.get(device_class or "")
        case "camera", "turn_off":
            found = SensitiveAction.CAMERA_OFF
        case "switch", "turn_off" if mute_switch:
            found = SensitiveAction.MICROPHONE_UNMUTE
    return found if found is not None and found in enabled else None


def personal_data(domain: str) -> bool:
    """Whether an entity of ``domain`` tells something personal (where people are)."""
    return domain in PERSONAL_DOMAINS
