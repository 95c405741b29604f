"""The public Wyoming service before a real engine host, driven by a wyoming client."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
import json
import re

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeStart,
)
from wyoming.wake import Detect, Detection

from custom_components.private_voice.coordinator import EngineEndpoints
from custom_components.private_voice.protocol.client import Endpoint, async_describe
from custom_components.private_voice.protocol.service import (
    ServiceErrorCode,
    ServiceLimits,
    WyomingService,
)

from ..engine_host.conftest import Speak
from ..wyoming_client import (
    assert_a_change_of_format_is_refused,
    assert_implicit_wake_stream_reports_every_detection,
    assert_streaming_synthesis_speaks_early,
    read_until,
)

COMMAND = "Turn on the kitchen lights."
RATE = 16000
CHUNK_BYTES = 2048  # 1024 samples, as ESP32 satellites send them


def normalise(text: str) -> str:
    """Lower case words without punctuation."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def silence(seconds: float) -> bytes:
    """Digital silence, 16 kHz 16-bit mono."""
    return bytes(int(seconds * RATE) * 2)


@dataclass
class RoomPolicy:
    """The policy the Home Assistant glue would give: one room, switchable."""

    refuse: set[str] = field(default_factory=set)
    muted: bool = False
    quiet: bool = False
    # Guest (or Muted): no voice prints.
    guest: bool = False
    # Bumped by a test to change the room's mode (other than to Muted).
    mode_changes: int = 0
    refused: list[str] = field(default_factory=list)
    received: int = 0
    requests: int = 0
    open_gates: int = 0
    # Set once ``received`` reaches ``wait_for`` bytes.
    wait_for: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    def client_allowed(self, address: str) -> bool:
        """Let in all but the refused addresses."""
        return address not in self.refuse

    def client_refused(self, address: str) -> None:
        """Remember who was refused."""
        self.refused.append(address)

    def audio_gate(self, address: str, *, transcribe: bool) -> RoomGate:
        """Open a gate on the room as it is now; count a voice request."""
        self.requests += transcribe
        self.open_gates += 1
        return RoomGate(self, self.mode_changes)

    def voice_print_allowed(self, address: str) -> bool:
        """Identify speakers unless the room is a guest's (or muted)."""
        return not (self.guest or self.muted)

    def speech_refusal(self, address: str) -> ServiceErrorCode | None:
        """Speak to the room unless it is quiet (or muted)."""
        if self.muted:
            return ServiceErrorCode.MUTED
        return ServiceErrorCode.QUIET if self.quiet else None


@dataclass
class RoomGate:
    """One stream's gate: refuses once the room is muted or changes mode."""

    policy: RoomPolicy
    mode_changes: int
    closed: bool = False

    def refusal(self) -> ServiceErrorCode | None:
        """Why the stream's audio may not pass, if it may not."""
        if self.policy.muted:
            return ServiceErrorCode.MUTED
        if self.policy.mode_changes != self.mode_changes:
            return ServiceErrorCode.MODE_CHANGED
        return None

    def passed(self, byte_count: int) -> None:
        """Count the room's audio; tell a waiting test when enough arrived."""
        self.policy.received += byte_count
        if (
            self.policy.wait_for is not None
            and self.policy.received >= self.policy.wait_for
        ):
            self.policy.reached.set()

    def close(self) -> None:
        """Note that the stream ended (once, however often it is told)."""
        if not self.closed:
            self.closed = True
            self.policy.open_gates -= 1


@pytest.fixture
def policy() -> RoomPolicy:
    """Allow everything, until a test says otherwise."""
    return RoomPolicy()


@pytest.fixture
def limits() -> ServiceLimits:
    """Use the default limits; tests override them where they test one."""
    return ServiceLimits()


@pytest.fixture
def engines(engine_host_endpoint: Endpoint) -> EngineEndpoints:
    """Every engine from the session's real engine host."""
    return EngineEndpoints.single(engine_host_endpoint)


