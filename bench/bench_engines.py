"""The engine host against wyoming-faster-whisper and wyoming-piper, side by side.

Every server runs as a real process on a loopback port of this machine, with
the same models (the packaged Whisper tiny.en and piper voice en_US-joe-medium,
linked into the peers' data folders by bench/setup-peers), and is measured
with the ``wyoming`` client library in the same run, taking turns:

- STT: spoken commands (piper, 16 kHz), each followed by the trailing silence a
  satellite's VAD sends before it stops, streamed at microphone pace; latency
  is from sending ``audio-stop`` to receiving ``transcript``.
- TTS: a three-sentence reply; from sending ``synthesize`` (and, separately,
  a ``synthesize-start/chunk/stop`` stream) to the first ``audio-chunk``.
- Wake: K always-streaming ``detect`` connections at microphone pace; the
  server's CPU per stream, and the largest K at which every stream keeps up:
  a ``ping`` queued behind the audio is answered within 100 ms.
- Memory: each server's resident set after the run.

Run it with bench/run (bench/setup-peers first); ``--help`` for the knobs.
"""

import argparse
import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
import datetime as dt
from pathlib import Path
import re
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import AsrProgram, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)
from wyoming.wake import Detect, Detection, NotDetected

from .report import (
    cell,
    load_average,
    machine,
    ms,
    percentile,
    print_summary,
    ratio,
    server_memory,
    server_versions,
    warn_if_loaded,
    write_results,
)
from .servers import (
    HOST,
    PEER_STT_FLAGS,
    PEER_TTS_FLAGS,
    TOP,
    BenchError,
    Server,
    engine_host_server,
    peer_servers,
    read_until,
    start_all,
    stop_all,
)
from .speech import (
    CHUNK_SAMPLES,
    LEAD_SILENCE,
    RATE,
    TRAILING_SILENCE,
    Utterance,
    make_utterances,
    word_errors,
    words,
)

COMMANDS = (
    "Turn on the kitchen lights.",
    "Set a timer for ten minutes.",
    "What is the weather like tomorrow?",
    "Turn off all the lights in the living room.",
    "Set the thermostat to twenty one degrees.",
    "Add milk and eggs to my shopping list.",
    "Play some relaxing music in the bedroom.",
    "What time is it in Tokyo right now?",
    "Remind me to call my mother at six.",
    "Lock the front door and turn off the porch light.",
)
WARM_UP_COMMAND = "Open the garage door."
REPLY = (
    "The kitchen lights are now on. I set a timer for ten minutes. "
    "Tomorrow will be sunny with a high of twenty two degrees."
)

STT_GOAL = 0.5
TTS_GOAL = 0.5
WAKE_GOAL = 16
# A wake stream keeps up when pings queued behind its audio come back this fast.
WAKE_LATENCY_LIMIT = 0.1
# Streams connect and load their models first; pings before this are not judged.
WAKE_SETTLE = 2.0
WAKE_PING_EVERY = 8  # chunks, about half a second

READ_TIMEOUT = 60.0
PEER_WAKE_NOTE = (
    "no peer: wyoming-microwakeword is not on PyPI, and wyoming-openwakeword "
    "1.8.2 needs tflite-runtime-nightly, which has no wheel for Python 3.14"
)


def build_servers(args: argparse.Namespace, logs: Path) -> dict[str, Server]:
    """Describe the servers to measure, keyed by role: ours, stt-peer, tts-peer."""
    servers: dict[str, Server] = {}
    if not args.no_ours:
        servers["ours"] = engine_host_server(
            args.ours, sys.executable, args.models_dir, logs
        )
    if not args.no_peers:
        servers |= peer_servers(logs)
    return servers


# Client helpers -------------------------------------------------------------


