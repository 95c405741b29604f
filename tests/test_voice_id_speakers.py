"""Our voice prints tell real people apart (issue 7), on recordings of real meetings.

The speech is the AMI corpus excerpts that pyannote-audio's sdist ships
(tests/speakers.py says what, and how it is cut): each enrolled speaker's
print is made from 3 utterances as enrolment makes it, and every held-out
utterance, of enrolled people and of voices nobody enrolled, is scored
against every print with the real encoder and the packaged weights.

The bounds come from what bench/run-voice-id measured on this data (EER
0.8%: one impostor trial in 130 above the lowest of 26 target scores; mean
scores 0.84 for the same speaker, 0.64 for different ones), with room for
another machine's float rounding but none for a broken encoder: with 26
target trials, one missed target is 3.8 points of FRR, so an EER under 10%
allows two misses and a few false acceptances, while features or weights
gone wrong land near chance (50%).
"""

from dataclasses import dataclass

import numpy as np
import pytest

from custom_components.private_voice.engine_host.engines import EngineError
from custom_components.private_voice.engine_host.voiceprint import (
    Ge2eEncoder,
    packaged_voice_encoder,
)

from . import speakers

MAX_EER = 0.10
MIN_MEAN_GAP = 0.10  # half the measured gap between same- and other-speaker means
# A refused utterance (too little speech) is never accepted.
REFUSED_SCORE = -1.0


@dataclass(frozen=True)
class Scored:
    """The enrolment split and every held-out trial's score."""

    split: speakers.Split
    trials: list[speakers.Trial]
    refused: list[speakers.Utterance]

    def scores(self, *, target: bool) -> list[float]:
        """Return the scores of the target (or impostor) trials."""
        return [t.score for t in self.trials if t.target == target]


@pytest.fixture(scope="module")
def scored() -> Scored:
    """Enrol and score with our encoder; the recordings are fetched if missing."""
    folder = speakers.locate() or speakers.fetch()
    split = speakers.split(speakers.utterances(folder))
    weights = packaged_voice_encoder()
    assert weights is not None, "resemblyzer's pretrained.pt is not installed"
    encoder = Ge2eEncoder.load(weights)

    def embed(utterance: speakers.Utterance) -> np.ndarray | None:
        try:
            return encoder.embed(utterance.samples)
        except EngineError:
            return None

    prints = {
        speaker: speakers.voice_print(
            [v for u in enrolment if (v := embed(u)) is not None]
        )
        for speaker, enrolment in split.enrolment.items()
    }
    held_out = [(u, embed(u)) for u in split.held_out]
    trials = speakers.trials(prints, [(u, v) for u, v in held_out if v is not None])
    refused = [u for u, v in held_out if v is None]
    trials += [speakers.Trial(s, u, REFUSED_SCORE) for u in refused for s in prints]
    return Scored(split, trials, refused)


def test_the_data_is_several_real_people(scored: Scored) -> None:
    """At least 4 people are enrolled, and others are heard who are not."""
    enrolled = scored.split.enrolment
    assert len(enrolled) >= 4
    assert len(scored.split.unknown) >= 4
    # AMI's speaker codes start with the speaker's sex: both are enrolled.
    assert {speaker[0] for speaker in enrolled} == {"F", "M"}
    for speaker in enrolled:
        assert any(u.speaker == speaker for u in scored.split.held_out)
    assert all(
        speakers.MIN_SECONDS <= u.seconds <= 2 * speakers.TARGET_SECONDS
        for u in scored.split.held_out
    )


def test_same_speaker_scores_are_clearly_higher(scored: Scored) -> None:
    """Same-speaker scores lie well above different-speaker ones, for every print."""
    target = np.array(scored.scores(target=True))
    impostor = np.array(scored.scores(target=False))
    gap = target.mean() - impostor.mean()
    assert gap >= MIN_MEAN_GAP, (target.mean(), impostor.mean())
    # And far beyond chance: the gap is many standard errors wide.
    standard_error = np.sqrt(
        target.var(ddof=1) / len(target) + impostor.var(ddof=1) / len(impostor)
    )
    assert gap > 5 * standard_error, (gap, standard_error)
    for speaker in scored.split.enrolment:
        theirs = [t for t in scored.trials if t.voice_print == speaker]
        own = [t.score for t in theirs if t.target]
        others = [t.score for t in theirs if not t.target]
        assert min(own) > np.mean(others), speaker


def test_equal_error_rate_is_low(scored: Scored) -> None:
    """The equal error rate on held-out utterances stays under 10%."""
    target, impostor = scored.scores(target=True), scored.scores(target=False)
    eer, threshold = speakers.equal_error_rate(target, impostor)
    assert eer < MAX_EER, (eer, threshold)
    # The threshold it implies lies between the two kinds of score.
    assert np.mean(impostor) < threshold <= np.mean(target)
    far, frr = speakers.error_rates(target, impostor, threshold)
    assert abs(far - frr) <= max(1 / len(target), 1 / len(impostor)) + 1e-9


def test_equal_error_rate_measures_what_it_says() -> None:
    """The EER helper on scores whose answer is known by hand."""
    # Perfectly apart: no error, at the lowest target score.
    assert speakers.equal_error_rate([0.8, 0.9], [0.1, 0.2, 0.3]) == (0.0, 0.8)
    # One of 4 targets below one of 4 impostors: both rates 25% there.
    eer, threshold = speakers.equal_error_rate(
        [0.5, 0.8, 0.85, 0.9], [0.1, 0.2, 0.3, 0.6]
    )
    assert (eer, threshold) == (0.25, 0.6)
    assert speakers.error_rates([0.5, 0.8], [0.6, 0.1], 0.6) == (0.5, 0.5)
