"""What each room's audio did today, and when its mode last changed.

Only numbers: the counters are kept in memory and start afresh each day.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfInformation, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_time_change
from homeassistant.util import dt as dt_util

from .coordinator import PrivateVoiceConfigEntry
from .entity import PrivateVoiceRoomEntity, async_add_room_entities
from .privacy.ledger import RoomLedger

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class RoomSensorDescription(SensorEntityDescription):
    """A number about a room, read from its ledger."""

    value_fn: Callable[[RoomLedger], datetime | float | None]
    # A count of one day: 0 from midnight on, until the room's next count.
    daily: bool = False


DESCRIPTIONS: tuple[RoomSensorDescription, ...] = (
    RoomSensorDescription(
        key="requests_today",
        translation_key="requests_today",
        state_class=SensorStateClass.TOTAL_INCREASING,
        daily=True,
        value_fn=lambda ledger: ledger.requests,
    ),
    RoomSensorDescription(
        key="audio_today",
        translation_key="audio_today",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=0,
        daily=True,
        value_fn=lambda ledger: ledger.audio_seconds,
    ),
    RoomSensorDescription(
        key="offhub_audio",
        translation_key="offhub_audio",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        state_class=SensorStateClass.TOTAL_INCREASING,
        daily=True,
        value_fn=lambda ledger: ledger.offhub_bytes,
    ),
    RoomSensorDescription(
        key="mode_changed",
        translation_key="mode_changed",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda ledger: ledger.mode_changed,
    ),
)


LAST_SPEAKER = SensorEntityDescription(
    key="last_speaker", translation_key="last_speaker"
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each room's sensors, now and when a room is added."""
    async_add_room_entities(
        hass,
        entry,
        async_add_entities,
        lambda room: [
            *(RoomSensor(entry, room, description) for description in DESCRIPTIONS),
            LastSpeakerSensor(entry, room, LAST_SPEAKER),
        ],
    )


class RoomSensor(PrivateVoiceRoomEntity, SensorEntity):
    """A number about a room."""

    entity_description: RoomSensorDescription

    @property
    @override
    def native_value(self) -> datetime | float | None:
        """Return the room's number now."""
        ledger = self._room.state.ledger
        if self.entity_description.daily and ledger.day != dt_util.now().date():
            # Nothing counted yet today: the ledger turns the day at its next count.
            return 0
        return self.entity_description.value_fn(ledger)

    @override
    async def async_added_to_hass(self) -> None:
        """Also show a daily count's reset at midnight, when nothing else writes."""
        await super().async_added_to_hass()
        if self.entity_description.daily:
            self.async_on_remove(
                async_track_time_change(
                    self.hass, self._new_day, hour=0, minute=0, second=0
                )
            )

    @callback
    def _new_day(self, _: datetime) -> None:
        self.async_write_ha_state()


class LastSpeakerSensor(PrivateVoiceRoomEntity, SensorEntity):
    """Who spoke last in the room, by voice print: a person's name, or unknown.

    Rooms in Guest and Muted identify nobody, so it keeps its last value.
    """

    @property
    @override
    def native_value(self) -> str | None:
        """The person's name; None (unknown) for a voice that matched no print."""
        if not (person := self._room.speaker):
            return None
        state = self.hass.states.get(person)
        return state.name if state is not None else person

    @property
    @override
    def extra_state_attributes(self) -> dict[str, str | None]:
        """The person entity, for automations."""
        return {"person_id": self._room.speaker or None}
