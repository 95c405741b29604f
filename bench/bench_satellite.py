"""A satellite's voice command, ours against Home Assistant's own Wyoming stack.

One real Home Assistant runs in this process (bench/home_assistant.py) with a
template light "Kitchen lights" in the area "Kitchen". Two stacks serve
simulated ESP32-S3 satellites (tests/protocol/simulator.py, in a process of
their own: bench/satellites.py) in it, with the same models, in the same run:

- peer: Home Assistant's ``wyoming`` integration drives the satellites (one
  config entry each) through an Assist pipeline on ``wyoming-faster-whisper``
  and ``wyoming-piper`` (also added through ``wyoming``);
- ours: the Private Voice entry (engines in an engine host process, remote
  mode) drives them as satellite subentries, through a pipeline on its own
  speech-to-text and text-to-speech entities.

Both pipelines use Home Assistant's own conversation agent, so "turn on the
kitchen lights" turns the light on in every run that hears it right.

Measured:

- latency: the satellite detects the wake word itself, says the command at
  microphone pace and sends ``audio-stop`` after the trailing silence; from
  that moment to the first ``audio-chunk`` of the reply arriving at the
  satellite. The stacks take turns, N runs each; every run's transcript, and
  whether the light turned on, is checked (a run where it did not is a
  failure). Home Assistant's pipeline events split the time into speech-to-
  text, intent and reply audio.
- event-loop lag: a task on Home Assistant's loop sleeps 10 ms again and again
  and records how late it wakes, while 8 satellites of one stack (a) say
  commands back to back (on-device wake), (b) stream their microphones all
  the time (always-streaming firmware, wake word detected by the hub); and
  with nothing going on, for reference.

Run it with bench/run-satellite (bench/setup-peers first); ``--help`` for the
knobs.
"""

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
from dataclasses import dataclass, field
import datetime as dt
import json
from pathlib import Path
import resource
import statistics
import sys
import tempfile
import time
from typing import Any, Self

from homeassistant.components.assist_pipeline.pipeline import (
    KEY_ASSIST_PIPELINE,
    async_get_pipeline,
)
from homeassistant.config_entries import ConfigEntry, ConfigSubentryData
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers import entity_registry as er

from custom_components.private_voice.const import (
    CONF_AREA_ID,
    CONF_ENGINE_MODE,
    CONF_LANGUAGE,
    CONF_URI,
    DOMAIN,
    SUBENTRY_SATELLITE,
    EngineMode,
)

from .home_assistant import Home
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
    source,
    versions,
    warn_if_loaded,
    write_results,
)
from .servers import (
    PEER_STT_FLAGS,
    PEER_TTS_FLAGS,
    TOP,
    BenchError,
    Server,
    cpu_seconds,
    engine_host_server,
    free_port,
    peer_servers,
    process_tree,
    start_all,
    stop_all,
)
from .speech import LEAD_SILENCE, TRAILING_SILENCE, word_errors

COMMAND = "Turn on the kitchen lights."
# What an always-streaming satellite hears: the wake word, then the command.
WAKE_COMMAND = "Okay Nabu! Turn on the kitchen lights."
MIC_BYTES_PER_SECOND = 16000 * 2
VOICE = "en_US-joe-medium"
SATELLITES = 8
LATENCY_GOAL = 0.5
LAG_GOAL_MS = 20.0
# The lag probe's sleep: a timer every 10 ms, as a busy loop's callbacks see it.
LAG_INTERVAL = 0.01
# Between commands, a satellite of the back-to-back load waits this long.
COMMAND_PAUSE = 0.5
# Between always-streaming satellites' wake-ups: Home Assistant's 2 s
# duplicate wake-up window, and a little.
STREAM_STAGGER = 2.2
CONNECT_TIMEOUT = 60.0
# A pipeline run starts at most this long before its command's audio-stop.
RUN_WINDOW = 30.0
LAG_PHASES = {"idle", "commands", "streaming"}
OURS_GLUE = TOP / "custom_components" / "private_voice" / "assist_satellite.py"
OURS_MISSING = (
    "not measured: the Private Voice satellite glue "
    "(custom_components/private_voice/assist_satellite.py and the satellite "
    "subentry type) is not there yet"
)


# The satellites' process --------------------------------------------------


