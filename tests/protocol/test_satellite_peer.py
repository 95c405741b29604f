"""The satellite link against the real wyoming-satellite, with real engines.

The hub's side (SatelliteLink) connects to wyoming-satellite 1.0.0 running as
a subprocess (tests/satellite_peer.py). A small real pipeline serves its runs:
the wake word, speech-to-text and the spoken reply come from the session's
engine host, the end of the command from Silero voice activity. A satellite
that detects the wake word itself streams to a wake service: the engine host,
or the public Wyoming service in front of it, as a home runs it. No Home
Assistant.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
import contextlib
from dataclasses import dataclass, field
import ipaddress
import logging
from pathlib import Path
import re

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.info import Info
from wyoming.pipeline import PipelineStage
from wyoming.tts import Synthesize
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detect, Detection, NotDetected

from custom_components.private_voice.coordinator import EngineEndpoints
from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.engine_host.vad import FRAME_SAMPLES, SileroVad
from custom_components.private_voice.protocol.client import (
    Endpoint,
    WyomingConnection,
)
from custom_components.private_voice.protocol.satellite import (
    MIC_FORMAT,
    LinkSettings,
    PipelineRequest,
    PipelineRun,
    SatelliteHandler,
    SatelliteLink,
)
from custom_components.private_voice.protocol.service import WyomingService

from ..engine_host.conftest import Speak, executor, silence  # noqa: F401
from ..satellite_peer import (
    NAME,
    SND_RATE,
    SatellitePeer,
    requires_satellite_peer,
    running_satellite,
)

COMMAND = "Turn on the kitchen lights."
REPLY = "Turned on the lights."
# Said so, piper's voice clears microWakeWord's cutoff by a wide margin
# (tests/engine_host/test_wake.py).
WAKE_PHRASE = "Okay Nabu!"
WAKE_WORD = "okay_nabu"
# wyoming-satellite 1.0.0 never sends played: the link waits the reply's length
# and this much more.
PEER_LINK = LinkSettings(played_grace=0.5)
# Voice this long starts the command; silence this long after it ends it (as
# Home Assistant's voice command segmenter does); the command's audio begins
# this long before its voice did.
VOICE_SECONDS = 0.3
SILENCE_SECONDS = 0.7
PREROLL_SECONDS = 0.3
FRAME_SECONDS = FRAME_SAMPLES / MIC_FORMAT.rate
BYTES_PER_MS = MIC_FORMAT.bytes_per_second // 1000
# The engines answer within seconds; this only catches a hang.
ENGINE_TIMEOUT = 60.0
WAIT_TIMEOUT = 60.0
WAKE_SERVICE_LOST = "Wake service disconnected"
_LOGGER = logging.getLogger(__name__)


def words(text: str) -> list[str]:
    """Lower case words without punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())


async def until(predicate: Callable[[], object], peer: SatellitePeer) -> None:
    """Wait until ``predicate`` holds; fail at once if the satellite breaks down.

    Polled: the conditions span the link, the pipeline and the satellite's
    files.
    """
    async with asyncio.timeout(WAIT_TIMEOUT):
        while not predicate():
            if peer.process.returncode is not None:
                msg = f"wyoming-satellite exited ({peer.process.returncode})"
                raise AssertionError(msg)
            if WAKE_SERVICE_LOST in peer.log():
                msg = "the wake service closed the satellite's connection"
                raise AssertionError(msg)
            await asyncio.sleep(0.05)


