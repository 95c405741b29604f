"""A room's privacy state: its policy now, and the gates its audio passes.

Every audio path opens a ``RoomGate`` for each stream of a room's audio and
asks it before passing each chunk on. A gate refuses once the room is muted,
and once the room's policy changes at all after the gate opened: a mode change
takes effect on the audio already in flight (DESIGN §3), not only on the next
request. Pure: the caller says what the date is, and is told of changes.
"""

from collections.abc import Callable
from datetime import date, datetime

from .ledger import RoomLedger
from .policy import Refusal, RoomPolicy, mic_allowed


class RoomState:
    """One room's policy, counters and open streams."""

    def __init__(
        self,
        policy: RoomPolicy,
        *,
        today: Callable[[], date],
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        """Start with ``policy``; ``changed`` is called when listening flips."""
        self._policy = policy
        self._today = today
        self._changed = changed
        # Bumped by every policy change: gates opened before it refuse.
        self._serial = 0
        self.ledger = RoomLedger(day=today(), mode=policy.mode)

    @property
    def policy(self) -> RoomPolicy:
        """The room's policy now."""
        return self._policy

    @property
    def serial(self) -> int:
        """How many times the policy changed."""
        return self._serial

    def set_policy(self, policy: RoomPolicy, when: datetime) -> bool:
        """Apply ``policy``; True if it changed (streams in flight are then cut)."""
        if policy == self._policy:
            return False
        self._policy = policy
        self._serial += 1
        self.ledger.mode_set(policy.mode, when)
        return True

    def gate(self, *, offhub: bool = False) -> RoomGate:
        """Open a gate for one stream of the room's audio.

        ``offhub``: the stream goes to an engine off the hub (a cloud the room
        allows). The gate counts as listening from the first audio it passes.
        """
        return RoomGate(self, offhub=offhub)

    def count_request(self) -> None:
        """Count one voice request from the room."""
        self.ledger.request(self._today())

    def _passed(self, gate: RoomGate, byte_count: int) -> None:
        was_listening = self.ledger.listening
        self.ledger.stream_started(gate)
        self.ledger.audio(self._today(), byte_count, offhub=gate.offhub)
        if not was_listening:
            self._changed()

    def _closed(self, gate: RoomGate) -> None:
        was_listening = self.ledger.listening
        self.ledger.stream_ended(gate)
        if was_listening and not self.ledger.listening:
            self._changed()


class RoomGate:
    """What one stream of a room's audio may pass, asked chunk by chunk."""

    def __init__(self, room: RoomState, *, offhub: bool) -> None:
        """Open on ``room`` as its policy is now."""
        self._room = room
        self._serial = room.serial
        self.offhub = offhub
        self._closed = False

    def refusal(self) -> Refusal | None:
        """None while the stream's audio may pass; else why it may not."""
        if self._closed:
            return Refusal.MODE_CHANGED
        if not mic_allowed(self._room.policy):
            return Refusal.MUTED
        if self._room.serial != self._serial:
            return Refusal.MODE_CHANGED
        return None

    def passed(self, byte_count: int) -> None:
        """Count audio that went on to an engine."""
        if not self._closed:
            self._room._passed(self, byte_count)  # noqa: SLF001 - its own room

    def close(self) -> None:
        """End the stream: it no longer flows in."""
        if not self._closed:
            self._closed = True
            self._room._closed(self)  # noqa: SLF001 - its own room