class Satellites:
    """The process of simulated satellites (bench/satellites.py), by request."""

    def __init__(self, log: Path) -> None:
        """Prepare; ``start`` runs the process."""
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Run ``python -m bench.satellites`` with this environment."""
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.satellites",
                cwd=TOP,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                # Runs of many satellites make long lines.
                limit=1 << 24,
            )

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request, return its answer; BenchError if it failed."""
        assert self.process is not None
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace")[-3000:]
            msg = f"the satellites' process ended:\n{tail}"
            raise BenchError(msg)
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            msg = f"satellites: {answer['error']}"
            raise BenchError(msg)
        return answer

    async def add(self, firmware: str, text: str, count: int) -> list[int]:
        """Start ``count`` satellites; return their ports.

        On-device wake satellites report wake phrases of their own, as if in
        different rooms: Home Assistant drops a wake-up with a phrase any
        satellite used in the last 2 s, which would leave one of 8 commanders.
        """
        answer = await self.ask(
            {
                "op": "add",
                "firmware": firmware,
                "text": text,
                "count": count,
                "own_wake_phrase": firmware == "on-device-wake",
            }
        )
        ports: list[int] = answer["ports"]
        return ports

    async def wait_connected(self, ports: list[int]) -> None:
        """Wait until the hub has connected to and run every one of ``ports``."""
        answer = await self.ask(
            {"op": "connected", "ports": ports, "timeout": CONNECT_TIMEOUT}
        )
        if missing := sorted(set(ports) - set(answer["connected"])):
            msg = f"no hub connected to the satellites on ports {missing}"
            raise BenchError(msg)

    async def tally(self, ports: list[int]) -> tuple[int, float]:
        """Count the times ``ports`` lost the hub, and the seconds of audio sent."""
        answer = await self.ask({"op": "stats", "ports": ports})
        stats = answer["stats"]
        seconds = sum(item["streamed_bytes"] for item in stats) / MIC_BYTES_PER_SECOND
        return sum(item["dropped"] for item in stats), seconds

    def cpu_seconds(self) -> float:
        """CPU time of the satellites' process so far."""
        assert self.process is not None
        return cpu_seconds(process_tree(self.process.pid))

    async def stop(self) -> None:
        """Ask the process to stop its satellites and end."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(BenchError, ConnectionError):
            await self.ask({"op": "quit"})
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


# The stacks -----------------------------------------------------------------


@dataclass(kw_only=True)
class Stack:
    """One stack's pipeline and satellites."""

    role: str  # "ours" or "peer"
    pipeline_id: str
    # On-device wake: the first one also says the latency runs' commands.
    commanders: list[int]
    # Always streaming, the hub detecting the wake word.
    streamers: list[int]


@dataclass(kw_only=True)
class Rig:
    """What the measurements run on."""

    home: Home
    satellites: Satellites
    servers: dict[str, Server]
    stacks: dict[str, Stack] = field(default_factory=dict)

    @property
    def engines(self) -> list[Server]:
        """Every engine process, ours and the peers."""
        return list(self.servers.values())


async def set_up_peer(rig: Rig, count: int, *, command: str = COMMAND) -> Stack:
    """Home Assistant's own stack: ``wyoming`` entries for peers and satellites.

    ``count`` satellites of each firmware; the on-device wake ones say ``command``.
    """
    home, servers, satellites = rig.home, rig.servers, rig.satellites
    stt = await home.add_wyoming(servers["stt-peer"].port)
    tts = await home.add_wyoming(servers["tts-peer"].port)
    # No wake word service installs on Python 3.14 (bench/README.md): the
    # always-streaming satellites' wake word comes from our engine host,
    # through Home Assistant's own wyoming integration all the same.
    wake = await home.add_wyoming(servers["ours"].port)
    pipeline_id = await home.create_pipeline(
        "Peer",
        stt=_only(home.entities_of(stt, "stt")),
        tts=_only(home.entities_of(tts, "tts")),
        voice=VOICE,
        wake=_only(home.entities_of(wake, "wake_word")),
    )
    commanders = await satellites.add("on-device-wake", command, count)
    streamers = await satellites.add("always-streaming", WAKE_COMMAND, count)
    for port in commanders + streamers:
        entry = await home.add_wyoming(port)
        home.put_in_kitchen(entry)
        pipeline_select = home.entity_id(
            "select", "wyoming", f"{entry.entry_id}-pipeline"
        )
        await home.select(pipeline_select, "Peer")
    await satellites.wait_connected(commanders + streamers)
    return Stack(
        role="peer",
        pipeline_id=pipeline_id,
        commanders=commanders,
        streamers=streamers,
    )


