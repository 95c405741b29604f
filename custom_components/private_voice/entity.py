"""Entity bases: the engines' one service device, one device per satellite, per room."""

from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Final, override

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from wyoming.info import AsrProgram, TtsProgram, WakeProgram

from .const import CONF_ENGINE_MODE, DOMAIN, EngineMode
from .coordinator import EngineCoordinator, EngineInfo, PrivateVoiceConfigEntry
from .protocol.client import Endpoint
from .rooms import Room, room_device_identifier, signal_room_added, signal_room_updated

# The longest an engine may stay silent while it owes an answer (a transcript
# after audio-stop, the next audio of a synthesis). The engine host closes a
# connection that is idle for as long.
ENGINE_REPLY_TIMEOUT: Final = 60.0

# The audio Assist pipelines send to speech-to-text and wake word engines.
ASSIST_RATE: Final = 16000
ASSIST_WIDTH: Final = 2
ASSIST_CHANNELS: Final = 1

# The device's model says where the engines run.
_MODELS: Final = {
    EngineMode.LOCAL: "Engine host on Home Assistant",
    EngineMode.REMOTE: "Engine host",
    EngineMode.SERVICES: "Wyoming services",
}


def language_tag(language: str) -> str:
    """Write a Wyoming language (``en_US``, as piper has it) as Home Assistant does.

    Home Assistant's language tags are BCP 47 (``en-US``); a pipeline's
    language must equal one of the provider's tags.
    """
    return language.replace("_", "-")


def _engines_version(engines: EngineInfo) -> str | None:
    """Return the engine host's version; None for services that differ or do not say."""
    versions = {
        program.version
        for program in (engines.stt, engines.tts, engines.wake)
        if program is not None and program.version
    }
    return versions.pop() if len(versions) == 1 else None


class PrivateVoiceEngineEntity(CoordinatorEntity[EngineCoordinator]):
    """An Assist provider on one of the entry's engines.

    Subclasses set ``entity_description``, whose key ends the unique id, and
    say which of the engines' programs they use. Unavailable while the engines
    do not answer ``describe`` or no longer offer that program.
    """

    _attr_has_entity_name = True

    def __init__(self, coordinator: EngineCoordinator, endpoint: Endpoint) -> None:
        """Attach to the engine at ``endpoint`` and the entry's one device."""
        super().__init__(coordinator)
        self._endpoint = endpoint
        entry = coordinator.config_entry
        self._attr_unique_id = f"{entry.entry_id}_{self.entity_description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            entry_type=DeviceEntryType.SERVICE,
            manufacturer="Private Voice",
            model=_MODELS[EngineMode(entry.data[CONF_ENGINE_MODE])],
            sw_version=_engines_version(coordinator.data),
            translation_key="engines",
        )

    @property
    @abstractmethod
    def _program(self) -> AsrProgram | TtsProgram | WakeProgram | None:
        """Return the engines' program this entity uses, as last described."""

    @property
    @override
    def available(self) -> bool:
        """Available while the engines answer and offer this entity's program."""
        return super().available and self._program is not None


class PrivateVoiceSatelliteEntity(Entity):
    """An entity of one satellite: its subentry's device.

    Subclasses set ``entity_description``, whose key ends the unique id.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, subentry: ConfigSubentry) -> None:
        """Attach to the device of ``subentry``."""
        self._subentry = subentry
        self._attr_unique_id = f"{subentry.subentry_id}-{self.entity_description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry.subentry_id)},
            name=subentry.title,
            manufacturer="Wyoming",
            model="Satellite",
        )


class PrivateVoiceRoomEntity(Entity):
    """An entity of one room: the room's device, written whenever the room changes.

    Subclasses read the room's policy and counters, and type
    ``entity_description``, whose key ends the unique id.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        entry: PrivateVoiceConfigEntry,
        room: Room,
        description: EntityDescription,
    ) -> None:
        """Attach to the device of ``room``, which the room manager made."""
        self.entity_description = description
        self._entry = entry
        self._rooms = entry.runtime_data.rooms
        self._room = room
        self._attr_unique_id = f"{entry.entry_id}-room-{room.area_id}-{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={room_device_identifier(room.area_id)}
        )

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the room: its policy, whether it listens, its counters."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_room_updated(self._entry, self._room.area_id),
                self.async_write_ha_state,
            )
        )


@callback
def async_add_room_entities(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities: Callable[[Room], Iterable[Entity]],
) -> None:
    """Add a platform's ``entities`` for every room, now and when one is added.

    A room that goes away takes its device, and so its entities, with it.
    """

    @callback
    def _add(room: Room) -> None:
        async_add_entities(entities(room))

    for room in entry.runtime_data.rooms.rooms.values():
        _add(room)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_room_added(entry), _add)
    )
