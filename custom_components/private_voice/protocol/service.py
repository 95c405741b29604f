"""The public Wyoming service: ``asr``, ``tts`` and ``wake`` for any Wyoming client.

Satellites, Home Assistant's own ``wyoming`` integration and any other client
connect here. Each request is passed on, event by event, to the engine that
serves it, and the engine's answer is relayed back as it comes, while the
request is still arriving. The room policy is enforced on that path itself
(DESIGN §3): a client is admitted or refused when it connects; microphone audio
is checked chunk by chunk, so a room switched to Muted cuts a stream already in
flight; speech is refused to a Quiet room. Every refusal is an ``error`` event
with a code, after which that connection, and only that one, is closed.

A wake word stream may open with its first chunk, with no ``audio-start``, and
never end, as wyoming-satellite streams to its wake service; each ``detect``
inside it starts detection afresh, and every detection is relayed as it comes.
"""

import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
import ipaddress
import logging
from typing import Final, Protocol, Self, cast, override

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioFormat, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, Eventable, async_write_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop
from wyoming.wake import Detect

from ..engine_host.engines import VOICE_PRINT, ErrorCode
from ..engine_host.formats import AudioFormatError, PcmFormat
from ..engine_host.wire import FrameError, FrameLimits, read_frame
from .client import Endpoint, PeerError, WyomingConnection, async_describe

_LOGGER = logging.getLogger(__name__)

# How much a refused client's leftover data is read (and discarded) at a time.
_DISCARD_BYTES: Final = 64 * 1024


class ServiceErrorCode(StrEnum):
    """Codes of ``error`` events the service adds to the engines' ``ErrorCode``."""

    # The client's address may not use the service.
    NOT_ALLOWED = "not-allowed"
    # The client's room is muted: its audio is not heard.
    MUTED = "muted"
    # The client's room changed its privacy mode while the stream was flowing.
    MODE_CHANGED = "mode-changed"
    # The client's room takes no spoken replies.
    QUIET = "quiet"
    # The engine for the request does not answer, or lost the connection.
    ENGINE_UNAVAILABLE = "engine-unavailable"


class AudioGate(Protocol):
    """One stream of a room's audio, asked before each chunk passes on."""

    def refusal(self) -> ServiceErrorCode | None:
        """Return None while the audio may pass; else why not.

        The room is muted, or its mode changed since the stream began.
        """

    def passed(self, byte_count: int) -> None:
        """Count audio that was passed to an engine."""

    def close(self) -> None:
        """Note that the stream ended."""


class ServicePolicy(Protocol):
    """The privacy decisions the service enforces; Home Assistant's glue makes them.

    ``address`` is the client's IP address as text (an IPv4-mapped IPv6 address
    as plain IPv4); the glue maps it to a room. Every method is called on the
    event loop and must return at once: a gate is asked for every chunk of
    audio, 30 and more times a second per client.
    """

    def client_allowed(self, address: str) -> bool:
        """Whether this client may use the service at all (asked when it connects)."""

    def client_refused(self, address: str) -> None:
        """Note a client that is not allowed: it connected, is told so and closed."""

    def audio_gate(self, address: str, *, transcribe: bool) -> AudioGate:
        """Open the gate of one audio stream from this client's room.

        ``transcribe``: the stream is a voice request (not wake word detection).
        """

    def voice_print_allowed(self, address: str) -> bool:
        """Whether the engines may compute the speaker's voice print for this client.

        Asked when a ``transcribe`` asks for one (``context.voice_print``); if
        not, the request goes on without it.
        """

    def speech_refusal(self, address: str) -> ServiceErrorCode | None:
        """Return None if speech may be synthesized for this client's room now.

        Else why not: ``quiet`` (a chime instead is for the glue to play) or
        ``muted``; ``synthesize`` and ``synthesize-start`` are refused so.
        """


