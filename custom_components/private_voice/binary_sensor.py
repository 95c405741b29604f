"""Whether each room's microphone audio is flowing into the hub right now."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PrivateVoiceConfigEntry
from .entity import PrivateVoiceRoomEntity, async_add_room_entities
from .privacy.ledger import RoomLedger

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class RoomBinarySensorDescription(BinarySensorEntityDescription):
    """A yes or no about a room, read from its ledger."""

    is_on_fn: Callable[[RoomLedger], bool]


DESCRIPTIONS: tuple[RoomBinarySensorDescription, ...] = (
    # No device class: "sound" would read "detected", but this is the hub
    # taking the room's audio in, whatever it holds.
    RoomBinarySensorDescription(
        key="listening",
        translation_key="listening",
        is_on_fn=lambda ledger: ledger.listening,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each room's binary sensors, now and when a room is added."""
    async_add_room_entities(
        hass,
        entry,
        async_add_entities,
        lambda room: [
            RoomBinarySensor(entry, room, description) for description in DESCRIPTIONS
        ],
    )


class RoomBinarySensor(PrivateVoiceRoomEntity, BinarySensorEntity):
    """A yes or no about a room."""

    entity_description: RoomBinarySensorDescription

    @property
    @override
    def is_on(self) -> bool:
        """Return the room's answer now."""
        return self.entity_description.is_on_fn(self._room.state.ledger)