def ours_missing() -> bool:
    """Whether the integration cannot drive satellites yet."""
    if not OURS_GLUE.exists():
        return True
    from custom_components.private_voice import config_flow  # noqa: PLC0415

    flow = config_flow.PrivateVoiceConfigFlow
    try:
        types = flow.async_get_supported_subentry_types(None)  # type: ignore[arg-type]
    except AttributeError, TypeError:
        return True
    return SUBENTRY_SATELLITE not in types


async def set_up_ours(rig: Rig, count: int, *, command: str = COMMAND) -> Stack:
    """Private Voice on the engine host, satellites as its subentries.

    ``count`` satellites of each firmware; the on-device wake ones say ``command``.
    """
    home, servers, satellites = rig.home, rig.servers, rig.satellites
    commanders = await satellites.add("on-device-wake", command, count)
    streamers = await satellites.add("always-streaming", WAKE_COMMAND, count)
    subentries = [
        ConfigSubentryData(
            data={
                CONF_HOST: "127.0.0.1",
                CONF_PORT: port,
                CONF_AREA_ID: home.kitchen_area_id,
            },
            subentry_type=SUBENTRY_SATELLITE,
            title=f"Satellite {port}",
            unique_id=f"bench-{port}",
        )
        for port in commanders + streamers
    ]
    entry = await home.add_entry(
        DOMAIN,
        {
            CONF_LANGUAGE: "en",
            CONF_PORT: free_port(),
            CONF_ENGINE_MODE: EngineMode.REMOTE,
            CONF_URI: servers["ours"].uri,
        },
        subentries,
    )
    pipeline_id = await home.create_pipeline(
        "Ours",
        stt=_only(home.entities_of(entry, "stt")),
        tts=_only(home.entities_of(entry, "tts")),
        voice=VOICE,
        wake=_only(home.entities_of(entry, "wake_word")),
    )
    for subentry_id in entry.subentries:
        await home.select(_pipeline_select(home, entry, subentry_id), "Ours")
    await satellites.wait_connected(commanders + streamers)
    return Stack(
        role="ours",
        pipeline_id=pipeline_id,
        commanders=commanders,
        streamers=streamers,
    )


def _pipeline_select(home: Home, entry: ConfigEntry, subentry_id: str) -> str:
    """Find the subentry's select entity that offers the pipelines."""
    registry = er.async_get(home.hass)
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if entity.domain != "select" or entity.config_subentry_id != subentry_id:
            continue
        state = home.hass.states.get(entity.entity_id)
        if state is not None and "Ours" in state.attributes.get("options", []):
            return entity.entity_id
    msg = f"satellite subentry {subentry_id} has no pipeline select"
    raise BenchError(msg)


def _only(entity_ids: list[str]) -> str:
    if len(entity_ids) != 1:
        msg = f"expected one entity, found {entity_ids}"
        raise BenchError(msg)
    return entity_ids[0]


# Latency --------------------------------------------------------------------


def pipeline_stages(
    home: Home, pipeline_id: str, run: dict[str, Any]
) -> dict[str, Any]:
    """Split a run's latency by its Assist pipeline events (wall clock times).

    From ``audio-stop`` to ``stt-end`` (the transcript), to ``intent-end`` (the
    light switched, the reply text ready), to the first reply audio.
    """
    debug = home.hass.data[KEY_ASSIST_PIPELINE].pipeline_debug.get(pipeline_id)
    stop = run["audio_stop_wall"]
    if not debug or stop is None:
        return {}
    # The newest run of the pipeline, if it is this command's (started while
    # the satellite spoke): a run the hub never started has no events here.
    events = next(reversed(debug.values())).events
    when = {
        str(event.type): dt.datetime.fromisoformat(event.timestamp).timestamp()
        for event in events
        if event.timestamp
    }
    if not stop - RUN_WINDOW < when.get("run-start", 0.0) <= stop:
        return {}
    stages: dict[str, Any] = {}
    if "stt-end" in when:
        stages["stt_ms"] = ms(when["stt-end"] - stop)
    if "stt-end" in when and "intent-end" in when:
        stages["intent_ms"] = ms(when["intent-end"] - when["stt-end"])
    if "intent-end" in when and run["latency"] is not None:
        stages["reply_audio_ms"] = ms(stop + run["latency"] - when["intent-end"])
    return stages


