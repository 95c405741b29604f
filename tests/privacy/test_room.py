"""A room's gates: what of its audio passes, and when a mode change cuts it."""

from datetime import UTC, date, datetime

import pytest

from custom_components.private_voice.privacy.policy import (
    PrivacyMode,
    Refusal,
    RoomPolicy,
)
from custom_components.private_voice.privacy.room import RoomState

TODAY = date(2026, 11, 25)
CHANGED = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Skip Home Assistant: the room state is pure."""


@pytest.fixture(autouse=True)
def setup_core() -> None:
    """Skip Home Assistant: the room state is pure."""


class Room:
    """A room with a clock the test moves and a count of listening flips."""

    def __init__(self, mode: PrivacyMode = PrivacyMode.NORMAL) -> None:
        """Start the room in ``mode``, today."""
        self.today = TODAY
        self.flips = 0
        self.state = RoomState(
            RoomPolicy(mode=mode), today=lambda: self.today, changed=self._flip
        )

    def _flip(self) -> None:
        self.flips += 1


def test_a_gate_passes_audio_and_counts_it() -> None:
    """Audio passes in Normal; the room listens while a stream flows."""
    room = Room()
    gate = room.state.gate()
    assert gate.refusal() is None
    gate.passed(3200)
    gate.passed(3200)
    assert room.state.ledger.listening
    assert room.state.ledger.audio_bytes == 6400
    assert room.state.ledger.audio_seconds == pytest.approx(0.2)
    assert room.state.ledger.offhub_bytes == 0
    gate.close()
    assert not room.state.ledger.listening
    # Listening flipped on once and off once, not per chunk.
    assert room.flips == 2


def test_a_muted_room_refuses_every_gate() -> None:
    """Muted: a gate refuses from the start."""
    room = Room(PrivacyMode.MUTED)
    assert room.state.gate().refusal() is Refusal.MUTED


@pytest.mark.parametrize(
    ("mode", "refusal"),
    [
        (PrivacyMode.MUTED, Refusal.MUTED),
        (PrivacyMode.GUEST, Refusal.MODE_CHANGED),
        (PrivacyMode.QUIET, Refusal.MODE_CHANGED),
    ],
)
def test_a_mode_change_cuts_the_streams_in_flight(
    mode: PrivacyMode, refusal: Refusal
) -> None:
    """A gate opened before a change refuses after it; a new one follows the mode."""
    room = Room()
    gate = room.state.gate()
    gate.passed(3200)
    assert room.state.set_policy(RoomPolicy(mode=mode), CHANGED)
    assert gate.refusal() is refusal
    assert room.state.ledger.mode is mode
    assert room.state.ledger.mode_changed == CHANGED
    fresh = room.state.gate()
    assert fresh.refusal() is (Refusal.MUTED if mode is PrivacyMode.MUTED else None)


def test_the_same_policy_changes_nothing() -> None:
    """Setting the policy the room has cuts nothing."""
    room = Room()
    gate = room.state.gate()
    assert not room.state.set_policy(RoomPolicy(), CHANGED)
    assert gate.refusal() is None
    assert room.state.ledger.mode_changed is None


def test_allowing_the_cloud_cuts_streams_too() -> None:
    """Any policy change cuts: a stream keeps the rules it began under, or ends."""
    room = Room()
    gate = room.state.gate()
    assert room.state.set_policy(RoomPolicy(cloud_allowed=True), CHANGED)
    assert gate.refusal() is Refusal.MODE_CHANGED
    # The mode did not change: no new mode-change time.
    assert room.state.ledger.mode_changed is None


def test_offhub_audio_is_counted_apart() -> None:
    """Audio to an engine off the hub counts as processed and as sent off the hub."""
    room = Room()
    gate = room.state.gate(offhub=True)
    gate.passed(1000)
    gate.offhub = False
    gate.passed(500)
    assert room.state.ledger.audio_bytes == 1500
    assert room.state.ledger.offhub_bytes == 1000


def test_counters_start_afresh_each_day() -> None:
    """Requests and audio are counted per day."""
    room = Room()
    room.state.count_request()
    gate = room.state.gate()
    gate.passed(3200)
    room.today = date(2026, 11, 26)
    room.state.count_request()
    assert room.state.ledger.requests == 1
    assert room.state.ledger.audio_bytes == 0


def test_a_closed_gate_passes_nothing() -> None:
    """After its stream ended, a gate refuses and counts nothing."""
    room = Room()
    gate = room.state.gate()
    gate.close()
    gate.passed(3200)
    assert gate.refusal() is Refusal.MODE_CHANGED
    assert room.state.ledger.audio_bytes == 0
    assert room.flips == 0