class Engines(Protocol):
    """Where each engine is reached; None: not offered.

    The coordinator's ``EngineEndpoints`` fits as it is.
    """

    @property
    def stt(self) -> Endpoint | None:
        """The speech-to-text engine."""

    @property
    def tts(self) -> Endpoint | None:
        """The text-to-speech engine."""

    @property
    def wake(self) -> Endpoint | None:
        """The wake word engine."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceLimits:
    """Ceilings that keep one client from hurting the others (DESIGN §6)."""

    frame: FrameLimits = field(default_factory=FrameLimits)
    max_connections: int = 64
    # A connection that sends nothing for this long is closed (wake word
    # streams send audio all the time, so only a stalled client reaches it).
    idle_timeout: float = 60.0
    # A transcription or a synthesis, from its first event to the end of its
    # answer. A wake word stream listens for as long as its client streams, so
    # its bound starts at its audio-stop.
    request_timeout: float = 120.0
    # Writing one event to a peer that does not read.
    write_timeout: float = 30.0
    # After an error, how long the client may take to read it and close.
    linger_timeout: float = 2.0
    # How long what the engines offer is taken as still true.
    info_ttl: float = 5.0


class _RefusalError(Exception):
    """A request this connection cannot go on from: answered with ``error``."""

    def __init__(self, code: str | None, message: str) -> None:
        """Carry the code and text of the ``error`` event."""
        super().__init__(message)
        self.code = code


class _PeerLeftError(Exception):
    """The client closed the connection (possibly mid-request)."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """Which events from an engine complete its answer to one request."""

    # Always the end.
    last: str
    # The end once the request is complete, or at once if it came before:
    # after a detection, no ``not-detected`` follows the stream's end.
    result: str | None = None


_TRANSCRIPT: Final = _Answer("transcript")
_SPEECH: Final = _Answer("audio-stop")
_SPEECH_STREAM: Final = _Answer("synthesize-stopped")
_WAKE: Final = _Answer("not-detected", result="detection")


class WyomingService:
    """A TCP Wyoming server in front of the engines, enforcing the room policy."""

    def __init__(
        self,
        engines: Engines,
        policy: ServicePolicy,
        *,
        host: str | None,
        port: int,
        limits: ServiceLimits | None = None,
    ) -> None:
        """Serve ``engines`` on host:port (host None: every interface)."""
        self.engines = engines
        self.policy = policy
        self.limits = limits or ServiceLimits()
        self.engine_info = _EngineInfo(engines, self.limits.info_ttl)
        self._host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._stopping = False
        # The TCP port listened on, known once started (useful with port 0).
        self.port = 0

    async def async_start(self) -> None:
        """Listen; OSError if the address cannot be bound."""
        self._stopping = False
        self._server = await asyncio.start_server(
            self._accept,
            self._host,
            self._requested_port,
            limit=self.limits.frame.header_bytes,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def async_stop(self) -> None:
        """Stop listening and end every connection; no task is left behind."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # asyncio.start_server runs every client callback in a task of its own.
        task = cast(asyncio.Task[None], asyncio.current_task())
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            writer.close()
            self._connections.discard(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # A client accepted while stopping, or already gone, is just closed.
        if self._stopping or (address := _client_address(writer)) is None:
            return
        connection = _Connection(self, reader, writer, address)
        if not self.policy.client_allowed(address):
            self.policy.client_refused(address)
            await connection.refuse(
                ServiceErrorCode.NOT_ALLOWED, f"{address} may not use this service"
            )
        elif len(self._connections) > self.limits.max_connections:
            await connection.refuse(
                ErrorCode.BUSY, "too many connections; try again later"
            )
        else:
            await connection.run()


def _client_address(writer: asyncio.StreamWriter) -> str | None:
    """Return the client's IP address as the policy knows it; None if gone."""
    peer = writer.get_extra_info("peername")
    if not peer:
        return None
    address = ipaddress.ip_address(peer[0])
    # Bound to "::", IPv4 clients arrive as ::ffff:a.b.c.d; rooms know a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


class _EngineInfo:
    """What the engines offer, from their own ``describe``, kept for ``ttl`` s."""

    def __init__(self, engines: Engines, ttl: float) -> None:
        self._engines = engines
        self._ttl = ttl
        # One describe at a time: clients that ask together share its answer.
        self._lock = asyncio.Lock()
        self._event: Event | None = None
        self._expires = 0.0

    async def event(self) -> Event:
        """Return the ``info`` event; refused if an engine does not answer."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._event is None or loop.time() >= self._expires:
                self._event = (await self._describe()).event()
                self._expires = loop.time() + self._ttl
            return self._event

    async def _describe(self) -> Info:
        engines = self._engines
        endpoints = list(
            dict.fromkeys(e for e in (engines.stt, engines.tts, engines.wake) if e)
        )
        try:
            async with asyncio.TaskGroup() as group:
                asked = {e: group.create_task(async_describe(e)) for e in endpoints}
        except* PeerError as errors:
            error = errors.exceptions[0]
            raise _RefusalError(
                ServiceErrorCode.ENGINE_UNAVAILABLE, str(error)
            ) from error
        infos = {endpoint: task.result() for endpoint, task in asked.items()}
        # Each engine's own programs, as it describes them: clients see the
        # real models, voices and wake words, and what can stream.
        return Info(
            asr=infos[engines.stt].asr if engines.stt else [],
            tts=infos[engines.tts].tts if engines.tts else [],
            wake=infos[engines.wake].wake if engines.wake else [],
        )


class _EngineConnection(WyomingConnection):
    """A connection to an engine whose ``error`` events keep their code."""

    def __init__(self, endpoint: Endpoint, limits: ServiceLimits) -> None:
        super().__init__(endpoint, limits.frame)
        self._write_timeout = limits.write_timeout

    @override
    async def __aenter__(self) -> Self:
        try:
            return await super().__aenter__()
        except PeerError as err:
            raise _RefusalError(ServiceErrorCode.ENGINE_UNAVAILABLE, str(err)) from err

    async def send(self, event: Event) -> None:
        """Pass one event on; refused if the engine is gone or stops reading."""
        try:
            async with asyncio.timeout(self._write_timeout):
                await self.write(event)
        except (PeerError, TimeoutError) as err:
            text = str(err) or f"{self.endpoint.uri} stopped reading"
            raise _RefusalError(ServiceErrorCode.ENGINE_UNAVAILABLE, text) from err

    async def receive(self) -> Event:
        """Return the engine's next event; its ``error`` is refused with its code."""
        try:
            return await self.read()
        except PeerError as err:
            if (refusal := err.refusal) is not None:
                raise _RefusalError(refusal.code, refusal.text) from err
            raise _RefusalError(ServiceErrorCode.ENGINE_UNAVAILABLE, str(err)) from err


class _Relay:
    """Passes an engine's answer to the client while the request still arrives."""

    def __init__(
        self,
        connection: _Connection,
        engine: _EngineConnection,
        answer: _Answer,
        group: asyncio.TaskGroup,
    ) -> None:
        """Start relaying, in a task of ``group``."""
        self._connection = connection
        self._engine = engine
        self._answer = answer
        self._request_complete = False
        self._has_result = False
        self._task = group.create_task(self._run())

    async def _run(self) -> None:
        answer = self._answer
        while True:
            event = await self._engine.receive()
            await self._connection.send(event)
            if event.type == answer.last:
                return
            if event.type == answer.result:
                if self._request_complete:
                    return
                self._has_result = True

    def request_complete(self) -> None:
        """Mark the client's request as fully arrived (and passed on)."""
        self._request_complete = True
        if self._has_result:
            self._task.cancel()


def _parse[T: Eventable](kind: type[T], event: Event) -> T:
    """Read an event's fields; malformed data is the client's error, not ours."""
    try:
        return cast(T, kind.from_event(event))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"malformed {event.type} event: {err!r}"
        raise _RefusalError(ErrorCode.BAD_FRAME, msg) from err


def _stream_format(audio: AudioFormat) -> PcmFormat:
    """Return a stream's format; refused unless the engines take it (DESIGN §6).

    They take 8-48 kHz, 16-bit, mono or stereo, and convert it themselves.
    """
    source = PcmFormat.of(audio)
    try:
        source.validate()
    except AudioFormatError as err:
        raise _RefusalError(ErrorCode.BAD_AUDIO_FORMAT, str(err)) from err
    return source


class _Connection:
    """One admitted client: reads its events in order and passes them on."""

    def __init__(
        self,
        service: WyomingService,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
    ) -> None:
        self._service = service
        self._engines = service.engines
        self._policy = service.policy
        self._limits = service.limits
        self._reader = reader
        self._writer = writer
        self._address = address
        # ``transcribe`` or ``detect``: passed on with the audio that follows.
        self._request: Event | None = None

    async def run(self) -> None:
        """Serve events until the client leaves or a request is refused."""
        try:
            while (event := await self._next()) is not None:
                await self._dispatch(event)
        except _RefusalError as err:
            await self.refuse(err.code, str(err))
        except _PeerLeftError, ConnectionError:
            _LOGGER.debug("%s left", self._address)

    async def refuse(self, code: str | None, text: str) -> None:
        """Send an ``error`` event and end the connection."""
        _LOGGER.debug("Refusing %s: %s (%s)", self._address, text, code)
        with contextlib.suppress(_RefusalError, ConnectionError, TimeoutError):
            await self.send(Error(text=text, code=code).event())
            # Closing with the client's data unread would reset the connection,
            # and the reset can destroy the error before it is read. So what the
            # client still sends is read and discarded, never parsed or passed
            # on, until it closes (or briefly, if it does not).
            if self._writer.can_write_eof():
                self._writer.write_eof()
            async with asyncio.timeout(self._limits.linger_timeout):
                while await self._reader.read(_DISCARD_BYTES):
                    pass
        self._writer.close()

    async def send(self, event: Event) -> None:
        """Write one event, giving up on a client that stops reading."""
        try:
            async with asyncio.timeout(self._limits.write_timeout):
                await async_write_event(event, self._writer)
        except TimeoutError as err:
            raise _RefusalError(
                ErrorCode.TIMEOUT, "the client stopped reading"
            ) from err

    async def _next(self) -> Event | None:
        try:
            async with asyncio.timeout(self._limits.idle_timeout):
                return await read_frame(self._reader, self._limits.frame)
        except TimeoutError as err:
            msg = f"no event for {self._limits.idle_timeout:g} s"
            raise _RefusalError(ErrorCode.TIMEOUT, msg) from err
        except FrameError as err:
            raise _RefusalError(err.code, str(err)) from err

    async def _next_in_stream(self) -> Event:
        """Return the next event of an open stream; describe and ping are answered."""
        while (event := await self._next()) is not None:
            if not await self._answer_here(event):
                return event
        raise _PeerLeftError

    async def _answer_here(self, event: Event) -> bool:
        """Answer ``describe`` and ``ping``, wherever they come; False for others."""
        if Describe.is_type(event.type):
            await self.send(await self._service.engine_info.event())
        elif Ping.is_type(event.type):
            await self.send(Pong(text=_parse(Ping, event).text).event())
        else:
            return False
        return True

    def _transcribe(self, event: Event) -> Event:
        """Pass a ``transcribe`` on; without its voice print request if refused."""
        request = _parse(Transcribe, event)
        context = request.context or {}
        if VOICE_PRINT not in context or self._policy.voice_print_allowed(
            self._address
        ):
            return event
        request.context = {
            key: value for key, value in context.items() if key != VOICE_PRINT
        } or None
        return request.event()

    async def _dispatch(self, event: Event) -> None:
        if await self._answer_here(event):
            return
        if Transcribe.is_type(event.type):
            self._request = self._transcribe(event)
        elif Detect.is_type(event.type):
            self._request = event
        elif AudioStart.is_type(event.type) or self._opens_wake_stream(event):
            await self._listen(event)
        elif Synthesize.is_type(event.type):
            await self._speak(event)
        elif SynthesizeStart.is_type(event.type):
            await self._speak_streamed(event)
        elif AudioChunk.is_type(event.type) or AudioStop.is_type(event.type):
            msg = f"{event.type} before audio-start"
            raise _RefusalError(ErrorCode.NO_AUDIO_START, msg)
        elif SynthesizeChunk.is_type(event.type) or SynthesizeStop.is_type(event.type):
            msg = f"{event.type} without synthesize-start"
            raise _RefusalError(ErrorCode.UNEXPECTED_EVENT, msg)
        else:
            _LOGGER.debug("Ignoring %s from %s", event.type, self._address)

    def _opens_wake_stream(self, event: Event) -> bool:
        """Whether ``event`` is a chunk right after ``detect``, with no audio-start.

        wyoming-satellite streams to its wake service so, and openWakeWord
        takes it. A transcription still needs an audio-start.
        """
        request = self._request
        return (
            AudioChunk.is_type(event.type)
            and request is not None
            and Detect.is_type(request.type)
        )

    # The policy, on the audio path -------------------------------------------

    def _check_audio(self, gate: AudioGate) -> None:
        if (code := gate.refusal()) is not None:
            msg = (
                "this room is muted: its audio is not heard"
                if code is ServiceErrorCode.MUTED
                else "this room's privacy mode changed: the stream is cut"
            )
            raise _RefusalError(code, msg)

    def _check_speech(self) -> None:
        if (code := self._policy.speech_refusal(self._address)) is not None:
            msg = "this room takes no spoken replies"
            raise _RefusalError(code, msg)

    # Requests ------------------------------------------------------------------

    async def _listen(self, opening: Event) -> None:
        """Pass one audio stream to speech-to-text or wake word detection.

        ``opening`` is the stream's ``audio-start`` or, in a wake word stream
        without one, its first ``audio-chunk``: the engine is sent an
        audio-start in that chunk's format all the same.
        """
        implicit = AudioChunk.is_type(opening.type)
        audio = _parse(AudioChunk, opening) if implicit else _parse(AudioStart, opening)
        source = _stream_format(audio)
        request, self._request = self._request, None
        wake = request is not None and Detect.is_type(request.type)
        endpoint = _offered(
            self._engines.wake if wake else self._engines.stt,
            "wake word detection" if wake else "speech-to-text",
        )
        gate = self._policy.audio_gate(self._address, transcribe=not wake)
        try:
            self._check_audio(gate)
            async with (
                self._deadline(
                    None if wake else self._limits.request_timeout
                ) as deadline,
                self._relaying(endpoint, _WAKE if wake else _TRANSCRIPT) as (
                    engine,
                    relay,
                ),
            ):
                if request is not None:
                    await engine.send(request)
                start = AudioStart(
                    source.rate,
                    source.width,
                    source.channels,
                    timestamp=audio.timestamp,
                )
                await engine.send(start.event())
                event = (
                    opening if implicit else await self._audio_event(source, wake=wake)
                )
                while not AudioStop.is_type(event.type):
                    if AudioChunk.is_type(event.type):
                        # Asked for every chunk: once the room is muted, no more of
                        # its audio reaches an engine.
                        self._check_audio(gate)
                        await engine.send(event)
                        gate.passed(len(event.payload or b""))
                    else:
                        # A detect: the engine listens afresh, for its names.
                        await engine.send(event)
                    event = await self._audio_event(source, wake=wake)
                self._check_audio(gate)
                await engine.send(event)
                # The room's audio stopped flowing; the answer may still come.
                gate.close()
                relay.request_complete()
                if wake:
                    deadline.reschedule(
                        asyncio.get_running_loop().time() + self._limits.request_timeout
                    )
        finally:
            gate.close()

    async def _audio_event(self, source: PcmFormat, *, wake: bool) -> Event:
        """Return the stream's next chunk, in ``source``'s format, or its end.

        In a wake word stream, also a ``detect``.
        """
        event = await self._next_in_stream()
        if AudioChunk.is_type(event.type):
            # A stream does not change format.
            if (chunk := PcmFormat.of(_parse(AudioChunk, event))) != source:
                msg = f"audio-chunk as {chunk} in a stream of {source}"
                raise _RefusalError(ErrorCode.BAD_AUDIO_FORMAT, msg)
        elif not (
            AudioStop.is_type(event.type) or (wake and Detect.is_type(event.type))
        ):
            msg = f"{event.type} inside an audio stream"
            raise _RefusalError(ErrorCode.UNEXPECTED_EVENT, msg)
        return event

    async def _speak(self, request: Event) -> None:
        """Pass one ``synthesize`` on; its audio comes back as one group."""
        endpoint = _offered(self._engines.tts, "text-to-speech")
        self._check_speech()
        async with (
            self._deadline(self._limits.request_timeout),
            self._relaying(endpoint, _SPEECH) as (engine, relay),
        ):
            await engine.send(request)
            relay.request_complete()

    async def _speak_streamed(self, start: Event) -> None:
        """Pass text on as it arrives; audio comes back sentence by sentence."""
        endpoint = _offered(self._engines.tts, "text-to-speech")
        self._check_speech()
        async with (
            self._deadline(self._limits.request_timeout),
            self._relaying(endpoint, _SPEECH_STREAM) as (engine, relay),
        ):
            await engine.send(start)
            while not SynthesizeStop.is_type(
                (event := await self._next_in_stream()).type
            ):
                # ``synthesize`` inside a stream repeats the whole text for
                # servers that cannot stream; the engine knows to ignore it.
                if not (
                    SynthesizeChunk.is_type(event.type)
                    or Synthesize.is_type(event.type)
                ):
                    msg = f"{event.type} inside a synthesis stream"
                    raise _RefusalError(ErrorCode.UNEXPECTED_EVENT, msg)
                await engine.send(event)
            await engine.send(event)
            relay.request_complete()

    @contextlib.asynccontextmanager
    async def _deadline(self, seconds: float | None) -> AsyncIterator[asyncio.Timeout]:
        """Bound one request; None: not yet (it may be rescheduled)."""
        try:
            async with asyncio.timeout(seconds) as deadline:
                yield deadline
        except TimeoutError as err:
            msg = f"the request took longer than {self._limits.request_timeout:g} s"
            raise _RefusalError(ErrorCode.TIMEOUT, msg) from err

    @contextlib.asynccontextmanager
    async def _relaying(
        self, endpoint: Endpoint, answer: _Answer
    ) -> AsyncIterator[tuple[_EngineConnection, _Relay]]:
        """Connect to the engine and relay its answer while the body sends.

        Leaving waits for the whole answer. Whichever side fails first ends
        the other: a refused chunk cancels the relay, an engine error the body.
        """
        try:
            async with (
                _EngineConnection(endpoint, self._limits) as engine,
                asyncio.TaskGroup() as group,
            ):
                yield engine, _Relay(self, engine, answer, group)
        except* Exception as errors:  # noqa: BLE001 - re-raised as it is
            # One request, one outcome: the client hears the first failure.
            raise errors.exceptions[0] from None


def _offered(endpoint: Endpoint | None, what: str) -> Endpoint:
    if endpoint is None:
        msg = f"this service offers no {what}"
        raise _RefusalError(ErrorCode.NOT_SUPPORTED, msg)
    return endpoint