async def one_run(rig: Rig, stack: Stack) -> dict[str, Any]:
    """Say the command once on the stack's first satellite; check the run."""
    home = rig.home
    await home.light_off()
    answer = await rig.satellites.ask({"op": "say", "ports": stack.commanders[:1]})
    run: dict[str, Any] = answer["runs"][0]
    await home.hass.async_block_till_done()
    heard = (run["transcript"] or "").strip()
    run["transcript"] = heard
    run["word_errors"] = word_errors(COMMAND, heard) if heard else None
    run["light_on"] = home.light_is_on()
    run["stages"] = pipeline_stages(home, stack.pipeline_id, run)
    run["ok"] = run["light_on"] and run["latency"] is not None and not run["error"]
    return run


async def bench_latency(rig: Rig, runs: int) -> dict[str, Any]:
    """Every stack in turn, alternating who goes first, after one warm-up each."""
    stacks = rig.stacks
    for stack in stacks.values():
        warm_up = await one_run(rig, stack)
        print(f"  warmed up {stack.role}: {_describe(warm_up)}")
    measured: dict[str, list[dict[str, Any]]] = {role: [] for role in stacks}
    for index in range(runs):
        order = list(stacks) if index % 2 == 0 else list(reversed(stacks))
        for role in order:
            run = await one_run(rig, stacks[role])
            measured[role].append(run)
            print(f"  {role:5} {_describe(run)}")
    result: dict[str, Any] = {
        role: _latency_summary(role_runs) for role, role_runs in measured.items()
    }
    if "ours" in result and "peer" in result:
        result["ratio_p50"] = ratio(result["ours"]["p50_ms"], result["peer"]["p50_ms"])
        result["ratio_p95"] = ratio(result["ours"]["p95_ms"], result["peer"]["p95_ms"])
    return result


def _describe(run: dict[str, Any]) -> str:
    latency = "—" if run["latency"] is None else f"{ms(run['latency']):7.1f} ms"
    light = "light on" if run["light_on"] else "LIGHT OFF"
    error = f", error: {run['error']}" if run["error"] else ""
    return f"{latency}  {light}  {run['transcript']!r}{error}"


