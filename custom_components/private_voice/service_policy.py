"""Who may use the public Wyoming service, decided for the protocol layer."""

from collections.abc import Callable, Iterable
import ipaddress
from typing import Final, override

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .privacy.policy import Refusal, Reply, mic_allowed, reply_kind, voice_id_allowed
from .privacy.room import RoomGate
from .protocol.service import AudioGate, ServiceErrorCode, ServicePolicy
from .rooms import Room, RoomManager


class _Gate(AudioGate):
    """A room's gate as the service asks it; no room: the audio always passes."""

    def __init__(self, gate: RoomGate | None) -> None:
        self._gate = gate

    @override
    def refusal(self) -> ServiceErrorCode | None:
        if self._gate is None or (refusal := self._gate.refusal()) is None:
            return None
        return _CODES[refusal]

    @override
    def passed(self, byte_count: int) -> None:
        if self._gate is not None:
            self._gate.passed(byte_count)

    @override
    def close(self) -> None:
        if self._gate is not None:
            self._gate.close()


class AddressPolicy(ServicePolicy):
    """Loopback, known satellites and the addresses the user lists may use the service.

    Wyoming has no authentication, so an address is all there is to go by
    (DESIGN §3). Anyone else is refused, and a repair issue names the address.
    A client's room is the room of the satellite at its address; a client that
    is no satellite (Home Assistant itself on loopback, a listed computer) has
    no room, and no room's mode applies to it.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        allowed: Iterable[str],
        satellites: Callable[[], dict[str, str]],
        rooms: RoomManager,
    ) -> None:
        """Admit loopback, ``allowed`` and the addresses ``satellites`` maps.

        ``satellites``: our satellites' assist_satellite entity ids by address.
        """
        self._hass = hass
        self._allowed = frozenset(allowed)
        self._satellites = satellites
        self._rooms = rooms

    def _room(self, address: str) -> Room | None:
        return self._rooms.room_of_address(address, self._satellites())

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
    def audio_gate(self, address: str, *, transcribe: bool) -> AudioGate:
        room = self._room(address)
        if room is not None and transcribe and mic_allowed(room.policy):
            self._rooms.count_request(room)
        return _Gate(self._rooms.gate(room))

    @override
    def voice_print_allowed(self, address: str) -> bool:
        room = self._room(address)
        return room is None or voice_id_allowed(room.policy)

    @override
    def speech_refusal(self, address: str) -> ServiceErrorCode | None:
        if (room := self._room(address)) is None:
            return None
        return _SPEECH_CODES[reply_kind(room.policy)]


_SPEECH_CODES: Final = {
    Reply.SPEECH: None,
    Reply.CHIME: ServiceErrorCode.QUIET,
    Reply.NONE: ServiceErrorCode.MUTED,
}
_CODES: Final = {
    Refusal.MUTED: ServiceErrorCode.MUTED,
    Refusal.MODE_CHANGED: ServiceErrorCode.MODE_CHANGED,
}