async def _paced(
    samples: np.ndarray, seconds: float, lateness: list[float]
) -> AsyncIterator[tuple[int, bytes]]:
    """Yield ``seconds`` of ``samples`` (looped) as chunks, at microphone pace.

    A microphone hands a chunk over once it has been recorded; how late each
    chunk is handed over (the client's own lag) is appended to ``lateness``.
    """
    loop = asyncio.get_running_loop()
    begin = loop.time()
    total = int(seconds * RATE)
    for index, offset in enumerate(range(0, total, CHUNK_SAMPLES)):
        count = min(CHUNK_SAMPLES, total - offset)
        start = offset % len(samples)
        chunk = np.take(samples, range(start, start + count), mode="wrap")
        due = begin + (offset + count) / RATE
        await asyncio.sleep(max(0.0, due - loop.time()))
        lateness.append(max(0.0, loop.time() - due))
        yield index, chunk.astype("<i2").tobytes()


def _audio_chunk(pcm: bytes) -> Event:
    return AudioChunk(rate=RATE, width=2, channels=1, audio=pcm).event()


# STT -------------------------------------------------------------------------


async def transcribe_once(server: Server, utterance: Utterance) -> tuple[float, str]:
    """Stream one command at microphone pace; (audio-stop → transcript, text)."""
    async with AsyncTcpClient(HOST, server.port) as client:
        request = Transcribe(name=server.stt_model, language="en")
        await client.write_event(request.event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        async for _index, pcm in _paced(utterance.samples, utterance.seconds, []):
            await client.write_event(_audio_chunk(pcm))
        stopped = time.perf_counter()
        await client.write_event(AudioStop().event())
        async with asyncio.timeout(READ_TIMEOUT):
            event = await read_until(client, Transcript.is_type)
        return time.perf_counter() - stopped, Transcript.from_event(event).text


@dataclass(kw_only=True)
class SttResult:
    """One server's STT figures."""

    latencies: list[float] = field(default_factory=list)
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Summarise as JSON."""
        errors = sum(item["word_errors"] for item in self.transcripts)
        said = sum(len(words(item["said"])) for item in self.transcripts)
        return {
            "p50_ms": ms(statistics.median(self.latencies)),
            "p95_ms": ms(percentile(self.latencies, 95)),
            "min_ms": ms(min(self.latencies)),
            "max_ms": ms(max(self.latencies)),
            "runs": len(self.latencies),
            "exact_transcripts": sum(
                item["word_errors"] == 0 for item in self.transcripts
            ),
            "word_error_rate": round(errors / said, 3),
            # Decoding ahead costs CPU: what the server spent per command.
            "cpu_ms_per_command": ms(self.cpu_seconds / len(self.latencies)),
            "latencies_ms": [ms(value) for value in self.latencies],
            "transcripts": self.transcripts,
        }


async def bench_stt(
    servers: dict[str, Server],
    utterances: list[Utterance],
    warm_up: Utterance,
    rounds: int,
) -> dict[str, SttResult]:
    """Every utterance on every server in turn, alternating who goes first."""
    results = {role: SttResult() for role in servers}
    for server in servers.values():
        await transcribe_once(server, warm_up)
        print(f"  warmed up {server.name}")
    cpu_before = {role: server.cpu_seconds() for role, server in servers.items()}
    turn = 0
    for round_index in range(rounds):
        for utterance in utterances:
            order = list(servers) if turn % 2 == 0 else list(reversed(servers))
            turn += 1
            for role in order:
                latency, text = await transcribe_once(servers[role], utterance)
                result = results[role]
                result.latencies.append(latency)
                if round_index == 0:
                    result.transcripts.append(
                        {
                            "said": utterance.text,
                            "heard": text.strip(),
                            "audio_s": round(utterance.seconds, 2),
                            "word_errors": word_errors(utterance.text, text),
                        }
                    )
                name = servers[role].name
                print(f"  {name:24} {ms(latency):7.1f} ms  {text.strip()!r}")
    for role, server in servers.items():
        results[role].cpu_seconds = server.cpu_seconds() - cpu_before[role]
    return results


# TTS -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TtsRun:
    """One synthesis: time to first audio, to the end, and the audio's length."""

    first_audio: float
    total: float
    audio_seconds: float


async def synthesize_once(server: Server, text: str, *, streaming: bool) -> TtsRun:
    """``synthesize`` (or a text stream) → first audio-chunk, and the end."""
    voice = SynthesizeVoice(name=server.voice) if server.voice else None
    async with AsyncTcpClient(HOST, server.port) as client:
        started = time.perf_counter()
        if streaming:
            # As Home Assistant streams an agent's reply: the text in pieces,
            # the whole text as ``synthesize`` for servers that cannot stream.
            await client.write_event(SynthesizeStart(voice=voice).event())
            for sentence in re.findall(r"[^.!?]+[.!?]\s*", text):
                await client.write_event(SynthesizeChunk(text=sentence).event())
            await client.write_event(Synthesize(text=text, voice=voice).event())
            await client.write_event(SynthesizeStop().event())
        else:
            await client.write_event(Synthesize(text=text, voice=voice).event())
        ends = SynthesizeStopped.is_type if streaming else AudioStop.is_type
        first: float | None = None
        audio_bytes = 0
        rate = 0
        async with asyncio.timeout(READ_TIMEOUT):
            while True:
                event = await read_until(
                    client,
                    lambda kind: (
                        AudioStart.is_type(kind)
                        or AudioChunk.is_type(kind)
                        or ends(kind)
                    ),
                )
                if AudioStart.is_type(event.type):
                    rate = AudioStart.from_event(event).rate
                elif AudioChunk.is_type(event.type):
                    if first is None:
                        first = time.perf_counter() - started
                    audio_bytes += len(AudioChunk.from_event(event).audio)
                else:
                    break
        total = time.perf_counter() - started
        if first is None:
            msg = "no audio came back"
            raise BenchError(msg)
        return TtsRun(first, total, audio_bytes / 2 / rate)


def _tts_summary(runs: list[TtsRun]) -> dict[str, Any]:
    return {
        "first_audio_p50_ms": ms(statistics.median(run.first_audio for run in runs)),
        "first_audio_p95_ms": ms(percentile([run.first_audio for run in runs], 95)),
        "total_p50_ms": ms(statistics.median(run.total for run in runs)),
        "audio_s": round(statistics.median(run.audio_seconds for run in runs), 2),
        "runs": len(runs),
        "first_audio_ms": [ms(run.first_audio) for run in runs],
    }


async def bench_tts(servers: dict[str, Server], runs: int) -> dict[str, dict[str, Any]]:
    """Speak the reply on every server, one-shot and streamed, taking turns."""
    results: dict[str, dict[str, Any]] = {role: {} for role in servers}
    for mode, streaming in (("synthesize", False), ("stream", True)):
        measured: dict[str, list[TtsRun]] = {role: [] for role in servers}
        for server in servers.values():
            await synthesize_once(server, REPLY, streaming=streaming)
        for index in range(runs):
            order = list(servers) if index % 2 == 0 else list(reversed(servers))
            for role in order:
                run = await synthesize_once(servers[role], REPLY, streaming=streaming)
                measured[role].append(run)
        for role, role_runs in measured.items():
            results[role][mode] = _tts_summary(role_runs)
            print(
                f"  {servers[role].name:24} {mode:10} first audio "
                f"{results[role][mode]['first_audio_p50_ms']:7.1f} ms, total "
                f"{results[role][mode]['total_p50_ms']:7.1f} ms"
            )
    return results


# Wake ------------------------------------------------------------------------


@dataclass(kw_only=True)
class WakeStream:
    """What one always-streaming connection saw."""

    pongs: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    drain: float = float("nan")
    detections: int = 0


async def wake_stream(
    port: int, model: str, samples: np.ndarray, seconds: float, delay: float
) -> WakeStream:
    """Stream ``samples`` to ``detect`` for ``seconds``, pinging now and then."""
    await asyncio.sleep(delay)
    stream = WakeStream()
    pings: dict[str, float] = {}
    began = time.perf_counter()

    async def read(client: AsyncTcpClient) -> float:
        while True:
            event = await read_until(
                client,
                lambda kind: (
                    Pong.is_type(kind)
                    or Detection.is_type(kind)
                    or NotDetected.is_type(kind)
                ),
            )
            now = time.perf_counter()
            if Pong.is_type(event.type):
                sent = pings.pop(Pong.from_event(event).text or "")
                if sent - began >= WAKE_SETTLE:
                    stream.pongs.append(now - sent)
            elif Detection.is_type(event.type):
                stream.detections += 1
            else:
                return now

    async with AsyncTcpClient(HOST, port) as client:
        await client.write_event(Detect(names=[model]).event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        reader = asyncio.create_task(read(client))
        async for index, pcm in _paced(samples, seconds, stream.lateness):
            await client.write_event(_audio_chunk(pcm))
            if index % WAKE_PING_EVERY == WAKE_PING_EVERY - 1:
                pings[str(index)] = time.perf_counter()
                await client.write_event(Ping(text=str(index)).event())
        stopped = time.perf_counter()
        await client.write_event(AudioStop().event())
        async with asyncio.timeout(READ_TIMEOUT):
            stream.drain = await reader - stopped
    return stream


async def _cpu_window(server: Server, start: float, end: float) -> tuple[float, float]:
    """Server and client (this process) CPU, as % of one core, from start to end."""
    await asyncio.sleep(start)
    server_before, client_before = server.cpu_seconds(), _own_cpu()
    began = time.perf_counter()
    await asyncio.sleep(end - start)
    wall = time.perf_counter() - began
    return (
        100 * (server.cpu_seconds() - server_before) / wall,
        100 * (_own_cpu() - client_before) / wall,
    )


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wake_level(
    server: Server, model: str, samples: np.ndarray, streams: int, seconds: float
) -> dict[str, Any]:
    """Run ``streams`` concurrent wake streams; CPU and whether all kept up."""
    chunk_seconds = CHUNK_SAMPLES / RATE
    window = asyncio.create_task(_cpu_window(server, WAKE_SETTLE, seconds - 0.2))
    # Satellites are not in lockstep: spread the streams over one chunk.
    seen = await asyncio.gather(
        *(
            wake_stream(
                server.port, model, samples, seconds, chunk_seconds * i / streams
            )
            for i in range(streams)
        )
    )
    server_cpu, client_cpu = await window
    pongs = [value for stream in seen for value in stream.pongs]
    drains = [stream.drain for stream in seen]
    lateness = [value for stream in seen for value in stream.lateness]
    ping_p95 = percentile(pongs, 95)
    drain_p95 = percentile(drains, 95)
    client_lag_p95 = percentile(lateness, 95)
    return {
        "streams": streams,
        "server_cpu_pct": round(server_cpu, 1),
        "cpu_pct_per_stream": round(server_cpu / streams, 2),
        "client_cpu_pct": round(client_cpu, 1),
        "ping_p50_ms": ms(percentile(pongs, 50)),
        "ping_p95_ms": ms(ping_p95),
        "ping_max_ms": ms(max(pongs)),
        "drain_p95_ms": ms(drain_p95),
        "drain_max_ms": ms(max(drains)),
        "client_lag_p95_ms": ms(client_lag_p95),
        # The client shares the cores: when it cannot send in time either,
        # the level says as much about the machine as about the server.
        "client_bound": client_lag_p95 > WAKE_LATENCY_LIMIT,
        "detections": sum(stream.detections for stream in seen),
        "real_time": ping_p95 <= WAKE_LATENCY_LIMIT and drain_p95 <= WAKE_LATENCY_LIMIT,
    }


def _offered(info: Info | None, needle: str, *, speech_to_text: bool) -> str:
    """Find the STT model or voice the server offers with ``needle`` in its name."""
    if info is not None:
        for program in info.asr if speech_to_text else info.tts:
            models = (
                program.models if isinstance(program, AsrProgram) else program.voices
            )
            for model in models:
                if needle in model.name:
                    return model.name
    kind = "speech-to-text model" if speech_to_text else "voice"
    msg = f"ours offers no {kind} named like {needle!r}"
    raise BenchError(msg)


def _wake_model(info: Info | None) -> str:
    """Find the okay_nabu model the server offers, microWakeWord's first."""
    programs = sorted(
        info.wake if info else [],
        key=lambda program: "micro" not in program.name.lower(),
    )
    for program in programs:
        for model in program.models:
            if "nabu" in model.name:
                return model.name
    msg = "the server offers no okay_nabu wake word model"
    raise BenchError(msg)


async def bench_wake(
    server: Server, speech: np.ndarray, levels: Sequence[int], seconds: float
) -> dict[str, Any]:
    """Levels of concurrent streams, up to the first that does not keep up."""
    model = _wake_model(server.info)
    measured = []
    for streams in levels:
        level = await wake_level(server, model, speech, streams, seconds)
        measured.append(level)
        print(
            f"  {server.name:24} {streams:3} streams: server "
            f"{level['server_cpu_pct']:5.1f}% CPU ({level['cpu_pct_per_stream']:.2f}%"
            f"/stream), ping p95 {level['ping_p95_ms']:6.1f} ms, drain p95 "
            f"{level['drain_p95_ms']:6.1f} ms, client {level['client_cpu_pct']:5.1f}%"
            f" CPU, {'real time' if level['real_time'] else 'FALLS BEHIND'}"
            f"{' (the client lags too)' if level['client_bound'] else ''}"
        )
        if not level["real_time"]:
            break
    keeping_up = [level for level in measured if level["real_time"]]
    # Per stream where the most streams kept up: the server's fixed cost (its
    # event loop, idle threads) is spread thinnest there.
    busiest = keeping_up[-1] if keeping_up else measured[0]
    return {
        "model": model,
        "seconds_per_level": seconds,
        "levels": measured,
        "max_real_time_streams": busiest["streams"] if keeping_up else 0,
        "all_levels_kept_up": len(keeping_up) == len(levels),
        "cpu_pct_per_stream": busiest["cpu_pct_per_stream"],
        "cpu_pct_per_stream_at": busiest["streams"],
    }


# Report ----------------------------------------------------------------------


def _goals(report: dict[str, Any]) -> dict[str, Any]:
    stt = report.get("stt", {})
    tts = report.get("tts", {})
    wake = report.get("wake", {}).get("ours")
    stt_ratio = stt.get("ratio_p50")
    tts_ratio = tts.get("ratio_first_audio_p50")
    streams = wake["max_real_time_streams"] if wake else None
    return {
        "stt_p50_vs_peer": {
            "target": f"<= {STT_GOAL}",
            "value": stt_ratio,
            "met": stt_ratio is not None and stt_ratio <= STT_GOAL,
        },
        "tts_first_audio_p50_vs_peer": {
            "target": f"<= {TTS_GOAL}",
            "value": tts_ratio,
            "met": tts_ratio is not None and tts_ratio <= TTS_GOAL,
        },
        "wake_real_time_streams": {
            "target": f">= {WAKE_GOAL}",
            "value": streams,
            "met": streams is not None and streams >= WAKE_GOAL,
        },
    }


def _pair(section: dict[str, Any], *path: str) -> tuple[Any, Any]:
    """Look a figure of ours and of the peer up along ``path``."""
    values = []
    for role in ("ours", "peer"):
        value: Any = section.get(role)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(value)
    return values[0], values[1]


def table(report: dict[str, Any]) -> str:
    """Render the headline figures as a Markdown table."""
    stt, tts, wake, memory = (
        report.get(key) or {} for key in ("stt", "tts", "wake", "memory")
    )
    goals = report["goals"]
    rows = [
        "| Measure | Ours | Peer | Ours/peer | Goal |",
        "|---|---:|---:|---:|---|",
    ]

    def add(
        label: str,
        figures: tuple[Any, Any],
        unit: str,
        goal: str = "",
        *,
        compare: bool = True,
    ) -> None:
        ours, peer = figures
        share = ratio(ours, peer) if compare and isinstance(peer, float) else None
        rows.append(
            f"| {label} | {cell(ours, unit)} | {cell(peer, unit)} "
            f"| {cell(share)} | {goal} |"
        )

    def goal(name: str, target: str) -> str:
        if goals[name]["value"] is None:
            return f"{target}: not measured"
        return f"{target}: {'met' if goals[name]['met'] else '**not met**'}"

    add(
        "STT audio-stop → transcript, p50",
        _pair(stt, "p50_ms"),
        " ms",
        goal("stt_p50_vs_peer", f"ours ≤ {STT_GOAL} x peer"),
    )
    add("STT audio-stop → transcript, p95", _pair(stt, "p95_ms"), " ms")
    add("STT word error rate", _pair(stt, "word_error_rate"), "", compare=False)
    add("STT server CPU per command", _pair(stt, "cpu_ms_per_command"), " ms")
    add(
        "TTS `synthesize` → first audio, p50",
        _pair(tts, "synthesize", "first_audio_p50_ms"),
        " ms",
        goal("tts_first_audio_p50_vs_peer", f"ours ≤ {TTS_GOAL} x peer"),
    )
    add(
        "TTS `synthesize` → audio-stop, p50",
        _pair(tts, "synthesize", "total_p50_ms"),
        " ms",
    )
    add(
        "TTS text stream → first audio, p50",
        _pair(tts, "stream", "first_audio_p50_ms"),
        " ms",
    )
    ours_wake = wake.get("ours") or {}
    add(
        f"Wake CPU per stream ({ours_wake.get('model', '—')}, at "
        f"{ours_wake.get('cpu_pct_per_stream_at', '—')} streams)",
        (ours_wake.get("cpu_pct_per_stream"), None),
        "% of a core",
    )
    streams = ours_wake.get("max_real_time_streams")
    add(
        f"Wake streams in real time on {report['machine']['cores']} cores",
        (
            None
            if streams is None
            else f"{streams}{'+' if ours_wake.get('all_levels_kept_up') else ''}",
            None,
        ),
        "",
        goal("wake_real_time_streams", f"≥ {WAKE_GOAL}"),
    )
    add("Resident memory after the run", _pair(memory, "rss_mib"), " MiB")
    add("Peak resident memory", _pair(memory, "peak_rss_mib"), " MiB")
    return "\n".join(rows)


# Main ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line: what to run and how long."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run (no README update)"
    )
    # What scripts/engine-host runs, minus its pv_run: this already runs inside
    # the project environment, and the process measured is the server itself.
    # The connection cap is lifted so the wake levels find the cores' limit.
    parser.add_argument(
        "--ours",
        default="{python} -m engine_host --models-dir {models} --uri {uri} "
        "--max-connections 1024",
        help="command that starts our engine host ({python}, {models} and {uri} "
        "are filled in; custom_components/private_voice is on PYTHONPATH)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=TOP / "config" / "private_voice" / "models",
        help="our engine host's model folder (as scripts/engine-host's)",
    )
    parser.add_argument("--no-ours", action="store_true", help="measure the peers only")
    parser.add_argument("--no-peers", action="store_true", help="measure ours only")
    parser.add_argument("--commands", type=int, help="STT commands (of 10)")
    parser.add_argument("--stt-rounds", type=int, help="times each command is sent")
    parser.add_argument("--tts-runs", type=int, help="syntheses per server and mode")
    parser.add_argument(
        "--wake-levels", help="comma-separated stream counts, ascending (e.g. 4,8,16)"
    )
    parser.add_argument("--wake-seconds", type=float, help="seconds per wake level")
    parser.add_argument("--skip", default="", help="comma-separated: stt,tts,wake")
    parser.add_argument(
        "--no-readme", action="store_true", help="leave bench/README.md"
    )
    args = parser.parse_args(argv)
    defaults = {
        "commands": (3, 10),
        "stt_rounds": (1, 2),
        "tts_runs": (3, 7),
        "wake_levels": ("4,16", "4,8,16,32,64,96,128,160,192,256"),
        "wake_seconds": (6.0, 15.0),
    }
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.wake_levels = [int(value) for value in str(args.wake_levels).split(",")]
    args.skip = {value for value in args.skip.split(",") if value}
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the servers, measure them, stop them; return the report."""
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "settings": {
            "chunk_samples": CHUNK_SAMPLES,
            "lead_silence_s": LEAD_SILENCE,
            "trailing_silence_s": TRAILING_SILENCE,
            "stt_commands": args.commands,
            "stt_rounds": args.stt_rounds,
            "tts_runs": args.tts_runs,
            "tts_reply": REPLY,
            "wake_levels": args.wake_levels,
            "wake_seconds": args.wake_seconds,
            "wake_latency_limit_ms": ms(WAKE_LATENCY_LIMIT),
            "peer_stt_flags": PEER_STT_FLAGS,
            "peer_tts_flags": PEER_TTS_FLAGS,
        },
    }
    warn_if_loaded(report)
    print("making the spoken commands with piper")
    utterances = make_utterances([WARM_UP_COMMAND, *COMMANDS[: args.commands]])
    warm_up, commands = utterances[0], utterances[1:]
    logs = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    servers = build_servers(args, logs)
    names = ", ".join(server.name for server in servers.values())
    print(f"starting {names} (logs in {logs})")
    try:
        await start_all(list(servers.values()))
        report["ready_s"] = {
            server.name: round(server.ready_seconds, 2) for server in servers.values()
        }
        report["versions"] = server_versions(servers)
        report |= await measure(args, servers, commands, warm_up)
        report["memory"] = server_memory(servers)
    finally:
        await stop_all(list(servers.values()))
    report["machine"]["load_average_at_end"] = load_average()
    report["goals"] = _goals(report)
    return report


async def measure(
    args: argparse.Namespace,
    servers: dict[str, Server],
    commands: list[Utterance],
    warm_up: Utterance,
) -> dict[str, Any]:
    """Run the STT, TTS and wake phases that were not skipped."""
    report: dict[str, Any] = {}
    ours = servers.get("ours")

    def with_ours(peer: Server | None) -> dict[str, Server]:
        pair = {"ours": ours, "peer": peer}
        return {role: server for role, server in pair.items() if server is not None}

    if "stt" not in args.skip:
        if ours is not None:
            # The peer serves only the shared model; ours may offer more.
            ours.stt_model = _offered(ours.info, "tiny.en", speech_to_text=True)
        print("STT: audio-stop → transcript, streamed at microphone pace")
        pair = with_ours(servers.get("stt-peer"))
        stt = await bench_stt(pair, commands, warm_up, args.stt_rounds)
        report["stt"] = {role: result.summary() for role, result in stt.items()}
        report["stt"]["ratio_p50"] = ratio(*_pair(report["stt"], "p50_ms"))
    if "tts" not in args.skip:
        if ours is not None:
            ours.voice = _offered(ours.info, "joe", speech_to_text=False)
        print("TTS: three-sentence reply → first audio")
        report["tts"] = await bench_tts(
            with_ours(servers.get("tts-peer")), args.tts_runs
        )
        report["tts"]["ratio_first_audio_p50"] = ratio(
            *_pair(report["tts"], "synthesize", "first_audio_p50_ms")
        )
    if "wake" not in args.skip and ours is not None:
        print("Wake: always-streaming detect connections at microphone pace")
        speech = np.concatenate([utterance.samples for utterance in commands])
        report["wake"] = {
            "ours": await bench_wake(ours, speech, args.wake_levels, args.wake_seconds),
            "peer": None,
            "peer_note": PEER_WAKE_NOTE,
        }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table, write the results."""
    args = parse_args(argv)
    began = time.perf_counter()
    try:
        report = asyncio.run(run(args))
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 1
    report["duration_s"] = round(time.perf_counter() - began, 1)
    markdown = table(report)
    path = write_results(
        "engines", report, markdown, readme=not (args.quick or args.no_readme)
    )
    print_summary(report, markdown, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
