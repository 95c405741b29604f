"""The satellites of bench_satellite.py, in a process of their own.

Each is the tests' simulated ESP32-S3 satellite (tests/protocol/simulator.py:
a Wyoming server, one client at a time, 16 kHz mono 1024-sample chunks with
``data`` inline), with three things a benchmark needs on top:

- the microphone runs at microphone pace: a chunk leaves once it has been
  "recorded" (the simulator itself sends as fast as it can, which suits tests);
- it speaks when told to (``say``), not once per ``run-satellite``, so that
  one connection carries many runs and none starts before the bench is ready;
- what happens is timed where it happens: ``audio-stop`` leaving, the reply's
  first ``audio-chunk`` arriving, the ``transcript`` and any ``error``, and
  ``pause-satellite`` (which ends the run: a paused satellite stops talking).

Real satellites are separate devices: running these in a process of their own
keeps their work (and their share of the GIL) off Home Assistant's event loop,
whose lag the bench measures.

The parent drives the process with JSON lines on stdin; each request gets one
JSON line back on stdout:

- ``{"op": "add", "firmware": F, "text": T, "count": N, "own_wake_phrase": B}``
  → ``{"ports": [...]}``
- ``{"op": "connected", "ports": [...], "timeout": S}`` → ``{"connected": [...]}``
- ``{"op": "say", "ports": [...], "timeout": S, "stagger": S}`` → ``{"runs": [...]}``
- ``{"op": "loop", "ports": [...], "seconds": S, "pause": P}`` → ``{"runs": [...]}``
- ``{"op": "stats", "ports": [...]}`` → ``{"stats": [...]}``
- ``{"op": "hush", "ports": [...]}`` → ``{"hushed": [...]}``
- ``{"op": "quit"}`` → ``{"quit": true}``
"""

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import asdict, dataclass
import json
import sys
import time
from typing import Any, override

from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Info
from wyoming.satellite import PauseSatellite, RunSatellite

from tests.protocol.simulator import Device, Firmware, SimulatedSatellite

from .speech import make_utterances

# A run that has not finished by then has failed.
RUN_TIMEOUT = 30.0


@dataclass
class Run:
    """One command said by one satellite, timed at the satellite.

    Times are ``time.perf_counter()`` of this process (CLOCK_MONOTONIC, the
    same clock in every process of this machine); ``audio_stop_wall`` is the
    wall clock, to line the run up with Home Assistant's pipeline events.
    """

    port: int
    said_at: float
    audio_stop_at: float | None = None
    audio_stop_wall: float | None = None
    transcript: str | None = None
    first_audio_at: float | None = None
    reply_end_at: float | None = None
    reply_bytes: int = 0
    # The reply's audio-start: rate, width, channels.
    reply_format: tuple[int, int, int] | None = None
    error: str | None = None
    # The hub's pause-satellite arrived (the microphone stops with it), and
    # the last microphone chunk of the run left.
    paused_at: float | None = None
    mic_last_at: float | None = None

    @property
    def latency(self) -> float | None:
        """End of speech (``audio-stop`` sent) → first reply audio."""
        if self.audio_stop_at is None or self.first_audio_at is None:
            return None
        return self.first_audio_at - self.audio_stop_at

    def to_json(self) -> dict[str, Any]:
        """Return the run, and its latency, as JSON."""
        return asdict(self) | {"latency": self.latency}