@pytest.fixture
async def service(
    socket_enabled: None,
    engines: EngineEndpoints,
    policy: RoomPolicy,
    limits: ServiceLimits,
) -> AsyncIterator[WyomingService]:
    """Run the service on a free loopback port."""
    wyoming = WyomingService(engines, policy, host="127.0.0.1", port=0, limits=limits)
    await wyoming.async_start()
    yield wyoming
    await wyoming.async_stop()


@pytest.fixture(scope="module")
def command(speak: Speak) -> bytes:
    """Say the command with piper, then the silence a satellite sends after it."""
    return speak(COMMAND).tobytes() + silence(0.5)


def chunks(audio: bytes) -> Iterable[Event]:
    """Audio as a satellite streams it."""
    for offset in range(0, len(audio), CHUNK_BYTES):
        yield AudioChunk(
            rate=RATE, width=2, channels=1, audio=audio[offset : offset + CHUNK_BYTES]
        ).event()


async def read_error_and_close(client: AsyncTcpClient, *types: str) -> str | None:
    """Read until an error, return its code; then the service must close."""
    events = await read_until(client, *types)
    code = Error.from_event(events[-1]).code
    async with asyncio.timeout(10):
        assert await client.read_event() is None
    return code


async def stream(client: AsyncTcpClient, request: Event, audio: bytes) -> None:
    """Send a request, then its audio from audio-start to audio-stop."""
    await client.write_event(request)
    await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
    for chunk in chunks(audio):
        await client.write_event(chunk)
    await client.write_event(AudioStop().event())


async def transcribe(port: int, audio: bytes) -> list[Event]:
    """Transcribe audio as Home Assistant's wyoming integration does."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await stream(client, Transcribe(language="en").event(), audio)
        return await read_until(client, "transcript")


# describe / ping --------------------------------------------------------------


async def test_describe_relays_the_engines_info(
    service: WyomingService, engine_host_endpoint: Endpoint
) -> None:
    """Clients see the engines' own models, voices, wake words; ping is answered."""
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await read_until(client, "info"))[-1])
        await client.write_event(Ping(text="hello").event())
        pong = Pong.from_event((await read_until(client, "pong"))[-1])
    engine = await async_describe(engine_host_endpoint)
    assert info.asr == engine.asr
    assert info.tts == engine.tts
    assert info.wake == engine.wake
    assert info.asr[0].supports_transcript_streaming
    assert info.tts[0].supports_synthesize_streaming
    assert pong.text == "hello"


# speech-to-text ---------------------------------------------------------------


async def test_transcribes_through_the_service(
    service: WyomingService, policy: RoomPolicy, command: bytes
) -> None:
    """Audio is passed on chunk by chunk; the transcript is relayed as it streams."""
    events = await transcribe(service.port, command)
    types = [event.type for event in events]
    assert types[0] == "transcript-start"
    assert types[-2:] == ["transcript-stop", "transcript"]
    assert normalise(Transcript.from_event(events[-1]).text) == normalise(COMMAND)
    # Every byte of the utterance reached the engine, and was counted for the room.
    assert policy.received == len(command)
    assert policy.requests == 1
    assert policy.open_gates == 0


@pytest.mark.parametrize("guest", [False, True], ids=["normal", "guest"])
async def test_voice_print_only_where_the_room_allows(
    service: WyomingService,
    policy: RoomPolicy,
    command: bytes,
    guest: bool,  # noqa: FBT001 - a parameter of the test
) -> None:
    """A client asks for the speaker's print: given in Normal, not in Guest.

    In Guest the request reaches the engine without the ask, so no print is
    computed at all; the transcript comes as always.
    """
    policy.guest = guest
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        request = Transcribe(language="en", context={"voice_print": True, "id": 7})
        await stream(client, request.event(), command)
        transcript = Transcript.from_event((await read_until(client, "transcript"))[-1])
    assert normalise(transcript.text) == normalise(COMMAND)
    if guest:
        assert transcript.context is None
    else:
        assert transcript.context is not None
        assert len(transcript.context["voice_print"]) == 256