def _latency_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [run for run in runs if run["ok"]]
    good = [run["latency"] for run in ok]
    stages = {
        key: _median([run["stages"][key] for run in ok if key in run["stages"]])
        for key in ("stt_ms", "intent_ms", "reply_audio_ms")
    }
    return {
        "p50_ms": ms(statistics.median(good)) if good else None,
        "p95_ms": ms(percentile(good, 95)) if good else None,
        "min_ms": ms(min(good)) if good else None,
        "max_ms": ms(max(good)) if good else None,
        "runs": len(runs),
        "failed": len(runs) - len(good),
        "light_on": sum(run["light_on"] for run in runs),
        "exact_transcripts": sum(run["word_errors"] == 0 for run in runs),
        "stages_p50": stages,
        "runs_detail": runs,
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


# Event-loop lag ---------------------------------------------------------------


async def probe_lag(stop: asyncio.Event) -> list[float]:
    """Sleep LAG_INTERVAL again and again until ``stop``; how late each wake-up was."""
    lags = []
    while not stop.is_set():
        asleep = time.perf_counter()
        await asyncio.sleep(LAG_INTERVAL)
        lags.append(max(0.0, time.perf_counter() - asleep - LAG_INTERVAL))
    return lags


@dataclass
class CpuWatch:
    """CPU time of this process (Home Assistant), the satellites and the engines."""

    satellites: Satellites
    servers: list[Server]
    began: float = 0.0
    before: dict[str, float] = field(default_factory=dict)
    # Per process kind, in % of one core, once the watch has ended.
    percent: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> Self:
        """Start counting."""
        self.began = time.perf_counter()
        self.before = self._now()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop counting."""
        wall = time.perf_counter() - self.began
        after = self._now()
        self.percent = {
            name: round(100 * (after[name] - self.before[name]) / wall, 1)
            for name in after
        }

    def _now(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "home_assistant": usage.ru_utime + usage.ru_stime,
            "satellites": self.satellites.cpu_seconds(),
            "engines": sum(server.cpu_seconds() for server in self.servers),
        }


def _lag_summary(lags: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": ms(percentile(lags, 50)),
        "p99_ms": ms(percentile(lags, 99)),
        "max_ms": ms(max(lags)),
        "over_goal": sum(lag * 1000 >= LAG_GOAL_MS for lag in lags),
        "samples": len(lags),
    }


async def lag_while(
    rig: Rig,
    seconds: float,
    request: dict[str, Any] | None = None,
    ports: list[int] | None = None,
) -> dict[str, Any]:
    """Probe the loop while the satellites do ``request``, and ``seconds`` at least.

    Counts how often ``ports`` lost the hub's connection meanwhile.
    """
    satellites = rig.satellites
    dropped, streamed = await satellites.tally(ports) if ports else (0, 0.0)
    stop = asyncio.Event()
    with CpuWatch(satellites, rig.engines) as cpu:
        probe = asyncio.create_task(probe_lag(stop))
        answer = await satellites.ask(request) if request else {}
        await asyncio.sleep(max(0.0, seconds - (time.perf_counter() - cpu.began)))
        stop.set()
        lags = await probe
    summary = _lag_summary(lags) | {
        "seconds": round(time.perf_counter() - cpu.began, 1),
        "cpu_pct": cpu.percent,
    }
    if ports:
        now_dropped, now_streamed = await satellites.tally(ports)
        summary["hub_drops"] = now_dropped - dropped
        # Microphone audio sent per satellite, per second: 1.0 when nothing
        # held a satellite back (a hub that stops reading blocks its sends).
        summary["mic_real_time"] = round(
            (now_streamed - streamed) / len(ports) / summary["seconds"], 2
        )
    runs = answer.get("runs", [])
    if runs:
        summary["commands"] = len(runs)
        summary["replies"] = sum(run["first_audio_at"] is not None for run in runs)
        summary["errors"] = sorted({run["error"] for run in runs if run["error"]})
        latencies = [run["latency"] for run in runs if run["latency"] is not None]
        if latencies:
            summary["latency_p50_ms"] = ms(statistics.median(latencies))
    return summary


async def bench_lag(rig: Rig, seconds: float, phases: set[str]) -> dict[str, Any]:
    """Idle; each stack's commanders; each stack's streamers.

    Commanders say commands back to back for ``seconds``. Streamers wake up
    one after another, STREAM_STAGGER apart (they share the hub-detected
    phrase "Okay Nabu", and Home Assistant drops a repeat within 2 s), each
    saying a command; once every one has had its reply, all of them stream
    silence through wake word detection for ``seconds``.
    """
    result: dict[str, Any] = {}
    if "idle" in phases:
        result["idle"] = await lag_while(rig, seconds)
        _print_lag("idle", result["idle"])
    if "commands" in phases:
        result["commands"] = {}
        for role, stack in rig.stacks.items():
            request = {
                "op": "loop",
                "ports": stack.commanders,
                "seconds": seconds,
                "pause": COMMAND_PAUSE,
            }
            lag = await lag_while(rig, seconds, request, stack.commanders)
            result["commands"][role] = lag
            _print_lag(f"{role} commands", lag)
    if "streaming" in phases:
        result["streaming"], result["streaming_wake_ups"] = {}, {}
        for role, stack in rig.stacks.items():
            request = {"op": "say", "ports": stack.streamers, "stagger": STREAM_STAGGER}
            wake_ups = await lag_while(rig, 0.0, request, stack.streamers)
            result["streaming_wake_ups"][role] = wake_ups
            _print_lag(f"{role} wake-ups", wake_ups)
            lag = await lag_while(rig, seconds, None, stack.streamers)
            lag["streams"] = len(stack.streamers)
            result["streaming"][role] = lag
            await rig.satellites.ask({"op": "hush", "ports": stack.streamers})
            _print_lag(f"{role} streaming", lag)
    return result


def _print_lag(label: str, lag: dict[str, Any]) -> None:
    extra = ""
    if "commands" in lag:
        extra = f", {lag['replies']}/{lag['commands']} replies"
        if lag["errors"]:
            extra += f", errors: {lag['errors']}"
    if "mic_real_time" in lag and "streaming" in label:
        extra += f", microphones at {lag['mic_real_time']:g}x real time"
    if lag.get("hub_drops"):
        extra += f", hub connection lost {lag['hub_drops']} times"
    print(
        f"  {label:16} loop lag p50 {lag['p50_ms']:5.1f} ms, p99 {lag['p99_ms']:6.1f}"
        f" ms, max {lag['max_ms']:6.1f} ms; CPU {lag['cpu_pct']}{extra}"
    )


# Report ---------------------------------------------------------------------


def _goals(report: dict[str, Any]) -> dict[str, Any]:
    latency = report.get("latency", {})
    lag = report.get("lag", {})
    value = latency.get("ratio_p50")
    ours_lags = [
        lag[mode]["ours"]["p99_ms"]
        for mode in ("commands", "streaming")
        if "ours" in lag.get(mode, {})
    ]
    worst = max(ours_lags) if ours_lags else None
    return {
        "latency_p50_vs_peer": {
            "target": f"<= {LATENCY_GOAL}",
            "value": value,
            "met": value is not None and value <= LATENCY_GOAL,
        },
        "loop_lag_p99_ms": {
            "target": f"< {LAG_GOAL_MS:g} (ours, worst of commands and streaming)",
            "value": worst,
            "met": worst is not None and worst < LAG_GOAL_MS,
        },
    }


def _pick(section: dict[str, Any], *path: str) -> tuple[Any, Any]:
    """Look ours and the peer's figure up along ``path``."""
    found = []
    for role in ("ours", "peer"):
        value: Any = section.get(role)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        found.append(value)
    return found[0], found[1]


def _row(label: str, figures: tuple[Any, Any], unit: str, goal: str = "") -> str:
    """One table row; figures in ms or % are compared, counts are not."""
    ours, peer = figures
    share = ratio(ours, peer) if isinstance(peer, float) else None
    return (
        f"| {label} | {cell(ours, unit)} | {cell(peer, unit)} "
        f"| {cell(share)} | {goal} |"
    )


def _counts_of(section: dict[str, Any], key: str, total: str) -> tuple[Any, Any]:
    """Ours and the peer's ``key`` out of ``total``, as "k/n"."""
    pair = []
    for role in ("ours", "peer"):
        figures = section.get(role)
        pair.append(f"{figures[key]}/{figures[total]}" if figures else None)
    return pair[0], pair[1]


def _counts(latency: dict[str, Any], key: str) -> tuple[Any, Any]:
    """Ours and the peer's ``key`` out of their latency runs, as "k/n"."""
    return _counts_of(latency, key, "runs")


def _sum(phases: list[dict[str, Any]], role: str, key: str) -> Any:
    """Add up ``key`` of ``role`` over ``phases`` (None if in none)."""
    found = [phase[role][key] for phase in phases if role in phase]
    return sum(found) if found else None


def table(report: dict[str, Any]) -> str:
    """Render the headline figures as a Markdown table."""
    latency, lag = report.get("latency", {}), report.get("lag", {})
    goals = report["goals"]

    def verdict(name: str, target: str) -> str:
        if goals[name]["value"] is None:
            return f"{target}: not measured"
        return f"{target}: {'met' if goals[name]['met'] else '**not met**'}"

    rows = [
        "| Measure | Ours | Peer | Ours/peer | Goal |",
        "|---|---:|---:|---:|---|",
        _row(
            "End of speech → first reply audio at the satellite, p50",
            _pick(latency, "p50_ms"),
            " ms",
            verdict("latency_p50_vs_peer", f"ours ≤ {LATENCY_GOAL} x peer"),
        ),
        _row("End of speech → first reply audio, p95", _pick(latency, "p95_ms"), " ms"),
    ]
    stages = {
        "stt_ms": "… of which end of speech → transcript, p50",
        "intent_ms": "… transcript → intent handled, p50",
        "reply_audio_ms": "… intent handled → first reply audio, p50",
    }
    rows += [
        _row(label, _pick(latency, "stages_p50", key), " ms")
        for key, label in stages.items()
    ]
    rows += [
        _row("Runs where the light turned on", _counts(latency, "light_on"), ""),
        _row("Failed runs", _counts(latency, "failed"), ""),
        _row("Exact transcripts", _counts(latency, "exact_transcripts"), ""),
    ]
    if idle := lag.get("idle"):
        # One Home Assistant serves both stacks: its idle lag is both's.
        rows.append(
            _row(
                "HA loop lag p99, idle (both stacks set up)",
                (idle["p99_ms"],) * 2,
                " ms",
            )
        )
    count = report["settings"]["satellites"]
    what = {
        "commands": f"{count} satellites saying commands back to back",
        "streaming": f"{count} satellites streaming (always-streaming firmware)",
    }
    for mode, label in what.items():
        if mode not in lag:
            continue
        section = lag[mode]
        rows += [
            _row(
                f"HA loop lag p99, {label}",
                _pick(section, "p99_ms"),
                " ms",
                verdict("loop_lag_p99_ms", f"ours < {LAG_GOAL_MS:g} ms"),
            ),
            _row(f"HA loop lag max, {label}", _pick(section, "max_ms"), " ms"),
            _row(
                f"HA process CPU, {label}",
                _pick(section, "cpu_pct", "home_assistant"),
                "% of a core",
            ),
        ]
    if commands := lag.get("commands"):
        rows.append(
            _row(
                "Commands answered, satellites saying commands back to back",
                _counts_of(commands, "replies", "commands"),
                "",
            )
        )
    if wake_ups := lag.get("streaming_wake_ups"):
        rows.append(
            _row(
                "Commands answered, streaming satellites (one each, 2.2 s apart)",
                _counts_of(wake_ups, "replies", "commands"),
                "",
            )
        )
    if streaming := lag.get("streaming"):
        rows.append(
            _row(
                "Microphone audio the hub took in while streaming (x real time)",
                _pick(streaming, "mic_real_time"),
                "",
            )
        )
    phases = [
        lag[key]
        for key in ("commands", "streaming_wake_ups", "streaming")
        if key in lag
    ]
    if phases:
        rows.append(
            _row(
                "Satellites dropped by the hub during the loop-lag phases",
                (_sum(phases, "ours", "hub_drops"), _sum(phases, "peer", "hub_drops")),
                " times",
            )
        )
    return "\n".join(rows)


# Main -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line: what to run and how long."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run (no README update)"
    )
    parser.add_argument("--runs", type=int, help="latency runs per stack (15; quick 3)")
    parser.add_argument(
        "--lag-seconds", type=float, help="seconds per loop-lag phase (30; quick 8)"
    )
    parser.add_argument(
        "--satellites",
        type=int,
        default=SATELLITES,
        help="satellites per stack for the loop lag",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated phases to leave out: latency, idle, commands, streaming",
    )
    parser.add_argument("--no-ours", action="store_true", help="measure the peer only")
    parser.add_argument(
        "--ours",
        default="{python} -m engine_host --models-dir {models} --uri {uri} "
        f"--stt-model tiny.en --voice {VOICE}",
        help="command that starts our engine host ({python}, {models} and {uri} "
        "are filled in; custom_components/private_voice is on PYTHONPATH)",
    )
    parser.add_argument(
        "--no-readme", action="store_true", help="leave bench/README.md"
    )
    parser.add_argument(
        "--logs",
        type=Path,
        help="folder for the logs and Home Assistant's configuration "
        "(default: a new temporary folder)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="log the voice path (assist_pipeline, wyoming, ours) at debug level",
    )
    # Filled in by bench/run-satellite from git, which the environment lacks.
    parser.add_argument("--commit", help=argparse.SUPPRESS)
    parser.add_argument("--changed", help=argparse.SUPPRESS)
    parser.add_argument(
        "--slow-callbacks",
        type=float,
        metavar="MS",
        help="asyncio debug mode: log every callback on the loop that runs longer "
        "than MS into Home Assistant's log (to find what lags; slows everything, "
        "so not for figures)",
    )
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 3 if args.quick else 15
    if args.lag_seconds is None:
        args.lag_seconds = 8.0 if args.quick else 30.0
    args.skip = {value for value in args.skip.split(",") if value}
    return args


