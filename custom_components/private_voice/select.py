"""Each satellite's settings: its Assist pipeline, and when a command ends."""

from homeassistant.components.assist_pipeline import (
    AssistPipelineSelect,
    VadSensitivitySelect,
)
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import PrivateVoiceConfigEntry
from .entity import PrivateVoiceSatelliteEntity
from .satellites import async_add_satellite_entities

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrivateVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each satellite's selects, now and when a satellite is added."""
    async_add_satellite_entities(
        hass,
        entry,
        async_add_entities,
        lambda subentry: [
            SatellitePipelineSelect(hass, subentry),
            SatelliteVadSensitivitySelect(hass, subentry),
        ],
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