def _mute(policy: RoomPolicy) -> None:
    policy.muted = True


def _change_mode(policy: RoomPolicy) -> None:
    policy.mode_changes += 1


@pytest.mark.parametrize(
    ("change", "code"),
    [(_mute, "muted"), (_change_mode, "mode-changed")],
    ids=["muted", "mode-changed"],
)
async def test_a_change_cuts_a_stream_in_flight(
    service: WyomingService,
    policy: RoomPolicy,
    command: bytes,
    change: Callable[[RoomPolicy], None],
    code: str,
) -> None:
    """Audio after the room is muted, or changes mode, never reaches the engine.

    The client hears why; the stream's gate is closed.
    """
    before = 10 * CHUNK_BYTES
    policy.wait_for = before
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for chunk in chunks(command[:before]):
            await client.write_event(chunk)
        async with asyncio.timeout(30):
            await policy.reached.wait()
        change(policy)
        for chunk in chunks(command[before:]):
            await client.write_event(chunk)
        await client.write_event(AudioStop().event())
        assert await read_error_and_close(client) == code
    assert policy.received == before
    assert policy.open_gates == 0


async def test_the_next_stream_follows_the_new_mode(
    service: WyomingService, policy: RoomPolicy, command: bytes
) -> None:
    """After a mode change (not to Muted), a new stream is heard."""
    policy.mode_changes += 1
    assert normalise(
        Transcript.from_event((await transcribe(service.port, command))[-1]).text
    ) == normalise(COMMAND)


async def test_muted_room_is_refused_at_audio_start(
    service: WyomingService, policy: RoomPolicy
) -> None:
    """A muted room's stream is refused before anything reaches the engine."""
    policy.muted = True
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        assert await read_error_and_close(client) == "muted"
    assert policy.received == 0


# wake word --------------------------------------------------------------------


async def test_detection_is_relayed_while_audio_flows(
    service: WyomingService, speak: Speak
) -> None:
    """As Home Assistant listens: the detection comes while audio still flows."""
    audio = b"".join((silence(0.5), speak("Okay Nabu!").tobytes(), silence(1.0)))
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Detect(names=["okay_nabu"]).event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for chunk in chunks(audio):
            await client.write_event(chunk)
        events = await read_until(client, "detection", "not-detected")
        assert Detection.from_event(events[-1]).name == "okay_nabu"
        # After a detection no not-detected follows the end: the request is done.
        await client.write_event(AudioStop().event())
        await client.write_event(Ping().event())
        assert [e.type for e in await read_until(client, "pong")] == ["pong"]


async def test_detect_stream_ends_with_audio_stop(
    service: WyomingService, speak: Speak
) -> None:
    """Without the wake word: not-detected; the connection serves on."""
    audio = speak("What time is it?").tobytes() + silence(0.5)
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await stream(client, Detect(names=["okay_nabu"]).event(), audio)
        events = await read_until(client, "not-detected", "detection")
        assert [event.type for event in events] == ["not-detected"]
        await client.write_event(Ping().event())
        assert (await read_until(client, "pong"))[-1].type == "pong"


async def test_implicit_wake_stream_relays_every_detection(
    service: WyomingService, policy: RoomPolicy, speak: Speak
) -> None:
    """wyoming-satellite's wake stream: no audio-start, a detect per command.

    Every detection is relayed while the stream goes on, and every chunk was
    allowed by the policy and counted for the room.
    """
    phrase = b"".join((silence(0.5), speak("Okay Nabu!").tobytes(), silence(1.0)))
    await assert_implicit_wake_stream_reports_every_detection(service.port, phrase)
    assert policy.received == 3 * len(phrase)


async def test_muting_cuts_an_implicit_wake_stream(
    service: WyomingService, policy: RoomPolicy
) -> None:
    """A wake stream with no audio-start is checked chunk by chunk all the same."""
    before = 10 * CHUNK_BYTES
    policy.wait_for = before
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Detect(names=["okay_nabu"]).event())
        for chunk in chunks(silence(1.0)[:before]):
            await client.write_event(chunk)
        async with asyncio.timeout(30):
            await policy.reached.wait()
        policy.muted = True
        for chunk in chunks(silence(1.0)):
            await client.write_event(chunk)
        assert await read_error_and_close(client) == "muted"
    assert policy.received == before


