"""Logbook: a room's privacy mode changes, and until when."""

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .rooms import EVENT_ROOM_MODE_CHANGED


def _message(data: Mapping[str, Any]) -> str:
    """Say what a mode change did, and until when if it lasts a while.

    "privacy mode changed to Muted until 07:00 on Wed 26 Nov": the logbook
    puts the room's name first.
    """
    message = f"privacy mode changed to {str(data['mode']).capitalize()}"
    if (until := data.get("until")) is None or (
        when := dt_util.parse_datetime(until)
    ) is None:
        return message
    when = dt_util.as_local(when)
    # With the day: the entry is read later, and a mode may last for days.
    return f"{message} until {when:%H:%M} on {when:%a} {when.day} {when:%b}"


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[
        [str, str, Callable[[Event[Any]], dict[str, str]]], None
    ],
) -> None:
    """Describe the room mode changes for the logbook."""

    @callback
    def _describe(event: Event[Any]) -> dict[str, str]:
        return {
            LOGBOOK_ENTRY_NAME: event.data["room"],
            LOGBOOK_ENTRY_MESSAGE: _message(event.data),
        }

    async_describe_event(DOMAIN, EVENT_ROOM_MODE_CHANGED, _describe)
