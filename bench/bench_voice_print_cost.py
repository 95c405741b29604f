"""What a voice print costs a transcription: audio-stop to transcript, with and without.

Every utterance a satellite says in a Normal or Quiet room is transcribed with
a request for its speaker's voice print (issue 7); the transcript waits for
the print. This measures that wait on real people's speech (the AMI excerpts
of ``tests/speakers``), streamed at microphone pace to our engine host with
and without ``context.voice_print``, and to wyoming-faster-whisper (the peer,
same model, no voice prints) — interleaved, the order turning each time.

Run with ``bench/run-voice-print-cost`` (after ``bench/setup-peers``). Writes
``bench/results/voiceprint-cost-<date>.json``.
"""

import argparse
import asyncio
from collections.abc import Sequence
import datetime as dt
import json
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Any

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from tests import speakers

from .bench_engines import READ_TIMEOUT, _audio_chunk, _paced
from .report import load_average, machine, ms, percentile, source, warn_if_loaded
from .servers import (
    HOST,
    TOP,
    Server,
    engine_host_server,
    peer_servers,
    read_until,
    start_all,
    stop_all,
)

OURS = "{python} -m engine_host --models-dir {models} --uri {uri}"
RESULTS = TOP / "bench" / "results"


async def transcribe_once(
    server: Server, samples: Any, seconds: float, *, voice_print: bool
) -> tuple[float, bool]:
    """Stream one utterance at microphone pace; (audio-stop → transcript, print?)."""
    async with AsyncTcpClient(HOST, server.port) as client:
        request = Transcribe(
            name=server.stt_model,
            language="en",
            context={"voice_print": True} if voice_print else None,
        )
        await client.write_event(request.event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        async for _index, pcm in _paced(samples, seconds, []):
            await client.write_event(_audio_chunk(pcm))
        stopped = time.perf_counter()
        await client.write_event(AudioStop().event())
        async with asyncio.timeout(READ_TIMEOUT):
            event = await read_until(client, Transcript.is_type)
        context = Transcript.from_event(event).context or {}
        return time.perf_counter() - stopped, "voice_print" in context


def _summary(latencies: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": ms(statistics.median(latencies)),
        "p95_ms": ms(percentile(latencies, 95)),
        "max_ms": ms(max(latencies)),
        "runs": len(latencies),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start our engine host and the peer; measure; stop them."""
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "source": source(args.commit, args.changed),
        "data": speakers.SOURCE,
    }
    warn_if_loaded(report)
    folder = speakers.locate() or speakers.fetch()
    utterances = speakers.utterances(folder)[: args.utterances]
    logs = Path(tempfile.mkdtemp(prefix="bench-voiceprint-"))
    ours = engine_host_server(OURS, sys.executable, args.models_dir, logs)
    peer = peer_servers(logs)["stt-peer"]
    runs: dict[str, list[float]] = {"ours": [], "ours_voice_print": [], "peer": []}
    printed = 0
    try:
        await start_all([ours, peer])
        for server in (ours, peer):  # warm up
            said = utterances[0]
            await transcribe_once(server, said.samples, said.seconds, voice_print=False)
        configs = [
            ("ours", ours, False),
            ("ours_voice_print", ours, True),
            ("peer", peer, False),
        ]
        for index, said in enumerate(utterances):
            order = configs[index % 3 :] + configs[: index % 3]
            for name, server, voice_print in order:
                latency, got = await transcribe_once(
                    server, said.samples, said.seconds, voice_print=voice_print
                )
                runs[name].append(latency)
                printed += got
                print(f"  {name:18} {ms(latency):7.1f} ms")
    finally:
        await stop_all([ours, peer])
    report["utterances"] = len(utterances)
    report["audio_s_mean"] = round(
        statistics.mean(said.seconds for said in utterances), 2
    )
    report["voice_prints_returned"] = printed
    report["audio_stop_to_transcript"] = {
        name: _summary(values) for name, values in runs.items()
    }
    extra = [
        with_print - without
        for with_print, without in zip(
            runs["ours_voice_print"], runs["ours"], strict=True
        )
    ]
    report["voice_print_extra_ms_p50"] = ms(statistics.median(extra))
    report["machine"]["load_average_at_end"] = load_average()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the figures, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=24)
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=TOP / "config" / "private_voice" / "models",
    )
    parser.add_argument("--commit", help=argparse.SUPPRESS)
    parser.add_argument("--changed", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    for name, figures in report["audio_stop_to_transcript"].items():
        p50, p95 = figures["p50_ms"], figures["p95_ms"]
        print(f"{name:18} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
    print(f"voice print adds (p50 of pairs): {report['voice_print_extra_ms_p50']} ms")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M")
    path = RESULTS / f"voiceprint-cost-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(TOP)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