async def test_a_wake_stream_does_not_change_format(
    service: WyomingService, policy: RoomPolicy
) -> None:
    """A chunk in another format mid-stream is refused before the engine has it."""
    await assert_a_change_of_format_is_refused(service.port)
    assert policy.received == 8 * CHUNK_BYTES


# text-to-speech -----------------------------------------------------------------


async def test_synthesize_relays_audio(service: WyomingService) -> None:
    """Synthesize → the engine's audio-start, chunks and audio-stop."""
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Synthesize(text="The lights are on.").event())
        events = await read_until(client, "audio-stop")
    assert events[0].type == "audio-start"
    pcm = b"".join(AudioChunk.from_event(e).audio for e in events[1:-1])
    samples = np.frombuffer(pcm, dtype=np.int16)
    assert len(samples) > AudioStart.from_event(events[0]).rate // 2
    assert np.abs(samples).max() > 1000


async def test_streaming_synthesis_speaks_before_the_text_ends(
    service: WyomingService,
) -> None:
    """The first sentence is heard through the service before the rest is sent."""
    await assert_streaming_synthesis_speaks_early(service.port)


@pytest.mark.parametrize(("room", "code"), [("quiet", "quiet"), ("muted", "muted")])
async def test_quiet_or_muted_room_is_not_spoken_to(
    service: WyomingService, policy: RoomPolicy, room: str, code: str
) -> None:
    """A room where speech is not allowed gets an error, saying why, not audio."""
    setattr(policy, room, True)
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(SynthesizeStart().event())
        assert await read_error_and_close(client) == code


# admission and limits -------------------------------------------------------------


async def test_refused_address_is_told_and_reported(
    service: WyomingService, policy: RoomPolicy
) -> None:
    """A client the policy refuses gets an error and a close; the glue hears of it."""
    policy.refuse.add("127.0.0.1")
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Describe().event())
        assert await read_error_and_close(client) == "not-allowed"
    assert policy.refused == ["127.0.0.1"]


def frame(event_type: str, **data: object) -> bytes:
    """One Wyoming header line with inline data, as an ESP32 sends it."""
    return json.dumps({"type": event_type, "data": data}).encode() + b"\n"