async def _pieces(audio: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for offset in range(0, len(audio), size):
        yield audio[offset : offset + size]


async def _after(first: bytes, audio: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``first``, then the rest of ``audio``."""
    if first:
        yield first
    async for pcm in audio:
        yield pcm


@dataclass
class Served:
    """What the pipeline did for one run."""

    request: PipelineRequest
    detection: Detection | None = None
    transcript: str | None = None
    reply: bytes = b""
    reply_format: PcmFormat | None = None
    played: bool = False


class EnginePipeline:
    """A small real pipeline on the engine host, as the Home Assistant glue runs.

    From ``wake``: the microphone goes to the engine host's wake word detection
    until it hears the wake word. Then the command, cut by voice activity, is
    transcribed by the engine host, and the reply it speaks is played.
    """

    def __init__(self, engine: Endpoint, vad_executor: Executor) -> None:
        """Use the engine host at ``engine``; Silero infers in ``vad_executor``."""
        self._engine = engine
        self._vad_executor = vad_executor
        self.runs: list[Served] = []
        self.available: list[Info] = []
        self.unavailable: list[str] = []

    def satellite_available(self, info: Info) -> None:
        """Record the satellite's info."""
        self.available.append(info)

    def satellite_unavailable(self, reason: str) -> None:
        """Record why the satellite is gone."""
        self.unavailable.append(reason)

    async def run_pipeline(self, run: PipelineRun) -> None:
        """Wake word (if asked), command, transcript, spoken reply."""
        served = Served(run.request)
        self.runs.append(served)
        audio: AsyncIterator[bytes] = run.audio
        if run.request.start_stage is PipelineStage.WAKE:
            served.detection, rest = await self._detect(run.audio)
            run.send(served.detection)
            audio = _after(rest, run.audio)
        command = await self._command(run, audio)
        served.transcript = await self._transcribe(command)
        run.send(Transcript(text=served.transcript))
        run.send(Synthesize(text=REPLY))
        served.reply, served.reply_format = await self._synthesize(REPLY)
        await run.play(_pieces(served.reply), served.reply_format)
        served.played = True

    async def _detect(self, audio: AsyncIterator[bytes]) -> tuple[Detection, bytes]:
        """Stream to the wake word engine until it detects; return the audio after.

        The answer comes a little after the phrase, and the audio streamed
        meanwhile, after the detection's timestamp, belongs to the command.
        """
        heard = bytearray()
        async with WyomingConnection(self._engine) as engine:
            await engine.write(Detect(names=[WAKE_WORD]).event())
            await engine.write(AudioStart(*_triple(MIC_FORMAT)).event())

            async def feed() -> None:
                async for pcm in audio:
                    heard.extend(pcm)
                    chunk = AudioChunk(*_triple(MIC_FORMAT), audio=pcm)
                    await engine.write(chunk.event())
                await engine.write(AudioStop().event())

            feeding = asyncio.create_task(feed())
            try:
                async with asyncio.timeout(ENGINE_TIMEOUT):
                    while True:
                        event = await engine.read()
                        if Detection.is_type(event.type):
                            break
                        if NotDetected.is_type(event.type):
                            msg = "the audio ended without the wake word"
                            raise RuntimeError(msg)
            finally:
                feeding.cancel()
                await asyncio.wait([feeding])
        detection = Detection.from_event(event)
        after_ms = detection.timestamp or 0
        return detection, bytes(heard[after_ms * BYTES_PER_MS :])

    async def _command(self, run: PipelineRun, audio: AsyncIterator[bytes]) -> bytes:
        """Read the command: from its voice until a pause; tell the satellite."""
        vad = SileroVad(self._vad_executor)
        frame_bytes = FRAME_SAMPLES * MIC_FORMAT.frame_bytes
        heard = bytearray()
        frames = voice = quiet = 0
        start: int | None = None
        async for pcm in audio:
            heard += pcm
            samples = np.frombuffer(pcm, dtype=np.int16)
            for probability in await vad.process(samples):
                frames += 1
                voice, quiet = (voice + 1, 0) if probability >= 0.5 else (0, quiet + 1)
                if start is None and voice * FRAME_SECONDS >= VOICE_SECONDS:
                    start = (frames - voice) * frame_bytes
                    run.send(VoiceStarted(timestamp=start // BYTES_PER_MS))
                elif start is not None and quiet * FRAME_SECONDS >= SILENCE_SECONDS:
                    run.send(
                        VoiceStopped(timestamp=frames * frame_bytes // BYTES_PER_MS)
                    )
                    preroll = int(PREROLL_SECONDS * MIC_FORMAT.bytes_per_second)
                    return bytes(heard[max(0, start - preroll) : frames * frame_bytes])
        msg = f"the audio ended ({run.audio_end}) before the command did"
        raise RuntimeError(msg)

    async def _transcribe(self, command: bytes) -> str:
        async with (
            WyomingConnection(self._engine) as engine,
            asyncio.timeout(ENGINE_TIMEOUT),
        ):
            await engine.write(Transcribe(language="en").event())
            await engine.write(AudioStart(*_triple(MIC_FORMAT)).event())
            async for pcm in _pieces(command):
                chunk = AudioChunk(*_triple(MIC_FORMAT), audio=pcm)
                await engine.write(chunk.event())
            await engine.write(AudioStop().event())
            return Transcript.from_event(await engine.read_until("transcript")).text

    async def _synthesize(self, text: str) -> tuple[bytes, PcmFormat]:
        async with (
            WyomingConnection(self._engine) as engine,
            asyncio.timeout(ENGINE_TIMEOUT),
        ):
            await engine.write(Synthesize(text=text).event())
            start = AudioStart.from_event(await engine.read_until("audio-start"))
            pcm = bytearray()
            while not AudioStop.is_type((event := await engine.read()).type):
                pcm += AudioChunk.from_event(event).audio
        return bytes(pcm), PcmFormat(start.rate, start.width, start.channels)


def _triple(pcm_format: PcmFormat) -> tuple[int, int, int]:
    return pcm_format.rate, pcm_format.width, pcm_format.channels


@dataclass
class Listener:
    """A handler that only listens: counts the microphone's audio."""

    heard: int = 0
    runs: int = 0
    available: list[Info] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    def satellite_available(self, info: Info) -> None:
        """Record the satellite's info."""
        self.available.append(info)

    def satellite_unavailable(self, reason: str) -> None:
        """Record why the satellite is gone."""
        self.unavailable.append(reason)

    async def run_pipeline(self, run: PipelineRun) -> None:
        """Read the audio until it ends."""
        self.runs += 1
        async for pcm in run.audio:
            self.heard += len(pcm)


@contextlib.asynccontextmanager
async def linked(
    peer: SatellitePeer, handler: SatelliteHandler, settings: LinkSettings = PEER_LINK
) -> AsyncIterator[SatelliteLink]:
    """Connect the hub's link to the satellite; stop it afterwards."""
    link = SatelliteLink(peer.endpoint, handler, logger=_LOGGER, settings=settings)
    link.async_start()
    try:
        yield link
    finally:
        await link.async_stop()


@dataclass
class LoopbackPolicy:
    """A home's policy for a satellite on this machine: loopback admitted."""

    received: int = 0
    refused: list[str] = field(default_factory=list)

    def client_allowed(self, address: str) -> bool:
        """Admit loopback clients only."""
        return ipaddress.ip_address(address).is_loopback

    def client_refused(self, address: str) -> None:
        """Remember who was refused."""
        self.refused.append(address)

    def audio_gate(self, address: str, *, transcribe: bool) -> LoopbackPolicy:
        """One gate for every stream: the room is never muted."""
        return self

    def refusal(self) -> None:
        """Let the audio pass, always."""

    def passed(self, byte_count: int) -> None:
        """Count the room's audio that reached an engine."""
        self.received += byte_count

    def close(self) -> None:
        """Nothing to note when a stream ends."""

    def speech_refusal(self, address: str) -> None:
        """Speak to the room: it is neither quiet nor muted."""

    def voice_print_allowed(self, address: str) -> bool:
        """Identify speakers: the room is in Normal."""
        return True


@dataclass(frozen=True, slots=True)
class WakeService:
    """Where the satellite's wake service listens; the policy, if it has one."""

    uri: str
    policy: LoopbackPolicy | None = None


@pytest.fixture(params=["engine-host", "public-service"])
async def wake_service(
    request: pytest.FixtureRequest, socket_enabled: None, engine_host_endpoint: Endpoint
) -> AsyncIterator[WakeService]:
    """Serve wake words: the engine host, or the public service in front of it."""
    if request.param == "engine-host":
        yield WakeService(engine_host_endpoint.uri)
        return
    policy = LoopbackPolicy()
    service = WyomingService(
        EngineEndpoints.single(engine_host_endpoint),
        policy,
        host="127.0.0.1",
        port=0,
    )
    await service.async_start()
    try:
        yield WakeService(f"tcp://127.0.0.1:{service.port}", policy)
    finally:
        await service.async_stop()


@pytest.fixture
def speech(speak: Speak) -> bytes:
    """Say the wake phrase, pause, say the command: piper's joe, 16 kHz mono."""
    parts = [speak(WAKE_PHRASE), silence(1.0), speak(COMMAND)]
    return np.concatenate(parts).tobytes()


@pytest.fixture
def pipeline(
    engine_host_endpoint: Endpoint,
    executor: Executor,  # noqa: F811 - the engine host tests' fixture, imported
) -> EnginePipeline:
    """Serve runs on the session's engine host."""
    return EnginePipeline(engine_host_endpoint, executor)


@requires_satellite_peer
async def test_always_streaming_round_trip(
    socket_enabled: None, tmp_path: Path, speech: bytes, pipeline: EnginePipeline
) -> None:
    """The hub hears the wake word in the stream, the command, and answers."""
    async with (
        running_satellite(tmp_path, speech) as peer,
        linked(peer, pipeline) as link,
    ):
        # Streaming from run-satellite on: speak once a run listens.
        await until(lambda: pipeline.runs, peer)
        peer.start_speaking()
        await until(lambda: pipeline.runs[0].played, peer)
        reply = pipeline.runs[0].reply
        await until(lambda: len(peer.played()) >= len(reply), peer)
        assert link.info is not None
        assert link.info.satellite is not None
        assert link.info.satellite.name == NAME

    (served,) = pipeline.runs
    # 1.0.0 asks for one run from wake and no restart (it predates
    # restart_on_end): one command per connection.
    assert served.request == PipelineRequest(
        start_stage=PipelineStage.WAKE, end_stage=PipelineStage.TTS
    )
    assert served.detection is not None
    assert served.detection.name == WAKE_WORD
    assert served.transcript is not None
    assert words(served.transcript) == words(COMMAND)
    # Piper speaks at the speaker's rate: the satellite played the reply as sent.
    assert served.reply_format == PcmFormat(SND_RATE, 2, 1)
    assert len(reply) > SND_RATE * 2 // 2  # more than half a second
    assert peer.played() == reply


@requires_satellite_peer
async def test_local_wake_round_trip(
    tmp_path: Path,
    speak: Speak,
    speech: bytes,
    pipeline: EnginePipeline,
    wake_service: WakeService,
) -> None:
    """The satellite hears the wake word (its wake service); the hub the command.

    It streams to the wake service with no audio-start, and sends a new
    detect on the same stream after run-satellite and after each command.
    """
    async with (
        running_satellite(tmp_path, speech, wake_uri=wake_service.uri) as peer,
        linked(peer, pipeline),
    ):
        # It listens for the wake word once it has run-satellite.
        await until(lambda: "Waiting for wake word" in peer.log(), peer)
        peer.start_speaking()
        await until(lambda: pipeline.runs and pipeline.runs[0].played, peer)
        reply = pipeline.runs[0].reply
        await until(lambda: len(peer.played()) >= len(reply), peer)
        # The transcript ended its streaming: it listens for the wake word again.
        await until(lambda: peer.log().count("Waiting for wake word") >= 2, peer)
        # On the same stream: the wake service takes the new detect and the
        # audio after it (a refusal shows in the log at once).
        await asyncio.sleep(1.0)
        assert WAKE_SERVICE_LOST not in peer.log()

    (served,) = pipeline.runs
    # 1.0.0 does not tell the hub which wake word it heard: no detection
    # event, no wake word name in run-pipeline.
    assert served.request == PipelineRequest(
        start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS
    )
    assert served.detection is None
    assert served.transcript is not None
    assert words(served.transcript) == words(COMMAND)
    assert served.reply_format == PcmFormat(SND_RATE, 2, 1)
    assert peer.played() == reply
    if (policy := wake_service.policy) is not None:
        # The service heard the room's microphone under its policy.
        assert policy.refused == []
        assert policy.received > len(speak(WAKE_PHRASE).tobytes())


@requires_satellite_peer
async def test_a_streaming_satellite_without_ping_stays_connected(
    socket_enabled: None, tmp_path: Path, speech: bytes
) -> None:
    """Its audio shows it is there: the link keeps it and calls it available."""
    listener = Listener()
    settings = LinkSettings(ping_interval=0.1, pong_timeout=0.5)
    async with (
        running_satellite(tmp_path, speech) as peer,
        linked(peer, listener, settings),
    ):
        # Two seconds of streaming, or the link giving up on it.
        await until(lambda: listener.unavailable or listener.heard >= 2 * 32000, peer)

    assert listener.unavailable == []
    assert listener.runs == 1
    assert len(listener.available) == 1


@requires_satellite_peer
async def test_muted_room_drops_what_the_satellite_still_sends(
    socket_enabled: None, tmp_path: Path, speech: bytes
) -> None:
    """1.0.0 ignores pause-satellite and streams on; the link reads none of it."""
    listener = Listener()
    async with (
        running_satellite(tmp_path, speech) as peer,
        linked(peer, listener) as link,
    ):
        await until(lambda: listener.heard > 0, peer)

        await link.async_pause()

        heard = listener.heard
        refused = link.refused_chunks
        peer.start_speaking()
        # A second of audio (16 chunks) arrives after the pause, dropped unread.
        await until(lambda: link.refused_chunks >= refused + 16, peer)
        assert listener.heard == heard
        assert listener.runs == 1
