"""Real speech of several different people, to measure voice prints with (issue 7).

The recordings are the excerpts of the AMI Meeting Corpus (CC BY 4.0,
https://groups.inf.ed.ac.uk/ami/corpus/) that pyannote-audio 4.0.7 (MIT) ships
as test data in its source distribution on PyPI (``tests/data``): 14 one-minute
16 kHz recordings of real meetings, each with who spoke when (RTTM) over its
first 30 s. No wheel carries them, so ``fetch`` downloads that sdist with pip,
checks its hash and keeps the recordings and annotations in a folder of their
own (``python -m tests.speakers fetch [FOLDER]``; bench/setup-peers does it).

``utterances`` cuts them into utterances of one speaker each: the stretches
where the annotation has exactly that person speaking (pauses of up to 0.5 s
with nobody speaking kept, 0.1 s dropped at each end, as the annotated turns'
edges are approximate), 1.5 s at least, cut into equal pieces of about 2.5 s
(a spoken command's length). Speakers with 4 utterances or more are enrolled
from their first 3 and tested on the rest; the others are voices nobody
enrolled, scored only as impostors.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import hashlib
import itertools
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Final
import unicodedata

import numpy as np

TOP: Final = Path(__file__).resolve().parent.parent

PACKAGE: Final = "pyannote-audio"
VERSION: Final = "4.0.7"
SDIST: Final = "pyannote_audio-4.0.7.tar.gz"
SDIST_SHA256: Final = "3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229"
SOURCE: Final = (
    f"AMI Meeting Corpus excerpts (CC BY 4.0) from the {PACKAGE} {VERSION} "
    "sdist on PyPI (MIT), tests/data"
)
# Where the recordings are looked for: $PV_SPEAKER_DATA, else this folder
# (gitignored, filled in by bench/setup-peers or ``fetch``).
FOLDER_ENV: Final = "PV_SPEAKER_DATA"
DEFAULT_FOLDER: Final = TOP / "bench" / ".peers" / "data" / "speakers" / SDIST[:-7]

RATE: Final = 16000
ANNOTATED_SECONDS: Final = 30.0  # the .uem files: each file's first 30 s
STEP: Final = 0.01  # the annotation grid, in seconds
MIN_SECONDS: Final = 1.5
TARGET_SECONDS: Final = 2.5
MAX_PAUSE: Final = 0.5
EDGE: Final = 0.1
ENROL: Final = 3


@dataclass(frozen=True, slots=True)
class Utterance:
    """A stretch of one person speaking: int16 samples at 16 kHz."""

    speaker: str
    recording: str
    start: float
    samples: np.ndarray

    @property
    def seconds(self) -> float:
        """Its length in seconds."""
        return len(self.samples) / RATE

    @property
    def name(self) -> str:
        """Where it comes from: recording@start."""
        return f"{self.recording}@{self.start:.2f}"


@dataclass(frozen=True, slots=True)
class Split:
    """Who is enrolled from which utterances, and what is held out."""

    enrolment: dict[str, list[Utterance]]
    held_out: list[Utterance]

    @property
    def unknown(self) -> list[str]:
        """Speakers heard only in held-out utterances (never enrolled)."""
        return sorted({u.speaker for u in self.held_out} - set(self.enrolment))


@dataclass(frozen=True, slots=True)
class Trial:
    """One held-out utterance scored against one voice print."""

    voice_print: str
    utterance: Utterance
    score: float

    @property
    def target(self) -> bool:
        """Whether the utterance is the print's speaker."""
        return self.utterance.speaker == self.voice_print


# The data --------------------------------------------------------------------


def locate() -> Path | None:
    """Return the folder holding the recordings, or None if nobody fetched them."""
    folder = Path(os.environ.get(FOLDER_ENV) or DEFAULT_FOLDER)
    return folder if any(folder.glob("*.rttm")) else None


