"""Entity bases: the engines' one service device, and one device per satellite."""

from abc import abstractmethod
from typing import Final, override

from homeassistant.config_entries import ConfigSubentry
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from wyoming.info import AsrProgram, TtsProgram, WakeProgram

from .const import CONF_ENGINE_MODE, DOMAIN, EngineMode
from .coordinator import EngineCoordinator, EngineInfo
from .protocol.client import Endpoint

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