class BenchSatellite(SimulatedSatellite):
    """A simulated satellite that speaks at microphone pace and times its runs."""

    def __init__(
        self, mic_audio: bytes, device: Device, wake_phrase: str | None = None
    ) -> None:
        """Say ``mic_audio`` when told to; report ``wake_phrase`` if given."""
        super().__init__(mic_audio, device)
        self.wake_phrase = wake_phrase
        # An always-streaming satellite's microphone is on from its first
        # command until hushed, across reconnections.
        self.streaming = False
        # What the microphone says next: the command, or nothing on resuming.
        self._command = mic_audio
        self.run: Run | None = None
        self.runs: list[Run] = []
        self.hub: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        # Times the hub's connection was lost.
        self.dropped = 0
        self._finished = asyncio.Event()

    async def say(
        self,
        limit: float = RUN_TIMEOUT,
        turn: Callable[[], Awaitable[None]] | None = None,
    ) -> Run:
        """Say the command once and wait for the reply to end.

        On-device wake: wake word detected, the command, ``audio-stop``.
        Always streaming: the wake word and the command, then silence at
        microphone pace until ``hush``.

        Speaks once the hub is connected and, if given, once ``turn`` returns.
        """
        self._begin()
        assert self.run is not None
        run = self.run
        try:
            async with asyncio.timeout(limit):
                # Not while the hub is away (it comes back by itself).
                await self.ready.wait()
                if turn is not None:
                    await turn()
                    await self.ready.wait()
                self._listen(self.mic_audio)
                self.streaming = self.device.firmware is Firmware.ALWAYS_STREAMING
                await self._finished.wait()
        except TimeoutError:
            run.error = run.error or f"no reply within {limit:g} s"
        if run.error and self.device.firmware is Firmware.ON_DEVICE_WAKE:
            self._stop_streaming()  # the hub gave up: so does the satellite
        self.run = None
        return run

    @override
    def _info(self) -> Info:
        info = super()._info()
        if self.wake_phrase is not None:
            # Home Assistant drops a wake-up whose phrase any satellite woke
            # with in the last 2 s: satellites in different rooms, different
            # phrases, so that all of them may speak at once.
            info.wake[0].models[0].phrase = self.wake_phrase
        return info

    def hush(self) -> None:
        """Stop the microphone (an always-streaming satellite streams until then)."""
        self.streaming = False
        self._stop_streaming()

    def _listen(self, command: bytes) -> None:
        """Start the microphone: say ``command`` and, if always streaming, go on."""
        assert self.hub is not None
        self._stop_streaming()  # what is left of the last command, if any
        self._command = command
        self._stream = asyncio.create_task(self._speak(self.hub))
        self._tasks.add(self._stream)
        self._stream.add_done_callback(self._tasks.discard)

    @override
    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # One client at a time: a new connection drops the hub's, and the run
        # it carried (Home Assistant's wyoming asks for info on a connection
        # of its own every 30 s).
        self._lost_hub("another client connected")
        try:
            await super()._serve(reader, writer)
        finally:
            if writer is self.hub:
                self._lost_hub("the hub disconnected")

    def _lost_hub(self, why: str) -> None:
        if self.hub is None:
            return
        self.hub = None
        self.ready.clear()
        self.dropped += 1
        if self.run is not None and not self._finished.is_set():
            self.run.error = f"{why} during the run"
            self._finished.set()

    def _begin(self) -> None:
        self.run = Run(port=self.port, said_at=time.perf_counter())
        self.runs.append(self.run)
        self._finished.clear()

    @override
    async def _handle(self, event: Event, writer: asyncio.StreamWriter) -> None:
        now = time.perf_counter()
        if RunSatellite.is_type(event.type):
            # Speaks when told to (say), not on every run-satellite: one
            # connection carries many runs, each started when the bench wants.
            self.hub = writer
            self.ready.set()
            self.recording.events.append(event)
            if self.streaming:
                # Back after the hub dropped it: streams on, without a command.
                self._listen(b"")
            return
        run = self.run
        if run is not None:
            self._note(run, event, now)
        await super()._handle(event, writer)
        if run is not None and AudioStop.is_type(event.type):
            run.reply_end_at = now
            self._finished.set()

    def _note(self, run: Run, event: Event, now: float) -> None:
        """Time what the hub sends during a run; an error or a pause ends it."""
        if AudioChunk.is_type(event.type):
            if run.first_audio_at is None:
                run.first_audio_at = now
            run.reply_bytes += len(event.payload or b"")
        elif AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            run.reply_format = (start.rate, start.width, start.channels)
        elif Transcript.is_type(event.type):
            run.transcript = Transcript.from_event(event).text
        elif Error.is_type(event.type):
            run.error = Error.from_event(event).text
            self._finished.set()
        elif PauseSatellite.is_type(event.type):
            # No reply comes to a paused satellite (a muted room).
            run.paused_at = now
            self._finished.set()

    @override
    async def _say(self, writer: asyncio.StreamWriter) -> None:
        """Send the command at microphone pace: each chunk once it is recorded."""
        loop = asyncio.get_running_loop()
        begin = loop.time()
        per_second = self.device.mic_format.bytes_per_second
        audio = self._command
        for offset in range(0, len(audio), self.chunk_bytes):
            chunk = audio[offset : offset + self.chunk_bytes]
            due = begin + (offset + len(chunk)) / per_second
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self._chunk(writer, chunk)
            if self.run is not None:
                self.run.mic_last_at = time.perf_counter()

    @override
    async def _send(self, writer: asyncio.StreamWriter, event: Event) -> None:
        await super()._send(writer, event)
        run = self.run
        if run is not None and AudioStop.is_type(event.type):
            # Sent and drained: the end of speech as the hub can know it.
            run.audio_stop_at = time.perf_counter()
            run.audio_stop_wall = time.time()

    def stats(self) -> dict[str, Any]:
        """Count connections, drops, run/pause requests, microphone bytes, replies."""
        return {
            "port": self.port,
            "connections": self.recording.connections,
            "dropped": self.dropped,
            "run_satellite": len(self.recording.of_type(RunSatellite().event().type)),
            "pause_satellite": len(
                self.recording.of_type(PauseSatellite().event().type)
            ),
            "streaming": self.streaming,
            "streamed_bytes": self.recording.streamed,
            "replies": len(self.recording.replies),
        }