async def raw(port: int, data: bytes) -> list[dict[str, object]]:
    """Send raw bytes; return the headers of what comes back until close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    headers: list[dict[str, object]] = []
    async with asyncio.timeout(30):
        while line := await reader.readline():
            header = json.loads(line)
            if length := header.get("data_length"):
                header["data"] = json.loads(await reader.readexactly(length))
            headers.append(header)
    writer.close()
    await writer.wait_closed()
    return headers


BAD_INPUT = [
    (b"garbage that is not json\n", "bad-frame"),
    (b'{"type": "audio-chunk", "payload_length": 99999999}\n', "frame-too-large"),
    (b"x" * 70000, "frame-too-large"),
    (frame("audio-start", rate=16000), "bad-frame"),
    (frame("audio-start", rate=96000, width=2, channels=1), "bad-audio-format"),
    (frame("audio-start", rate=16000, width=4, channels=1), "bad-audio-format"),
    (frame("audio-chunk", rate=16000, width=2, channels=1), "no-audio-start"),
    # A transcription needs an audio-start; only a wake stream opens without.
    (
        frame("transcribe") + frame("audio-chunk", rate=16000, width=2, channels=1),
        "no-audio-start",
    ),
    (frame("detect") + frame("audio-stop"), "no-audio-start"),
    (
        frame("detect") + frame("audio-chunk", rate=96000, width=2, channels=1),
        "bad-audio-format",
    ),
    (
        frame("audio-start", rate=16000, width=2, channels=1)
        + frame("audio-chunk", rate=16000, width=2, channels=2),
        "bad-audio-format",
    ),
    (frame("synthesize-chunk", text="hi"), "unexpected-event"),
    (
        frame("synthesize-start")
        + frame("audio-start", rate=16000, width=2, channels=1),
        "unexpected-event",
    ),
]


async def test_bad_clients_do_not_disturb_a_good_one(
    service: WyomingService, command: bytes
) -> None:
    """Each bad client gets its error code and a close while another transcribes."""
    good = asyncio.create_task(transcribe(service.port, command))
    replies = await asyncio.gather(*(raw(service.port, data) for data, _ in BAD_INPUT))
    for (_, code), reply in zip(BAD_INPUT, replies, strict=True):
        assert [header["type"] for header in reply] == ["error"]
        assert reply[0]["data"]["code"] == code  # type: ignore[index]
    events = await good
    assert normalise(Transcript.from_event(events[-1]).text) == normalise(COMMAND)


@pytest.mark.parametrize("limits", [ServiceLimits(idle_timeout=0.2)])
async def test_idle_client_times_out(service: WyomingService) -> None:
    """A client that sends nothing is told so and closed."""
    replies = await raw(service.port, b"")
    assert replies[0]["data"]["code"] == "timeout"  # type: ignore[index]


@pytest.mark.parametrize("limits", [ServiceLimits(request_timeout=0.3)])
async def test_request_has_a_deadline(service: WyomingService) -> None:
    """An utterance that never ends is cut off at the request deadline."""
    start = frame("transcribe", language="en") + frame(
        "audio-start", rate=16000, width=2, channels=1
    )
    replies = await raw(service.port, start)
    assert replies[-1]["type"] == "error"
    assert replies[-1]["data"]["code"] == "timeout"  # type: ignore[index]


@pytest.mark.parametrize("limits", [ServiceLimits(max_connections=1)])
async def test_connection_cap(service: WyomingService) -> None:
    """Over the cap, a client is refused as busy; the others go on."""
    async with AsyncTcpClient("127.0.0.1", service.port) as first:
        await first.write_event(Ping().event())
        await read_until(first, "pong")
        replies = await raw(service.port, b"")
        assert replies[0]["data"]["code"] == "busy"  # type: ignore[index]
        await first.write_event(Ping().event())
        assert (await read_until(first, "pong"))[-1].type == "pong"


@pytest.fixture
def engines_down(free_port: int) -> EngineEndpoints:
    """Engines where nothing listens."""
    return EngineEndpoints.single(Endpoint("127.0.0.1", free_port))


@pytest.mark.parametrize(
    "request_event",
    [
        Describe().event(),
        Synthesize(text="Hello.").event(),
        AudioStart(rate=RATE, width=2, channels=1).event(),
    ],
    ids=["describe", "synthesize", "transcribe"],
)
async def test_engine_down_is_an_error(
    socket_enabled: None,
    engines_down: EngineEndpoints,
    policy: RoomPolicy,
    request_event: Event,
) -> None:
    """A request for an engine that does not answer gets a code, not a hang."""
    wyoming = WyomingService(engines_down, policy, host="127.0.0.1", port=0)
    await wyoming.async_start()
    try:
        async with AsyncTcpClient("127.0.0.1", wyoming.port) as client:
            await client.write_event(request_event)
            assert await read_error_and_close(client) == "engine-unavailable"
    finally:
        await wyoming.async_stop()


async def test_stop_ends_a_stream_in_flight(
    service: WyomingService, command: bytes
) -> None:
    """Stopping closes every connection, mid-stream too, and leaves no task behind."""
    async with AsyncTcpClient("127.0.0.1", service.port) as client:
        await client.write_event(Detect(names=["okay_nabu"]).event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for chunk in chunks(command[: 10 * CHUNK_BYTES]):
            await client.write_event(chunk)
        await client.write_event(Ping().event())
        await read_until(client, "pong")
        await service.async_stop()
        async with asyncio.timeout(10):
            assert await client.read_event() is None
