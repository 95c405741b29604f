"""The entry's satellite subentries: which exist, and telling platforms of changes.

Satellites come and go without a reload. A tracker follows the entry's changes
(Home Assistant's config entry signal: update listeners are for options, which
reload), compares the subentries with those it has seen, and signals the
platforms, which add entities for a new satellite or follow a reconfigured one.
A removed subentry's device, and so its entities, Home Assistant removes.
"""

from collections.abc import Callable, Iterator
from typing import Any

from homeassistant.components.assist_satellite import DOMAIN as ASSIST_SATELLITE
from homeassistant.config_entries import ConfigEntry, ConfigEntryChange, ConfigSubentry
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import (
    async_dispatcher_connect,
    async_dispatcher_send,
)
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

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

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Start from the subentries ``entry`` has now."""
        self._hass = hass
        self._entry = entry
        self._seen = _snapshot(entry)

    @callback
    def async_entry_changed(
        self, change: ConfigEntryChange, entry: ConfigEntry
    ) -> None:
        """Signal added and changed satellites; forget removed ones."""
        if change is not ConfigEntryChange.UPDATED or entry is not self._entry:
            return
        current = _snapshot(entry)
        for subentry_id, state in current.items():
            subentry = entry.subentries[subentry_id]
            if (seen := self._seen.get(subentry_id)) is None:
                async_dispatcher_send(
                    self._hass, signal_satellite_added(entry), subentry
                )
            elif seen != state:
                async_dispatcher_send(
                    self._hass, signal_satellite_updated(entry, subentry_id), subentry
                )
        self._seen = current


def _snapshot(entry: ConfigEntry) -> dict[str, tuple[str, dict[str, Any]]]:
    """Copy each satellite's title and data.

    Copies, because Home Assistant updates a subentry in place: the subentry
    seen before is the changed one.
    """
    return {
        subentry.subentry_id: (subentry.title, dict(subentry.data))
        for subentry in satellite_subentries(entry)
    }


def satellite_entity_id(hass: HomeAssistant, subentry_id: str) -> str | None:
    """Return the assist_satellite entity of a satellite subentry."""
    return er.async_get(hass).async_get_entity_id(
        ASSIST_SATELLITE, DOMAIN, f"{subentry_id}-assist_satellite"
    )


def satellite_entities_by_address(
    hass: HomeAssistant, entry: ConfigEntry
) -> dict[str, str]:
    """Map each satellite's configured host and connected address to its entity."""
    found: dict[str, str] = {}
    links = entry.runtime_data.satellites
    for subentry in satellite_subentries(entry):
        if (entity_id := satellite_entity_id(hass, subentry.subentry_id)) is None:
            continue
        found[subentry.data[CONF_HOST]] = entity_id
        if (link := links.get(subentry.subentry_id)) and link.address:
            found[link.address] = entity_id
    return found


@callback
def async_add_satellite_entities(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities: Callable[[ConfigSubentry], list[Entity]],
) -> None:
    """Add a platform's ``entities`` for every satellite, now and when one is added."""

    @callback
    def _add(subentry: ConfigSubentry) -> None:
        async_add_entities(entities(subentry), config_subentry_id=subentry.subentry_id)

    for subentry in satellite_subentries(entry):
        _add(subentry)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_satellite_added(entry), _add)
    )