def fetch(folder: Path = DEFAULT_FOLDER, python: str = sys.executable) -> Path:
    """Download the sdist with pip, check it, keep its test recordings in ``folder``."""
    if any(folder.glob("*.rttm")):
        return folder
    with tempfile.TemporaryDirectory(prefix="speakers-") as scratch:
        subprocess.run(  # noqa: S603 - pip, with fixed arguments
            [
                python,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary=:all:",
                f"{PACKAGE}=={VERSION}",
                "--dest",
                scratch,
            ],
            check=True,
        )
        sdist = Path(scratch) / SDIST
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            msg = f"{SDIST} has sha256 {digest}, not {SDIST_SHA256}"
            raise RuntimeError(msg)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                path = Path(member.name)
                if (
                    member.isfile()
                    and path.parent.as_posix().endswith("/tests/data")
                    and path.suffix in {".wav", ".rttm", ".uem", ".lst"}
                    and path.name != "empty.wav"
                ):
                    source = archive.extractfile(member)
                    if source is not None:
                        (partial / path.name).write_bytes(source.read())
        (partial / "SOURCE.txt").write_text(f"{SOURCE}\nsha256 {digest}\n")
        shutil.rmtree(folder, ignore_errors=True)
        partial.replace(folder)
    return folder


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """Read a WAV file of 16-bit or 32-bit float samples: (rate, mono float32).

    The ``wave`` module reads integer PCM only; the AMI excerpts are floats.
    """
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        msg = f"{path} is not a WAV file"
        raise ValueError(msg)
    offset, fmt, channels, rate, bits, samples = 12, 0, 0, 0, 0, b""
    while offset + 8 <= len(data):
        chunk, size = (
            data[offset : offset + 4],
            int.from_bytes(data[offset + 4 : offset + 8], "little"),
        )
        body = data[offset + 8 : offset + 8 + size]
        if chunk == b"fmt ":
            fmt = int.from_bytes(body[0:2], "little")
            channels = int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")
            bits = int.from_bytes(body[14:16], "little")
            if fmt == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
                fmt = int.from_bytes(body[24:26], "little")
        elif chunk == b"data":
            samples = body
        offset += 8 + size + (size & 1)
    if (fmt, bits) == (1, 16):
        audio = np.frombuffer(samples, dtype="<i2").astype(np.float32) / 32768
    elif (fmt, bits) == (3, 32):
        audio = np.frombuffer(samples, dtype="<f4").astype(np.float32)
    else:
        msg = f"{path}: format {fmt} with {bits}-bit samples is not read here"
        raise ValueError(msg)
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1)
    return rate, audio


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as int16, clipped."""
    return np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)


def _plain(text: str) -> str:
    """``text`` without accents."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    )


def _recording(folder: Path, recording: str) -> Path:
    """Return the WAV file of ``recording``.

    One file is named ``trñ00.wav`` (pyannote tests non-ASCII paths with it)
    while its annotation says ``trn00``.
    """
    exact = folder / f"{recording}.wav"
    if exact.exists():
        return exact
    for path in folder.glob("*.wav"):
        if _plain(path.stem) == recording:
            return path
    msg = f"no recording {recording} in {folder}"
    raise FileNotFoundError(msg)


def _turns(folder: Path) -> dict[str, list[tuple[float, float, str]]]:
    """Return the annotated turns of each recording: (start, end, speaker)."""
    turns: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for rttm in sorted(folder.glob("*.rttm")):
        for line in rttm.read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) >= 8 and fields[0] == "SPEAKER":
                start, length = float(fields[3]), float(fields[4])
                turns[fields[1]].append((start, start + length, fields[7]))
    return turns


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return the [start, end) index ranges where ``mask`` is true."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _solo_stretches(
    turns: Sequence[tuple[float, float, str]],
) -> list[tuple[str, float, float]]:
    """Where exactly one person speaks: (speaker, start, end), in seconds."""
    frames = round(ANNOTATED_SECONDS / STEP)
    speakers = sorted({speaker for _, _, speaker in turns})
    active = np.zeros((len(speakers), frames), dtype=bool)
    for start, end, speaker in turns:
        active[speakers.index(speaker), round(start / STEP) : round(end / STEP)] = True
    talking = active.sum(axis=0)
    stretches = []
    for row, speaker in enumerate(speakers):
        solo = active[row] & (talking == 1)
        keep = solo.copy()
        runs = _runs(solo)
        # A short pause with nobody speaking stays inside the utterance.
        for (_, end), (start, _) in itertools.pairwise(runs):
            if (start - end) * STEP <= MAX_PAUSE and not talking[end:start].any():
                keep[end:start] = True
        stretches.extend(
            (speaker, start * STEP + EDGE, end * STEP - EDGE)
            for start, end in _runs(keep)
        )
    return stretches