def new_report(args: argparse.Namespace) -> dict[str, Any]:
    """Start the report: when, where, and with which settings."""
    return {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "source": source(args.commit, args.changed),
        "settings": {
            "command": COMMAND,
            "streaming_command": WAKE_COMMAND,
            "lead_silence_s": LEAD_SILENCE,
            "trailing_silence_s": TRAILING_SILENCE,
            "latency_runs": args.runs,
            "lag_seconds": args.lag_seconds,
            "lag_interval_ms": ms(LAG_INTERVAL),
            "satellites": args.satellites,
            "command_pause_s": COMMAND_PAUSE,
            "stream_stagger_s": STREAM_STAGGER,
            "peer_stt_flags": PEER_STT_FLAGS,
            "peer_tts_flags": PEER_TTS_FLAGS,
            "ours_command": args.ours,
            "slow_callbacks_ms": args.slow_callbacks,
        },
    }


async def set_up_stacks(
    args: argparse.Namespace, rig: Rig, report: dict[str, Any]
) -> None:
    """Set up the stacks in Home Assistant, ours only if it can drive satellites."""
    if args.no_ours:
        report["ours_note"] = "left out (--no-ours)"
    elif ours_missing():
        report["ours_note"] = OURS_MISSING
        print(OURS_MISSING)
    else:
        rig.stacks["ours"] = await set_up_ours(rig, args.satellites)
    rig.stacks["peer"] = await set_up_peer(rig, args.satellites)
    print(f"satellites connected: {', '.join(rig.stacks)}")
    report["stacks"] = {
        role: {
            "pipeline": async_get_pipeline(rig.home.hass, stack.pipeline_id).to_json(),
            "on_device_wake_satellites": len(stack.commanders),
            "always_streaming_satellites": len(stack.streamers),
        }
        for role, stack in rig.stacks.items()
    }


