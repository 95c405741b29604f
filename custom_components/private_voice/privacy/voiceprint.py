"""Voice prints: enrolment and identification as pure functions.

A voice print is a unit vector (the engine host's GE2E embedding). Enrolment
averages the prints of 3 to 5 prompted phrases; identification compares an
utterance's print with every enrolled one by cosine similarity. Pure Python:
256 numbers do not need numpy, and Home Assistant may run without it.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
import math
from typing import Final

MIN_PHRASES: Final = 3
MAX_PHRASES: Final = 5

# Cosine similarity at or above which an utterance is taken for an enrolled
# person's. Calibrated on real speech of 13 people (AMI meeting excerpts,
# bench/run-voice-id): the equal error rate, 0.8 %, is at 0.773; rounded up,
# because a stranger taken for someone allowed to unlock the door costs more
# than the owner asked to say it again. Small data: see bench/README.md.
MATCH_THRESHOLD: Final = 0.78
# Enrolment is good when every phrase is this far above the threshold.
_GOOD_MARGIN: Final = 0.1


class EnrolmentQuality(StrEnum):
    """How well the phrases of an enrolment agree with each other."""

    GOOD = "good"
    # Enrolled, but some phrase barely matches: identification may fail.
    FAIR = "fair"
    # Not enrolled: a phrase does not match the others (another voice, noise).
    POOR = "poor"


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrolment:
    """An averaged print and how well its phrases agreed."""

    vector: tuple[float, ...]
    # Each phrase's similarity to the averaged print.
    agreement: tuple[float, ...]
    quality: EnrolmentQuality


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """The closest enrolled print to an utterance's."""

    # None: no enrolled print reaches the threshold.
    person: str | None
    score: float


def normalised(vector: Iterable[float]) -> tuple[float, ...]:
    """Return ``vector`` scaled to unit length (ValueError if it is zero)."""
    values = tuple(float(value) for value in vector)
    norm = math.sqrt(math.fsum(value * value for value in values))
    if not values or norm == 0 or not math.isfinite(norm):
        msg = "a voice print must be a non-zero, finite vector"
        raise ValueError(msg)
    return tuple(value / norm for value in values)


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two unit vectors of the same length."""
    if len(a) != len(b):
        msg = f"voice prints of {len(a)} and {len(b)} numbers"
        raise ValueError(msg)
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def enrol(
    prints: Sequence[Sequence[float]], *, threshold: float = MATCH_THRESHOLD
) -> Enrolment:
    """Average the phrases' prints into one and judge how well they agree."""
    if not MIN_PHRASES <= len(prints) <= MAX_PHRASES:
        msg = (
            f"enrolment takes {MIN_PHRASES} to {MAX_PHRASES} phrases, not {len(prints)}"
        )
        raise ValueError(msg)
    units = [normalised(vector) for vector in prints]
    vector = normalised(math.fsum(column) for column in zip(*units, strict=True))
    agreement = tuple(similarity(unit, vector) for unit in units)
    if min(agreement) < threshold:
        quality = EnrolmentQuality.POOR
    elif min(agreement) < threshold + _GOOD_MARGIN:
        quality = EnrolmentQuality.FAIR
    else:
        quality = EnrolmentQuality.GOOD
    return Enrolment(vector=vector, agreement=agreement, quality=quality)


def identify(
    vector: Sequence[float],
    enrolled: Mapping[str, Sequence[float]],
    *,
    threshold: float = MATCH_THRESHOLD,
) -> Match:
    """Find who spoke: the closest enrolled print, if close enough."""
    unit = normalised(vector)
    best, score = None, -1.0
    for person, enrolled_vector in enrolled.items():
        if (value := similarity(unit, enrolled_vector)) > score:
            best, score = person, value
    return Match(person=best if score >= threshold else None, score=score)