def utterances(folder: Path) -> list[Utterance]:
    """Cut the recordings in ``folder`` into one-speaker utterances, in time order."""
    found = []
    for recording, turns in sorted(_turns(folder).items()):
        rate, audio = read_wav(_recording(folder, recording))
        if rate != RATE:
            # Every recording here is 16 kHz; resampling is not needed.
            msg = f"{recording}.wav is at {rate} Hz, not {RATE}"
            raise ValueError(msg)
        for speaker, start, end in _solo_stretches(turns):
            length = end - start
            if length < MIN_SECONDS:
                continue
            pieces = max(1, int(length // TARGET_SECONDS))
            for piece in range(pieces):
                begin = start + piece * length / pieces
                first = round(begin * RATE)
                last = round((begin + length / pieces) * RATE)
                found.append(
                    Utterance(speaker, recording, begin, to_int16(audio[first:last]))
                )
    return sorted(found, key=lambda u: (u.speaker, u.recording, u.start))


def split(found: Iterable[Utterance], enrol: int = ENROL) -> Split:
    """Enrol each speaker who has more than ``enrol`` utterances from the first ones."""
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for utterance in found:
        by_speaker[utterance.speaker].append(utterance)
    enrolment, held_out = {}, []
    for speaker, theirs in sorted(by_speaker.items()):
        if len(theirs) > enrol:
            enrolment[speaker] = theirs[:enrol]
            held_out.extend(theirs[enrol:])
        else:
            held_out.extend(theirs)
    return Split(enrolment, held_out)


# The scores ------------------------------------------------------------------


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to unit length."""
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def voice_print(embeddings: Iterable[np.ndarray]) -> np.ndarray:
    """Enrol: the mean of the unit-length embeddings, itself of unit length."""
    return unit(np.mean([unit(e) for e in embeddings], axis=0))


def trials(
    prints: dict[str, np.ndarray], held_out: Iterable[tuple[Utterance, np.ndarray]]
) -> list[Trial]:
    """Score every held-out utterance against every print (cosine similarity)."""
    return [
        Trial(speaker, utterance, float(np.dot(unit(embedding), vector)))
        for utterance, embedding in held_out
        for speaker, vector in prints.items()
    ]


def error_rates(
    target: Sequence[float], impostor: Sequence[float], threshold: float
) -> tuple[float, float]:
    """Return the (false acceptance, false rejection) rates at ``threshold``."""
    far = float(np.mean(np.asarray(impostor) >= threshold)) if impostor else 0.0
    frr = float(np.mean(np.asarray(target) < threshold)) if target else 0.0
    return far, frr


def equal_error_rate(
    target: Sequence[float], impostor: Sequence[float]
) -> tuple[float, float]:
    """(equal error rate, the threshold where it is reached).

    The threshold is taken among the scores themselves, where the false
    acceptance and false rejection rates are closest; the EER is their mean
    there. With few trials the two rates move in steps, so this is as close
    as the data allows.
    """
    best: tuple[float, float, float] | None = None
    for threshold in sorted({*target, *impostor}):
        far, frr = error_rates(target, impostor, threshold)
        key = (abs(far - frr), max(far, frr), threshold)
        if best is None or key[:2] < best[:2]:
            best = key
    if best is None:
        return float("nan"), float("nan")
    far, frr = error_rates(target, impostor, best[2])
    return (far + frr) / 2, best[2]


def main(argv: Sequence[str]) -> int:
    """``fetch [FOLDER]``: download the recordings; ``list``: show the utterances."""
    if argv[:1] == ["fetch"]:
        folder = fetch(Path(argv[1]) if len(argv) > 1 else DEFAULT_FOLDER)
        print(f"speaker recordings in {folder}")  # noqa: T201 - a command
        return 0
    if argv[:1] == ["list"]:
        folder = locate()
        if folder is None:
            print("no recordings: run python -m tests.speakers fetch")  # noqa: T201
            return 1
        chosen = split(utterances(folder))
        for speaker, enrolment in chosen.enrolment.items():
            tests = [u for u in chosen.held_out if u.speaker == speaker]
            print(  # noqa: T201 - a command
                f"{speaker}: enrol {[u.name for u in enrolment]}, "
                f"test {[u.name for u in tests]}"
            )
        for speaker in chosen.unknown:
            theirs = [u.name for u in chosen.held_out if u.speaker == speaker]
            print(f"{speaker} (not enrolled): {theirs}")  # noqa: T201 - a command
        return 0
    print("usage: python -m tests.speakers fetch [FOLDER] | list")  # noqa: T201
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
