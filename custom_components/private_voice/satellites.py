"""The entry's satellite subentries: which exist, and telling platforms of changes.

Satellites come and go without a reload: the entry's update listener compares
its subentries with those it has seen and signals the platforms, which add
entities for a new satellite or follow a reconfigured one. A removed
subentry's device, and so its entities, are removed by Home Assistant.
"""

from collections.abc import Iterator

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import DOMAIN, SUBENTRY_SATELLITE


def satellite_subentries(entry: ConfigEntry) -> Iterator[ConfigSubentry]:
    """Return the entry's satellites."""
    return (
        subentry
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_SATELLITE
    )


def signal_satellite_added(entry: ConfigEntry) -> str:
    """Name the signal a new satellite subentry is sent with."""
    return f"{DOMAIN}_{entry.entry_id}_satellite_added"


def signal_satellite_updated(entry: ConfigEntry, subentry_id: str) -> str:
    """Name the signal a reconfigured satellite subentry is sent with."""
    return f"{DOMAIN}_{entry.entry_id}_satellite_{subentry_id}_updated"


class SatelliteTracker:
    """Remember the satellite subentries and signal what changed."""

    def __init__(self, entry: ConfigEntry) -> None:
        """Start from the subentries ``entry`` has now."""
        self._seen = {s.subentry_id: s for s in satellite_subentries(entry)}

    async def async_entry_updated(
        self, hass: HomeAssistant, entry: ConfigEntry
    ) -> None:
        """Signal added and changed satellites; forget removed ones."""
        current = {s.subentry_id: s for s in satellite_subentries(entry)}
        for subentry_id, subentry in current.items():
            if (seen := self._seen.get(subentry_id)) is None:
                async_dispatcher_send(hass, signal_satellite_added(entry), subentry)
            elif seen.data != subentry.data or seen.title != subentry.title:
                async_dispatcher_send(
                    hass, signal_satellite_updated(entry, subentry_id), subentry
                )
        self._seen = current


def satellite_hosts(entry: ConfigEntry) -> set[str]:
    """Return the hosts the satellites were configured with."""
    return {subentry.data[CONF_HOST] for subentry in satellite_subentries(entry)}
