"""Who may use the public Wyoming service, decided for the protocol layer."""

from collections.abc import Callable, Iterable
import ipaddress
from typing import override

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .protocol.service import ServicePolicy


class AddressPolicy(ServicePolicy):
    """Loopback, known satellites and the addresses the user lists may use the service.

    Wyoming has no authentication, so an address is all there is to go by
    (DESIGN §3). Anyone else is refused, and a repair issue names the address.
    Until rooms and their privacy modes exist, every admitted client's audio is
    heard and spoken to as in a Normal room.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        allowed: Iterable[str],
        satellites: Callable[[], set[str]],
    ) -> None:
        """Admit loopback, ``allowed`` and what ``satellites`` returns now."""
        self._hass = hass
        self._allowed = frozenset(allowed)
        self._satellites = satellites

    @override
    def client_allowed(self, address: str) -> bool:
        return (
            address in self._allowed
            or ipaddress.ip_address(address).is_loopback
            or address in self._satellites()
        )

    @callback
    @override
    def client_refused(self, address: str) -> None:
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            f"client_refused_{address}",
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="client_refused",
            translation_placeholders={"address": address},
        )

    @override
    def audio_allowed(self, address: str) -> bool:
        return True

    @override
    def speech_allowed(self, address: str) -> bool:
        return True

    @override
    def audio_received(self, address: str, byte_count: int) -> None:
        """Nothing counts audio yet: the rooms' privacy counters will."""
