"""A room's privacy counters: what its audio did today, kept in memory only.

Pure bookkeeping: the caller says what happened and when (its local date), the
ledger counts. Counts start afresh on a new day. No audio and no text is kept:
only numbers.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

from .policy import PrivacyMode

# 16 kHz, 16-bit, mono: what every audio path hands the engines.
ENGINE_BYTES_PER_SECOND = 32000


@dataclass(slots=True)
class RoomLedger:
    """Counters of one room for one day, and its current streams."""

    day: date
    requests: int = 0
    audio_bytes: int = 0
    # Audio sent to an engine off the hub; 0 unless the room allows the cloud.
    offhub_bytes: int = 0
    mode_changed: datetime | None = None
    mode: PrivacyMode = PrivacyMode.NORMAL
    # Streams of the room's audio flowing into the hub right now.
    _streams: set[object] = field(default_factory=set)

    def _roll(self, today: date) -> None:
        if today != self.day:
            self.day = today
            self.requests = 0
            self.audio_bytes = 0
            self.offhub_bytes = 0

    @property
    def audio_seconds(self) -> float:
        """Seconds of the room's audio the engines processed today."""
        return self.audio_bytes / ENGINE_BYTES_PER_SECOND

    @property
    def listening(self) -> bool:
        """Whether audio from the room is flowing into the hub right now."""
        return bool(self._streams)

    def request(self, today: date) -> None:
        """Count one voice request."""
        self._roll(today)
        self.requests += 1

    def audio(self, today: date, byte_count: int, *, offhub: bool = False) -> None:
        """Count audio that reached an engine (``offhub``: one off the hub)."""
        self._roll(today)
        self.audio_bytes += byte_count
        if offhub:
            self.offhub_bytes += byte_count

    def stream_started(self, stream: object) -> None:
        """Note a stream of the room's audio flowing in."""
        self._streams.add(stream)

    def stream_ended(self, stream: object) -> None:
        """Note that a stream stopped flowing in."""
        self._streams.discard(stream)

    def mode_set(self, mode: PrivacyMode, when: datetime) -> bool:
        """Record the room's mode; True if it changed."""
        if mode is self.mode:
            return False
        self.mode = mode
        self.mode_changed = when
        return True
