"""The privacy table of DESIGN §3, mode by mode."""

from datetime import UTC, date, datetime

import pytest

from custom_components.private_voice.privacy.ledger import RoomLedger
from custom_components.private_voice.privacy.policy import (
    Announcement,
    PrivacyMode,
    Refusal,
    Reply,
    RoomPolicy,
    announcement,
    engine_refusal,
    mic_allowed,
    reply_kind,
    sensitive_action_refusal,
    transcript_loggable,
    voice_id_allowed,
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Skip Home Assistant: the policy is pure."""


@pytest.fixture(autouse=True)
def setup_core() -> None:
    """Skip Home Assistant: the policy is pure."""


# mode: mic, reply, announcement (normal, urgent), voice ID, transcript log
TABLE = {
    PrivacyMode.NORMAL: (
        True,
        Reply.SPEECH,
        Announcement.PLAY,
        Announcement.PLAY,
        True,
        True,
    ),
    PrivacyMode.GUEST: (
        True,
        Reply.SPEECH,
        Announcement.PLAY,
        Announcement.PLAY,
        False,
        False,
    ),
    PrivacyMode.QUIET: (
        True,
        Reply.CHIME,
        Announcement.HOLD,
        Announcement.PLAY,
        True,
        True,
    ),
    PrivacyMode.MUTED: (
        False,
        Reply.NONE,
        Announcement.DROP,
        Announcement.DROP,
        False,
        False,
    ),
}


@pytest.mark.parametrize("mode", list(PrivacyMode))
def test_each_mode_as_designed(mode: PrivacyMode) -> None:
    """Microphone, replies, announcements, voice ID and logging per mode."""
    policy = RoomPolicy(mode=mode)
    assert (
        mic_allowed(policy),
        reply_kind(policy),
        announcement(policy),
        announcement(policy, urgent=True),
        voice_id_allowed(policy),
        transcript_loggable(policy),
    ) == TABLE[mode]


def test_muted_room_may_allow_announcements() -> None:
    """The room option lets announcements through a Muted room."""
    policy = RoomPolicy(mode=PrivacyMode.MUTED, announce_when_muted=True)
    assert announcement(policy) is Announcement.PLAY
    assert not mic_allowed(policy)


@pytest.mark.parametrize("mode", list(PrivacyMode))
def test_cloud_engines_need_the_room_to_allow_them(mode: PrivacyMode) -> None:
    """Local engines always; others only where Cloud allowed is on."""
    assert engine_refusal(RoomPolicy(mode=mode), local=True) is None
    assert (
        engine_refusal(RoomPolicy(mode=mode), local=False) is Refusal.CLOUD_NOT_ALLOWED
    )
    assert (
        engine_refusal(RoomPolicy(mode=mode, cloud_allowed=True), local=False) is None
    )


@pytest.mark.parametrize(
    ("mode", "allowed", "refusal"),
    [
        (PrivacyMode.NORMAL, True, None),
        (PrivacyMode.NORMAL, False, Refusal.SPEAKER_NOT_ALLOWED),
        (PrivacyMode.QUIET, True, None),
        (PrivacyMode.QUIET, False, Refusal.SPEAKER_NOT_ALLOWED),
        (PrivacyMode.GUEST, True, Refusal.GUEST_SENSITIVE),
        (PrivacyMode.MUTED, True, Refusal.MUTED),
    ],
)
def test_sensitive_actions(
    mode: PrivacyMode,
    allowed: bool,  # noqa: FBT001 - a parameter of the test
    refusal: Refusal | None,
) -> None:
    """Only a recognised, allowed person, and never in Guest or Muted rooms."""
    policy = RoomPolicy(mode=mode)
    assert sensitive_action_refusal(policy, speaker_allowed=allowed) is refusal


def test_ledger_counts_a_day_and_starts_afresh() -> None:
    """Requests, audio and off-hub bytes per day; listening while streams flow."""
    ledger = RoomLedger(day=date(2026, 11, 25))
    stream = object()
    ledger.stream_started(stream)
    ledger.request(date(2026, 11, 25))
    ledger.audio(date(2026, 11, 25), 64000)
    ledger.audio(date(2026, 11, 25), 32000, offhub=True)
    assert ledger.listening
    assert (ledger.requests, ledger.audio_seconds, ledger.offhub_bytes) == (
        1,
        3.0,
        32000,
    )

    ledger.stream_ended(stream)
    ledger.request(date(2026, 11, 26))
    assert not ledger.listening
    assert (ledger.requests, ledger.audio_bytes, ledger.offhub_bytes) == (1, 0, 0)


def test_ledger_notes_mode_changes() -> None:
    """A change is dated; setting the same mode again is no change."""
    ledger = RoomLedger(day=date(2026, 11, 25))
    when = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    assert ledger.mode_set(PrivacyMode.MUTED, when)
    assert not ledger.mode_set(PrivacyMode.MUTED, when.replace(hour=23))
    assert (ledger.mode, ledger.mode_changed) == (PrivacyMode.MUTED, when)
