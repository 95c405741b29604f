"""The engine host's Wyoming server: one handler per connection, engines injected.

Speaks ``describe``/``info``, ``ping``/``pong``, ``transcribe`` + audio →
``transcript`` (with ``transcript-start/chunk/stop``), ``synthesize`` and
``synthesize-start/chunk/stop`` → audio, ``detect`` + audio → ``detection`` /
``not-detected``. A wake word stream may also open with its first chunk, with
no ``audio-start``, and never end, as wyoming-satellite streams to its wake
service. A ``transcribe`` whose context asks for ``voice_print`` gets the
utterance's voice print in its ``transcript``'s context; other clients get
exactly what they always got. Every refusal is an ``error`` event with a
code, after which that connection, and only that one, is closed.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
import contextlib
from dataclasses import dataclass, field
import logging
from typing import Any, Final, cast

import numpy as np
from wyoming.asr import (
    Transcribe,
    Transcript,
    TranscriptChunk,
    TranscriptStart,
    TranscriptStop,
)
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, Eventable, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)
from wyoming.wake import Detect, Detection, NotDetected

from .audio import ToEngineFormat
from .describe import build_info
from .engines import (
    VOICE_PRINT,
    VOICE_PRINT_ERROR,
    VOICE_PRINT_SECONDS,
    EngineError,
    ErrorCode,
    SpeakerEncoder,
    SpeechToText,
    SttSession,
    TextToSpeech,
    WakeSession,
    WakeWord,
)
from .formats import ENGINE_RATE, AudioFormatError, PcmFormat
from .sentences import SentenceBuffer
from .wire import FrameError, FrameLimits, read_frame

_LOGGER = logging.getLogger(__name__)

# TTS audio goes out in 1024-sample (2048-byte) chunks, what satellites expect.
TTS_CHUNK_BYTES: Final = 2048

# Voice prints use at most this much of an utterance (memory stays bounded).
VOICE_PRINT_MAX_SAMPLES: Final = 30 * ENGINE_RATE


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """Ceilings that keep one client from hurting the others (DESIGN §6)."""

    frame: FrameLimits = field(default_factory=FrameLimits)
    max_connections: int = 64
    # Concurrent transcriptions; more wait up to ``queue_timeout`` for a turn.
    max_transcriptions: int = 4
    queue_timeout: float = 10.0
    # A connection that sends nothing for this long is closed (wake streams
    # send audio all the time, so only a stalled peer reaches it).
    idle_timeout: float = 60.0
    # From audio-start to audio-stop of one utterance.
    utterance_timeout: float = 60.0
    # Writing one event to a peer that does not read.
    write_timeout: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Engines:
    """The engines a server offers; any may be absent."""

    stt: SpeechToText | None = None
    tts: TextToSpeech | None = None
    wake: Sequence[WakeWord] = ()
    speaker: SpeakerEncoder | None = None


class ClientError(Exception):
    """A request this connection cannot go on from: answered with ``error``."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        """Carry the code and text of the ``error`` event."""
        super().__init__(message)
        self.code = code


class EngineHostServer:
    """A TCP Wyoming server over injected engines."""

    def __init__(
        self, engines: Engines, *, version: str, limits: ServerLimits | None = None
    ) -> None:
        """Serve ``engines``; ``version`` is reported in ``info``."""
        self.engines = engines
        self.limits = limits or ServerLimits()
        self.info_event = build_info(engines, version).event()
        self._transcriptions = asyncio.Semaphore(self.limits.max_transcriptions)
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        # The TCP port listened on, known once started (useful with port 0).
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port."""
        self._server = await asyncio.start_server(
            self._accept, host, port, limit=self.limits.frame.header_bytes
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # asyncio.start_server runs every client callback in a task of its own.
        task = cast(asyncio.Task[None], asyncio.current_task())
        connection = Connection(self, reader, writer)
        if len(self._connections) >= self.limits.max_connections:
            await connection.refuse(
                ErrorCode.BUSY, "too many connections; try again later"
            )
            return
        self._connections.add(task)
        try:
            await connection.run()
        finally:
            self._connections.discard(task)

    @contextlib.asynccontextmanager
    async def transcription_slot(self) -> AsyncIterator[None]:
        """Hold one of the concurrent-transcription slots while transcribing."""
        try:
            async with asyncio.timeout(self.limits.queue_timeout):
                await self._transcriptions.acquire()
        except TimeoutError as err:
            raise ClientError(
                ErrorCode.BUSY, "every transcription slot is busy"
            ) from err
        try:
            yield
        finally:
            self._transcriptions.release()


def _parse[T: Eventable](kind: type[T], event: Event) -> T:
    """Read an event's fields; malformed data is the client's error, not ours."""
    try:
        return cast(T, kind.from_event(event))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"malformed {event.type} event: {err!r}"
        raise ClientError(ErrorCode.BAD_FRAME, msg) from err


class _PeerLeftError(Exception):
    """The peer closed the connection (possibly mid-utterance)."""


class Connection:
    """One client: reads its events in order and answers them."""

    def __init__(
        self,
        server: EngineHostServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Serve one accepted connection."""
        self._server = server
        self._engines = server.engines
        self._limits = server.limits
        self._reader = reader
        self._writer = writer
        self._peer = writer.get_extra_info("peername")
        self._transcribe: Transcribe | None = None
        self._detect: Detect | None = None
        self._stream: _SynthesisStream | None = None

    async def run(self) -> None:
        """Answer events until the peer leaves or breaks a rule."""
        try:
            while (event := await self._next()) is not None:
                await self._dispatch(event)
        except (ClientError, EngineError, FrameError) as err:
            await self.refuse(err.code, str(err))
        except AudioFormatError as err:
            await self.refuse(ErrorCode.BAD_AUDIO_FORMAT, str(err))
        except _PeerLeftError, ConnectionError:
            _LOGGER.debug("%s left", self._peer)
        finally:
            if self._stream is not None:
                self._stream.cancel()
            self._writer.close()

    async def refuse(self, code: ErrorCode, text: str) -> None:
        """Send an ``error`` event and close; the peer may already be gone."""
        _LOGGER.debug("refusing %s: %s (%s)", self._peer, text, code)
        with contextlib.suppress(ConnectionError, TimeoutError):
            await self.send(Error(text=text, code=code).event())
        self._writer.close()

    async def send(self, event: Event) -> None:
        """Write one event, giving up on a peer that stops reading."""
        try:
            async with asyncio.timeout(self._limits.write_timeout):
                await async_write_event(event, self._writer)
        except TimeoutError as err:
            raise ClientError(ErrorCode.TIMEOUT, "the client stopped reading") from err

    async def _next(self) -> Event | None:
        try:
            async with asyncio.timeout(self._limits.idle_timeout):
                return await read_frame(self._reader, self._limits.frame)
        except TimeoutError as err:
            msg = f"no event for {self._limits.idle_timeout:g} s"
            raise ClientError(ErrorCode.TIMEOUT, msg) from err

    async def _dispatch(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.send(self._server.info_event)
        elif Ping.is_type(event.type):
            await self.send(Pong(text=_parse(Ping, event).text).event())
        elif Transcribe.is_type(event.type):
            self._transcribe = _parse(Transcribe, event)
        elif Detect.is_type(event.type):
            self._detect = _parse(Detect, event)
        elif AudioStart.is_type(event.type):
            await self._audio(_parse(AudioStart, event))
        elif AudioChunk.is_type(event.type) and self._detect is not None:
            await self._implicit_wake_stream(self._detect, _parse(AudioChunk, event))
        elif AudioChunk.is_type(event.type) or AudioStop.is_type(event.type):
            msg = f"{event.type} before audio-start"
            raise ClientError(ErrorCode.NO_AUDIO_START, msg)
        elif not await self._dispatch_synthesis(event):
            _LOGGER.debug("Ignoring %s from %s", event.type, self._peer)

    async def _dispatch_synthesis(self, event: Event) -> bool:
        """Handle the text-to-speech events; False for any other event."""
        if Synthesize.is_type(event.type):
            # Streaming clients also send the whole text as ``synthesize`` for
            # servers that cannot stream; while a stream is open, it is a copy.
            if self._stream is None:
                await self._speak_once(_parse(Synthesize, event))
        elif SynthesizeStart.is_type(event.type):
            self._start_stream(_parse(SynthesizeStart, event))
        elif SynthesizeChunk.is_type(event.type):
            self._open_stream(event.type).add(_parse(SynthesizeChunk, event).text)
        elif SynthesizeStop.is_type(event.type):
            await self._open_stream(event.type).finish()
            self._stream = None
            await self.send(SynthesizeStopped().event())
        else:
            return False
        return True

    # Audio in ----------------------------------------------------------------

    async def _audio(self, start: AudioStart) -> None:
        source = PcmFormat.of(start)
        source.validate()
        detect, self._detect = self._detect, None
        transcribe, self._transcribe = self._transcribe, None
        if detect is not None:
            await self._listen(source, detect)
        else:
            await self._transcribe_stream(source, transcribe)

    async def _implicit_wake_stream(self, detect: Detect, first: AudioChunk) -> None:
        """Listen to a wake word stream that opened with ``first``, no audio-start.

        wyoming-satellite streams to its wake service so (``detect``, then
        chunks, never audio-start or audio-stop), and openWakeWord takes it:
        the stream is in its first chunk's format. A transcription still needs
        an audio-start.
        """
        source = PcmFormat.of(first)
        source.validate()
        self._detect = self._transcribe = None
        await self._listen(source, detect, first.audio)

    async def _audio_payloads(
        self, source: PcmFormat, restart: Callable[[Detect], None] | None = None
    ) -> AsyncIterator[bytes]:
        """Yield audio until audio-stop; pings and describes are still answered.

        Every chunk must be in ``source``'s format: a stream does not change
        format. ``restart`` takes each ``detect`` inside a wake word stream;
        elsewhere a ``detect`` is unexpected.
        """
        while True:
            event = await self._next()
            if event is None:
                raise _PeerLeftError
            if AudioChunk.is_type(event.type):
                yield _audio_in(source, _parse(AudioChunk, event))
            elif AudioStop.is_type(event.type):
                return
            elif Ping.is_type(event.type) or Describe.is_type(event.type):
                await self._dispatch(event)
            elif restart is not None and Detect.is_type(event.type):
                restart(_parse(Detect, event))
            else:
                msg = f"{event.type} inside an audio stream"
                raise ClientError(ErrorCode.UNEXPECTED_EVENT, msg)

    async def _transcribe_stream(
        self, source: PcmFormat, request: Transcribe | None
    ) -> None:
        stt = self._engines.stt
        if stt is None:
            raise ClientError(
                ErrorCode.NOT_SUPPORTED, "this host has no speech-to-text"
            )
        language = request.language if request else None
        # Only a client that asks gets a print: the others' replies are unchanged.
        heard: _Heard | None = None
        if request and request.context and request.context.get(VOICE_PRINT) is True:
            heard = _Heard()
        async with self._server.transcription_slot():
            session = stt.start(
                model=request.name if request else None, language=language
            )
            try:
                text, context = await self._transcribe_audio(
                    source, session, language, heard
                )
            finally:
                session.cancel()
        await self.send(
            Transcript(text=text, language=language, context=context).event()
        )

    async def _transcribe_audio(
        self,
        source: PcmFormat,
        session: SttSession,
        language: str | None,
        heard: _Heard | None,
    ) -> tuple[str, dict[str, Any] | None]:
        """Feed the utterance; stream provisional text; return the final text.

        ``transcript-chunk`` events extend the text sent so far; a later decode
        that disagrees with them is not retracted: ``transcript`` is authoritative.
        With ``heard``, the audio is kept and its voice print computed while
        the last decode runs: the context for ``transcript`` is returned too.
        """
        converter = ToEngineFormat(source)
        await self.send(TranscriptStart(language=language).event())
        sent = ""
        context: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(self._limits.utterance_timeout):
                async for payload in self._audio_payloads(source):
                    samples = converter.convert(payload)
                    if heard is not None:
                        heard.add(samples)
                    partial = await session.feed(samples)
                    if partial and partial.startswith(sent) and partial != sent:
                        await self.send(
                            TranscriptChunk(text=partial[len(sent) :]).event()
                        )
                        sent = partial
                if heard is None:
                    text = await session.finish()
                else:
                    # Not a TaskGroup: its ExceptionGroup would hide an
                    # EngineError of the decode from the connection's handler.
                    printing = asyncio.create_task(self._voice_print(heard))
                    try:
                        text = await session.finish()
                    except BaseException:
                        printing.cancel()
                        raise
                    context = await printing
        except TimeoutError as err:
            msg = f"utterance longer than {self._limits.utterance_timeout:g} s"
            raise ClientError(ErrorCode.TIMEOUT, msg) from err
        if text.startswith(sent) and text != sent:
            await self.send(TranscriptChunk(text=text[len(sent) :]).event())
        await self.send(TranscriptStop().event())
        return text, context

    async def _voice_print(self, heard: _Heard) -> dict[str, Any]:
        """Return the ``transcript`` context: ``heard``'s voice print, or why not."""
        if (speaker := self._engines.speaker) is None:
            return {VOICE_PRINT_ERROR: str(ErrorCode.NOT_SUPPORTED)}
        try:
            result = await speaker.voice_print(heard.samples())
        except EngineError as err:
            _LOGGER.debug("No voice print for %s: %s", self._peer, err)
            return {VOICE_PRINT_ERROR: str(err.code)}
        return {
            VOICE_PRINT: [round(float(value), 5) for value in result.vector],
            VOICE_PRINT_SECONDS: round(result.speech_seconds, 2),
        }

    async def _listen(
        self, source: PcmFormat, detect: Detect, first: bytes = b""
    ) -> None:
        """Report each wake word as it is heard, until audio-stop (if any comes).

        A ``detect`` inside the stream starts detection afresh, for its names
        (wyoming-satellite sends one after each command). ``first``: audio
        that came with the stream's opening.
        """
        converter = ToEngineFormat(source)
        listening = _Listening(self._wake_session(detect.names))

        def restart(again: Detect) -> None:
            listening.restart(self._wake_session(again.names))

        async def hear(payload: bytes) -> None:
            for detection in await listening.hear(converter.convert(payload)):
                await self.send(detection)

        if first:
            await hear(first)
        async for payload in self._audio_payloads(source, restart):
            await hear(payload)
        if not listening.detected:
            await self.send(NotDetected().event())

    def _wake_session(self, names: list[str] | None) -> WakeSession:
        if not self._engines.wake:
            raise ClientError(
                ErrorCode.NOT_SUPPORTED, "this host has no wake word engine"
            )
        if not names:
            return self._engines.wake[0].start(None)
        for engine in self._engines.wake:
            known = {model.name for model in engine.models}
            if known.issuperset(names):
                return engine.start(names)
        msg = f"no wake word engine has all of {', '.join(names)}"
        raise ClientError(ErrorCode.UNKNOWN_MODEL, msg)

    # Audio out ---------------------------------------------------------------

    def _tts(self) -> TextToSpeech:
        if self._engines.tts is None:
            raise ClientError(
                ErrorCode.NOT_SUPPORTED, "this host has no text-to-speech"
            )
        return self._engines.tts

    async def _speak_once(self, request: Synthesize) -> None:
        """One audio-start/chunk/stop group for the whole text."""
        tts = self._tts()
        voice = request.voice
        rate: int | None = None
        left = b""
        async for audio in tts.synthesize(
            request.text,
            voice=voice.name if voice else None,
            speaker=voice.speaker if voice else None,
        ):
            if rate is None:
                rate = audio.rate
                await self.send(AudioStart(rate=rate, width=2, channels=1).event())
            left = await self.send_pcm(rate, left + audio.pcm)
        if rate is None:
            # Nothing to say (empty text): still a well-formed, empty group.
            rate = 16000
            await self.send(AudioStart(rate=rate, width=2, channels=1).event())
        await self.end_pcm(rate, left)

    async def send_pcm(self, rate: int, pcm: bytes) -> bytes:
        """Send whole 2048-byte ``audio-chunk`` events; return the rest."""
        whole = len(pcm) - len(pcm) % TTS_CHUNK_BYTES
        for offset in range(0, whole, TTS_CHUNK_BYTES):
            chunk = pcm[offset : offset + TTS_CHUNK_BYTES]
            await self.send(
                AudioChunk(rate=rate, width=2, channels=1, audio=chunk).event()
            )
        return pcm[whole:]

    async def end_pcm(self, rate: int, rest: bytes) -> None:
        """Send the last, shorter chunk (if any) and ``audio-stop``."""
        if rest:
            await self.send(
                AudioChunk(rate=rate, width=2, channels=1, audio=rest).event()
            )
        await self.send(AudioStop().event())

    def _start_stream(self, request: SynthesizeStart) -> None:
        if self._stream is not None:
            raise ClientError(
                ErrorCode.UNEXPECTED_EVENT, "synthesize-start inside a stream"
            )
        voice = request.voice
        self._stream = _SynthesisStream(
            self,
            self._tts(),
            voice=voice.name if voice else None,
            speaker=voice.speaker if voice else None,
        )

    def _open_stream(self, event_type: str) -> _SynthesisStream:
        if self._stream is None:
            raise ClientError(
                ErrorCode.UNEXPECTED_EVENT, f"{event_type} without synthesize-start"
            )
        return self._stream


def _audio_in(source: PcmFormat, chunk: AudioChunk) -> bytes:
    """Return the chunk's audio; AudioFormatError unless it is in ``source``."""
    if (chunk_format := PcmFormat.of(chunk)) != source:
        msg = f"audio-chunk as {chunk_format} in a stream of {source}"
        raise AudioFormatError(msg)
    return chunk.audio


class _Heard:
    """An utterance's engine samples, kept for its voice print (bounded)."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._count = 0

    def add(self, samples: np.ndarray) -> None:
        """Keep ``samples``, up to VOICE_PRINT_MAX_SAMPLES in all."""
        room = VOICE_PRINT_MAX_SAMPLES - self._count
        if room > 0:
            self._chunks.append(samples[:room])
            self._count += min(room, len(samples))

    def samples(self) -> np.ndarray:
        """Everything kept, as one array."""
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks)


class _Listening:
    """A wake word stream's detection; each ``detect`` in it starts a new session.

    Timestamps count from the start of the stream, across sessions.
    """

    def __init__(self, session: WakeSession) -> None:
        self._session = session
        self._heard = 0  # engine samples, since the stream started
        self._since_ms = 0  # when the current session started
        # Whether anything was detected: then no not-detected ends the stream.
        self.detected = False

    def restart(self, session: WakeSession) -> None:
        """Listen afresh, with ``session``, from here on."""
        self._session = session
        self._since_ms = self._heard * 1000 // ENGINE_RATE

    async def hear(self, samples: np.ndarray) -> list[Event]:
        """Take the next engine samples; return the ``detection`` events due."""
        self._heard += len(samples)
        found = await self._session.process(samples)
        self.detected |= bool(found)
        return [
            Detection(name=d.name, timestamp=self._since_ms + d.timestamp_ms).event()
            for d in found
        ]


class _SynthesisStream:
    """Text streamed in (``synthesize-chunk``), spoken sentence by sentence.

    Each sentence becomes its own audio-start/chunk/stop group as soon as it is
    complete, while more text is still arriving.
    """

    def __init__(
        self,
        connection: Connection,
        tts: TextToSpeech,
        *,
        voice: str | None,
        speaker: str | None,
    ) -> None:
        self._connection = connection
        self._tts = tts
        self._voice = voice
        self._speaker = speaker
        self._buffer = SentenceBuffer()
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._speak())

    def add(self, text: str) -> None:
        """Take more text; complete sentences are queued for speaking."""
        for sentence in self._buffer.add(text):
            self._sentences.put_nowait(sentence)

    async def finish(self) -> None:
        """Speak the rest of the text, which has ended; return when all is sent."""
        for sentence in self._buffer.flush():
            self._sentences.put_nowait(sentence)
        self._sentences.put_nowait(None)
        await self._task

    def cancel(self) -> None:
        """Stop speaking: the connection is ending."""
        self._task.cancel()

    async def _speak(self) -> None:
        while (sentence := await self._sentences.get()) is not None:
            async for audio in self._tts.synthesize(
                sentence, voice=self._voice, speaker=self._speaker
            ):
                await self._connection.send(
                    AudioStart(rate=audio.rate, width=2, channels=1).event()
                )
                rest = await self._connection.send_pcm(audio.rate, audio.pcm)
                await self._connection.end_pcm(audio.rate, rest)
