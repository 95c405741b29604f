"""Voice prints: enrolment averages and judges phrases; identification matches."""

import math

import pytest

from custom_components.private_voice.privacy.voiceprint import (
    MATCH_THRESHOLD,
    EnrolmentQuality,
    enrol,
    identify,
    normalised,
    similarity,
)


def _unit(*values: float) -> tuple[float, ...]:
    return normalised(values)


def _near(base: tuple[float, ...], angle: float) -> tuple[float, ...]:
    """Return a unit vector ``angle`` radians from ``base`` (first two axes)."""
    turned = (
        base[0] * math.cos(angle) - base[1] * math.sin(angle),
        base[0] * math.sin(angle) + base[1] * math.cos(angle),
        *base[2:],
    )
    return normalised(turned)


def test_normalised_and_similarity() -> None:
    """Unit length; similarity is the cosine; bad vectors are refused."""
    vector = normalised([3.0, 4.0])
    assert vector == pytest.approx((0.6, 0.8))
    assert similarity(vector, vector) == pytest.approx(1.0)
    assert similarity(_unit(1, 0), _unit(0, 1)) == pytest.approx(0.0)
    for bad in ([], [0.0, 0.0], [math.nan, 1.0]):
        with pytest.raises(ValueError, match="non-zero"):
            normalised(bad)
    with pytest.raises(ValueError, match="voice prints of 2 and 3"):
        similarity(_unit(1, 0), _unit(1, 0, 0))


def test_enrolment_of_one_voice_is_good() -> None:
    """Phrases close to each other average into a print close to each."""
    base = _unit(1, 0, 0, 0)
    phrases = [_near(base, angle) for angle in (-0.2, 0.0, 0.2)]
    enrolment = enrol(phrases)
    assert enrolment.quality is EnrolmentQuality.GOOD
    assert enrolment.vector == pytest.approx(base)
    assert min(enrolment.agreement) > MATCH_THRESHOLD + 0.1


def test_enrolment_judges_agreement() -> None:
    """A phrase far from the others (another voice, noise) fails enrolment."""
    base = _unit(1, 0, 0, 0)
    fair = enrol([_near(base, angle) for angle in (-0.65, 0.0, 0.65)])
    assert fair.quality is EnrolmentQuality.FAIR
    poor = enrol([base, base, _unit(0, 0, 1, 0)])
    assert poor.quality is EnrolmentQuality.POOR


@pytest.mark.parametrize("count", [0, 2, 6])
def test_enrolment_takes_three_to_five_phrases(count: int) -> None:
    """Fewer than 3 or more than 5 phrases are refused."""
    with pytest.raises(ValueError, match="3 to 5 phrases"):
        enrol([_unit(1, 0)] * count)


def test_identify_finds_the_closest_print_above_the_threshold() -> None:
    """The closest enrolled print wins if it reaches the threshold."""
    anna, ben = _unit(1, 0, 0), _unit(0, 1, 0)
    enrolled = {"person.anna": anna, "person.ben": ben}
    match = identify(_near(ben, 0.1), enrolled)
    assert match.person == "person.ben"
    assert match.score == pytest.approx(math.cos(0.1))
    stranger = identify(_unit(0, 0, 1), enrolled)
    assert stranger.person is None
    assert stranger.score == pytest.approx(0.0)
    assert identify(_unit(1, 0, 0), {}).person is None
