"""Actions: a room's privacy mode, for good or for a while; enrolled voices.

A room is an area that holds a voice satellite. The action targets rooms the
way Home Assistant targets anything: areas, or the devices and entities in
them (a satellite stands for the room it is in); floors and labels stand for
the rooms among what they hold. A target named outright that is no room is an
error, so that an automation aimed at the wrong area says so.
"""

from datetime import timedelta
from typing import Final

from homeassistant.components.assist_satellite import DOMAIN as ASSIST_SATELLITE
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    area_registry as ar,
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.target import TargetSelection
import probatio

from .const import DOMAIN
from .coordinator import PrivateVoiceConfigEntry
from .privacy.policy import PrivacyMode
from .privacy.voiceprint import MAX_PHRASES, MIN_PHRASES
from .rooms import RoomManager
from .voice_id import VoiceId

SERVICE_SET_ROOM_MODE: Final = "set_room_mode"
SERVICE_ENROLL_SPEAKER: Final = "enroll_speaker"
SERVICE_FORGET_SPEAKER: Final = "forget_speaker"
ATTR_MODE: Final = "mode"
ATTR_DURATION: Final = "duration"
ATTR_PERSON: Final = "person"
ATTR_SATELLITE: Final = "satellite"
ATTR_PHRASES: Final = "phrases"
ATTR_ALLOW_SENSITIVE: Final = "allow_sensitive_actions"

SET_ROOM_MODE_SCHEMA: Final = probatio.All(
    probatio.Schema(
        {
            **cv.ENTITY_SERVICE_FIELDS,
            probatio.Required(ATTR_MODE): probatio.Coerce(PrivacyMode),
            # A mode for no time at all would be undone as it is set.
            probatio.Optional(ATTR_DURATION): probatio.All(
                cv.positive_time_period, probatio.Range(min=timedelta(seconds=1))
            ),
        }
    ),
    cv.has_at_least_one_key(*cv.ENTITY_SERVICE_FIELDS),
)


ENROLL_SPEAKER_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(ATTR_PERSON): cv.entity_domain("person"),
        probatio.Required(ATTR_SATELLITE): cv.entity_domain(ASSIST_SATELLITE),
        probatio.Optional(ATTR_PHRASES, default=MIN_PHRASES): probatio.All(
            probatio.Coerce(int), probatio.Range(min=MIN_PHRASES, max=MAX_PHRASES)
        ),
        probatio.Optional(ATTR_ALLOW_SENSITIVE, default=False): cv.boolean,
    }
)
FORGET_SPEAKER_SCHEMA: Final = probatio.Schema(
    {probatio.Required(ATTR_PERSON): cv.entity_domain("person")}
)


