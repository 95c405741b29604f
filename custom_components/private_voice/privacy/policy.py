"""What a room's privacy mode allows: one pure function per question.

The table is DESIGN §3. Every audio path asks these functions, so that a reader
finds each privacy decision in one place and a test can check each mode.
"""

from dataclasses import dataclass
from enum import StrEnum


class PrivacyMode(StrEnum):
    """A room's privacy mode."""

    NORMAL = "normal"
    GUEST = "guest"
    QUIET = "quiet"
    MUTED = "muted"


class Reply(StrEnum):
    """How a room hears the assistant's answer."""

    SPEECH = "speech"
    # Quiet: a short chime says the command was heard, nothing is spoken.
    CHIME = "chime"
    NONE = "none"


class Announcement(StrEnum):
    """What happens to an announcement for a room."""

    PLAY = "play"
    # Quiet: kept until the room leaves Quiet.
    HOLD = "hold"
    DROP = "drop"


class Refusal(StrEnum):
    """Why a request from a room is refused; the key of its spoken reason."""

    MUTED = "muted"
    # The room's mode changed while its audio was flowing: the stream is cut.
    MODE_CHANGED = "mode_changed"
    CLOUD_NOT_ALLOWED = "cloud_not_allowed"
    GUEST_SENSITIVE = "guest_sensitive"
    SPEAKER_NOT_ALLOWED = "speaker_not_allowed"


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomPolicy:
    """A room's settings: its mode and what the user allowed it."""

    mode: PrivacyMode = PrivacyMode.NORMAL
    cloud_allowed: bool = False
    # Muted rooms may still play announcements if the user allows it.
    announce_when_muted: bool = False


def mic_allowed(policy: RoomPolicy) -> bool:
    """Whether the room's microphone audio may reach the hub's engines."""
    return policy.mode is not PrivacyMode.MUTED


def reply_kind(policy: RoomPolicy) -> Reply:
    """How the room hears an answer."""
    match policy.mode:
        case PrivacyMode.QUIET:
            return Reply.CHIME
        case PrivacyMode.MUTED:
            return Reply.NONE
        case _:
            return Reply.SPEECH


def announcement(policy: RoomPolicy, *, urgent: bool = False) -> Announcement:
    """Decide an announcement's fate: Quiet holds all but urgent ones."""
    match policy.mode:
        case PrivacyMode.QUIET:
            return Announcement.PLAY if urgent else Announcement.HOLD
        case PrivacyMode.MUTED:
            return (
                Announcement.PLAY if policy.announce_when_muted else Announcement.DROP
            )
        case _:
            return Announcement.PLAY


def voice_id_allowed(policy: RoomPolicy) -> bool:
    """Whether speakers may be identified or enrolled in the room."""
    return policy.mode in {PrivacyMode.NORMAL, PrivacyMode.QUIET}


def transcript_loggable(policy: RoomPolicy) -> bool:
    """Whether a transcript from the room may be logged at all (debug only)."""
    return policy.mode in {PrivacyMode.NORMAL, PrivacyMode.QUIET}


def engine_refusal(policy: RoomPolicy, *, local: bool) -> Refusal | None:
    """Refuse an engine off the hub unless the room allows the cloud."""
    if local or policy.cloud_allowed:
        return None
    return Refusal.CLOUD_NOT_ALLOWED


def sensitive_action_refusal(
    policy: RoomPolicy, *, speaker_allowed: bool
) -> Refusal | None:
    """Refuse a sensitive action unless a recognised person allowed to asks.

    ``speaker_allowed``: the speaker was recognised, is enrolled and may run
    the action. Guest and Muted rooms refuse whoever speaks.
    """
    match policy.mode:
        case PrivacyMode.MUTED:
            return Refusal.MUTED
        case PrivacyMode.GUEST:
            return Refusal.GUEST_SENSITIVE
        case _:
            return None if speaker_allowed else Refusal.SPEAKER_NOT_ALLOWED