class Farm:
    """The satellites, by port, and the requests that drive them."""

    def __init__(self) -> None:
        """Start with none."""
        self.satellites: dict[int, BenchSatellite] = {}
        self._audio: dict[str, bytes] = {}

    async def add(
        self, firmware: str, text: str, count: int, *, own_wake_phrase: bool
    ) -> dict[str, Any]:
        """Start ``count`` satellites saying ``text``; return their ports.

        With ``own_wake_phrase``, each reports a wake phrase of its own (the
        wake word model stays okay_nabu).
        """
        if text not in self._audio:
            [utterance] = await asyncio.to_thread(make_utterances, [text])
            self._audio[text] = utterance.pcm
        kind = Firmware(firmware)
        # An always-streaming satellite sends silence at microphone pace once
        # it has said its command, as a microphone would.
        device = Device(firmware=kind, silence_interval=1024 / 16000)
        ports = []
        for _ in range(count):
            phrase = (
                f"okay nabu {len(self.satellites) + 1}" if own_wake_phrase else None
            )
            satellite = BenchSatellite(self._audio[text], device, phrase)
            await satellite.start()
            self.satellites[satellite.port] = satellite
            ports.append(satellite.port)
        return {"ports": ports}

    async def connected(self, ports: list[int], limit: float) -> dict[str, Any]:
        """Wait until the hub has sent ``run-satellite`` to each of ``ports``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await asyncio.gather(
                    *(self.satellites[port].ready.wait() for port in ports)
                )
        return {
            "connected": [
                port for port in ports if self.satellites[port].ready.is_set()
            ]
        }

    async def say(
        self, ports: list[int], limit: float, stagger: float
    ) -> dict[str, Any]:
        """Each of ``ports`` says its command once, ``stagger`` s apart; the runs.

        One after another in turns at least ``stagger`` apart, whenever each
        is connected: a satellite the hub dropped speaks when it is back, not
        together with another.
        """
        loop = asyncio.get_running_loop()
        lock = asyncio.Lock()
        last = -stagger

        async def turn() -> None:
            nonlocal last
            async with lock:
                await asyncio.sleep(max(0.0, last + stagger - loop.time()))
                last = loop.time()

        runs = await asyncio.gather(
            *(
                self.satellites[port].say(limit, turn if stagger else None)
                for port in ports
            )
        )
        return {"runs": [run.to_json() for run in runs]}

    async def loop(
        self, ports: list[int], seconds: float, pause: float
    ) -> dict[str, Any]:
        """Each of ``ports`` says its command again and again for ``seconds``.

        Starts are spread over the first ``pause`` seconds; after each reply a
        satellite waits ``pause`` before the next command.
        """
        deadline = time.perf_counter() + seconds

        async def keep_saying(index: int, satellite: BenchSatellite) -> list[Run]:
            await asyncio.sleep(pause * index / len(ports))
            runs = []
            while time.perf_counter() < deadline:
                runs.append(await satellite.say())
                await asyncio.sleep(pause)
            return runs

        done = await asyncio.gather(
            *(
                keep_saying(index, self.satellites[port])
                for index, port in enumerate(ports)
            )
        )
        return {"runs": [run.to_json() for runs in done for run in runs]}

    def stats(self, ports: list[int]) -> dict[str, Any]:
        """Counters of ``ports``."""
        return {"stats": [self.satellites[port].stats() for port in ports]}

    def hush(self, ports: list[int]) -> dict[str, Any]:
        """Stop the microphones of ``ports``."""
        for port in ports:
            self.satellites[port].hush()
        return {"hushed": ports}

    async def stop(self) -> None:
        """Stop every satellite."""
        await asyncio.gather(
            *(satellite.stop() for satellite in self.satellites.values())
        )

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one request."""
        match request["op"]:
            case "add":
                return await self.add(
                    request["firmware"],
                    request["text"],
                    request["count"],
                    own_wake_phrase=request.get("own_wake_phrase", False),
                )
            case "connected":
                return await self.connected(request["ports"], request["timeout"])
            case "say":
                return await self.say(
                    request["ports"],
                    request.get("timeout", RUN_TIMEOUT),
                    request.get("stagger", 0.0),
                )
            case "loop":
                return await self.loop(
                    request["ports"], request["seconds"], request["pause"]
                )
            case "stats":
                return self.stats(request["ports"])
            case "hush":
                return self.hush(request["ports"])
            case op:
                msg = f"unknown op {op!r}"
                raise ValueError(msg)


async def serve() -> None:
    """Answer requests from stdin until ``quit`` or end of input."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    farm = Farm()
    try:
        while line := await reader.readline():
            request = json.loads(line)
            if request["op"] == "quit":
                break
            try:
                answer = await farm.handle(request)
            except Exception as err:  # noqa: BLE001 - reported to the parent
                answer = {"error": f"{type(err).__name__}: {err}"}
            print(json.dumps(answer), flush=True)
    finally:
        await farm.stop()
    print(json.dumps({"quit": True}), flush=True)


if __name__ == "__main__":
    asyncio.run(serve())