def _refused(translation_key: str, **placeholders: str) -> ServiceValidationError:
    """Return the error that refuses the call, translated."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )


class _Targets:
    """Resolves a call's target to rooms (area ids), with the registries."""

    def __init__(self, hass: HomeAssistant, rooms: set[str]) -> None:
        """Resolve against ``rooms``: every room of the loaded entries."""
        self._rooms = rooms
        self._areas = ar.async_get(hass)
        self._devices = dr.async_get(hass)
        self._entities = er.async_get(hass)

    def entity_area(self, entity: er.RegistryEntry) -> str | None:
        """Return the area an entity is in: its own, else its device's.

        The same rule makes a satellite's area a room.
        """
        if entity.area_id is not None or entity.device_id is None:
            return entity.area_id
        device = self._devices.async_get(entity.device_id)
        return device.area_id if device is not None else None

    def device_areas(self, device: dr.AnyDeviceEntry) -> set[str]:
        """Return the rooms a device stands for.

        A satellite's device: the rooms its satellites are in (an entity may
        be placed apart from its device). Another device: its own area.
        """
        satellites = {
            area
            for entity in er.async_entries_for_device(self._entities, device.id)
            if entity.domain == ASSIST_SATELLITE
            and (area := self.entity_area(entity)) is not None
        }
        if satellites:
            return satellites
        return {device.area_id} if device.area_id is not None else set()

    def named(self, selection: TargetSelection) -> set[str]:
        """Return the rooms of areas, devices and entities named outright."""
        found: set[str] = set()
        for area_id in selection.area_ids:
            if area_id not in self._rooms:
                area = self._areas.async_get_area(area_id)
                raise _refused(
                    translation_key="not_a_room", area=area.name if area else area_id
                )
            found.add(area_id)
        for device_id in selection.device_ids:
            device = self._devices.async_get(device_id)
            rooms = self.device_areas(device) & self._rooms if device else set()
            if not rooms:
                name = (device.name_by_user or device.name) if device else None
                raise _refused(
                    translation_key="not_in_a_room", target=name or device_id
                )
            found |= rooms
        for entity_id in selection.entity_ids:
            entity = self._entities.async_get(entity_id)
            room = self.entity_area(entity) if entity is not None else None
            if room is None or room not in self._rooms:
                raise _refused(translation_key="not_in_a_room", target=entity_id)
            found.add(room)
        return found

    def held(self, selection: TargetSelection) -> set[str]:
        """Return the rooms among what floors and labels hold."""
        areas: set[str] = set()
        for floor_id in selection.floor_ids:
            areas |= {a.id for a in self._areas.areas.get_areas_for_floor(floor_id)}
        for label_id in selection.label_ids:
            areas |= {a.id for a in self._areas.areas.get_areas_for_label(label_id)}
            for device in dr.async_entries_for_label(self._devices, label_id):
                areas |= self.device_areas(device)
            for entity in self._entities.entities.get_entries_for_label(label_id):
                if (area := self.entity_area(entity)) is not None:
                    areas.add(area)
        return areas & self._rooms


@callback
def _async_set_room_mode(call: ServiceCall) -> None:
    """Set the mode of every targeted room; nothing changes if one is wrong."""
    entries: list[PrivateVoiceConfigEntry] = (
        call.hass.config_entries.async_loaded_entries(DOMAIN)
    )
    if not entries:
        raise _refused(translation_key="not_loaded")
    managers: list[RoomManager] = [entry.runtime_data.rooms for entry in entries]
    targets = _Targets(
        call.hass, {area_id for manager in managers for area_id in manager.rooms}
    )
    selection = TargetSelection(call.data)
    if not (rooms := targets.named(selection) | targets.held(selection)):
        raise _refused(translation_key="no_room")
    for manager in managers:
        for area_id in rooms & set(manager.rooms):
            manager.async_set_policy(
                area_id,
                context=call.context,
                duration=call.data.get(ATTR_DURATION),
                mode=call.data[ATTR_MODE],
            )


def _voice_id(call: ServiceCall) -> VoiceId:
    """Return the voice prints of the loaded entry (one per home)."""
    entries: list[PrivateVoiceConfigEntry] = (
        call.hass.config_entries.async_loaded_entries(DOMAIN)
    )
    if not entries:
        raise _refused(translation_key="not_loaded")
    return entries[0].runtime_data.voice_id


async def _async_enroll_speaker(call: ServiceCall) -> ServiceResponse:
    """Enrol a person's voice at a satellite; say and return how well it went."""
    return await _voice_id(call).async_enroll(
        call.data[ATTR_PERSON],
        call.data[ATTR_SATELLITE],
        phrases=call.data[ATTR_PHRASES],
        allow_sensitive=call.data[ATTR_ALLOW_SENSITIVE],
    )


async def _async_forget_speaker(call: ServiceCall) -> None:
    """Delete a person's voice print."""
    await _voice_id(call).async_forget(call.data[ATTR_PERSON])


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, whatever the entries)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_ROOM_MODE,
        _async_set_room_mode,
        schema=SET_ROOM_MODE_SCHEMA,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_ENROLL_SPEAKER,
        _async_enroll_speaker,
        schema=ENROLL_SPEAKER_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_FORGET_SPEAKER,
        _async_forget_speaker,
        schema=FORGET_SPEAKER_SCHEMA,
    )
