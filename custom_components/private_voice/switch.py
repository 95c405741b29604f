"""Each room's privacy settings: whether the cloud may hear it, and announcements."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, override

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PrivateVoiceConfigEntry
from .entity import PrivateVoiceRoomEntity, async_add_room_entities
from .rooms import Room, RoomManager

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class RoomSwitchDescription(SwitchEntityDescription):
    """A setting of a room's policy: how to read it, and how to change it."""

    is_on_fn: Callable[[Room], bool]
    # Given the rooms, the room's area, the new value and who changes it.
    set_fn: Callable[[RoomManager, str, bool, Context | None], None]


DESCRIPTIONS: tuple[RoomSwitchDescription, ...] = (
    RoomSwitchDescription(
        key="cloud_allowed",
        translation_key="cloud_allowed",
        entity_category=EntityCategory.CONFIG,
        is_on_fn=lambda room: room.policy.cloud_allowed,
        set_fn=lambda rooms, area_id, on, context: rooms.async_set_policy(
            area_id, cloud_allowed=on, context=context
        ),
    ),
    RoomSwitchDescription(
        key="announce_when_muted",
        translation_key="announce_when_muted",
        entity_category=EntityCategory.CONFIG,
        is_on_fn=lambda room: room.policy.announce_when_muted,
        set_fn=lambda rooms, area_id, on, context: rooms.async_set_policy(
            area_id, announce_when_muted=on, context=context
        ),
    ),
    # Off after an hour by itself, and after a restart (debug_recording.py).
    RoomSwitchDescription(
        key="debug_recording",
        translation_key="debug_recording",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        is_on_fn=lambda room: room.debug_until is not None,
        set_fn=lambda rooms, area_id, on, _: rooms.async_set_debug_recording(
            area_id, on=on
        ),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each room's switches, now and when a room is added."""
    async_add_room_entities(
        hass,
        entry,
        async_add_entities,
        lambda room: [
            RoomSwitch(entry, room, description) for description in DESCRIPTIONS
        ],
    )


class RoomSwitch(PrivateVoiceRoomEntity, SwitchEntity):
    """Turns one setting of a room's policy on or off."""

    entity_description: RoomSwitchDescription

    @property
    @override
    def is_on(self) -> bool:
        """Return whether the room allows it now."""
        return self.entity_description.is_on_fn(self._room)

    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Allow it in the room."""
        self._set(on=True)

    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        """No longer allow it in the room; a stream in flight is cut."""
        self._set(on=False)

    def _set(self, *, on: bool) -> None:
        self.entity_description.set_fn(
            self._rooms, self._room.area_id, on, self._context
        )