async def measure(args: argparse.Namespace, rig: Rig) -> dict[str, Any]:
    """Run the phases that were not skipped."""
    report: dict[str, Any] = {}
    if "latency" not in args.skip:
        print("Latency: end of speech → first reply audio at the satellite")
        report["latency"] = await bench_latency(rig, args.runs)
    if phases := LAG_PHASES - args.skip:
        print(f"Event-loop lag: {args.satellites} satellites at a time")
        report["lag"] = await bench_lag(rig, args.lag_seconds, phases)
    return report


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, measure, stop everything; return the report."""
    report = new_report(args)
    warn_if_loaded(report)
    if args.slow_callbacks is not None:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = args.slow_callbacks / 1000
    logs = args.logs or Path(tempfile.mkdtemp(prefix="bench-satellite-"))
    (logs / "models").mkdir(parents=True, exist_ok=True)
    servers = peer_servers(logs)
    # Ours serves the peer's wake word too; it runs even with --no-ours.
    servers["ours"] = engine_host_server(
        args.ours, sys.executable, logs / "models", logs
    )
    satellites = Satellites(logs / "satellites.log")
    names = ", ".join(server.name for server in servers.values())
    print(f"starting {names} and the satellites (logs in {logs})")
    home: Home | None = None
    try:
        await asyncio.gather(start_all(list(servers.values())), satellites.start())
        report["ready_s"] = {
            s.name: round(s.ready_seconds, 2) for s in servers.values()
        }
        report["versions"] = server_versions(servers) | {
            "homeassistant": versions(None, ["homeassistant", "wyoming"])
        }
        began = time.perf_counter()
        home = await Home.start(
            Path(tempfile.mkdtemp(prefix="config-", dir=logs)),
            logs / "home-assistant.log",
            debug=args.debug,
        )
        report["home_assistant_start_s"] = round(time.perf_counter() - began, 2)
        print(f"Home Assistant started in {report['home_assistant_start_s']:g} s")
        rig = Rig(home=home, satellites=satellites, servers=servers)
        await set_up_stacks(args, rig, report)
        report |= await measure(args, rig)
        report["memory"] = server_memory(servers)
    finally:
        if home is not None:
            await home.stop()
        await satellites.stop()
        await stop_all(list(servers.values()))
    report["logs"] = str(logs)
    report["machine"]["load_average_at_end"] = load_average()
    report["goals"] = _goals(report)
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
    # Only a full, undisturbed run of both stacks makes the README's table.
    full = not (
        args.quick
        or args.no_readme
        or args.skip
        or args.slow_callbacks is not None
        or "ours" not in report.get("latency", {})
    )
    path = write_results("satellite", report, markdown, readme=full)
    print_summary(report, markdown, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
