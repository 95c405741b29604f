"""Selects: each satellite's pipeline and end of command, each room's privacy mode."""

from typing import override

from homeassistant.components.assist_pipeline import (
    AssistPipelineSelect,
    VadSensitivitySelect,
)
from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import PrivateVoiceConfigEntry
from .entity import (
    PrivateVoiceRoomEntity,
    PrivateVoiceSatelliteEntity,
    async_add_room_entities,
)
from .privacy.policy import PrivacyMode
from .satellites import async_add_satellite_entities

PARALLEL_UPDATES = 0

PRIVACY_MODE = SelectEntityDescription(
    key="privacy_mode",
    translation_key="privacy_mode",
    options=[mode.value for mode in PrivacyMode],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each satellite's and each room's selects, now and when one is added."""
    async_add_satellite_entities(
        hass,
        entry,
        async_add_entities,
        lambda subentry: [
            SatellitePipelineSelect(hass, subentry),
            SatelliteVadSensitivitySelect(hass, subentry),
        ],
    )
    async_add_room_entities(
        hass,
        entry,
        async_add_entities,
        lambda room: [RoomPrivacyModeSelect(entry, room, PRIVACY_MODE)],
    )


class SatellitePipelineSelect(PrivateVoiceSatelliteEntity, AssistPipelineSelect):
    """The Assist pipeline a satellite runs (the preferred one by default)."""

    def __init__(self, hass: HomeAssistant, subentry: ConfigSubentry) -> None:
        """Choose the pipeline of the satellite of ``subentry``."""
        AssistPipelineSelect.__init__(self, hass, DOMAIN, subentry.subentry_id)
        PrivateVoiceSatelliteEntity.__init__(self, subentry)


class SatelliteVadSensitivitySelect(PrivateVoiceSatelliteEntity, VadSensitivitySelect):
    """How long a satellite's speaker may pause before the command ends."""

    def __init__(self, hass: HomeAssistant, subentry: ConfigSubentry) -> None:
        """Choose the sensitivity of the satellite of ``subentry``."""
        VadSensitivitySelect.__init__(self, hass, subentry.subentry_id)
        PrivateVoiceSatelliteEntity.__init__(self, subentry)


class RoomPrivacyModeSelect(PrivateVoiceRoomEntity, SelectEntity):
    """A room's privacy mode: what its microphones and speakers may do."""

    @property
    @override
    def current_option(self) -> str:
        """Return the room's mode now."""
        return self._room.policy.mode.value

    @override
    async def async_select_option(self, option: str) -> None:
        """Put the room in ``option``; audio already flowing is cut at once."""
        self._rooms.async_set_policy(
            self._room.area_id, mode=PrivacyMode(option), context=self._context
        )
