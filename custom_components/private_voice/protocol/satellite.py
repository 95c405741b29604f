"""The hub's side of a Wyoming satellite: connect, keep alive, run pipelines.

A satellite (ESP32-S3 firmware, ``wyoming-satellite``) is a Wyoming *server*,
on port 10700 by convention; the hub connects to it, as Home Assistant's
``wyoming`` integration does. The link asks ``describe``, requires
``satellite`` in the ``info``, sends ``run-satellite`` and then serves the
satellite's ``run-pipeline`` requests through a handler (the Home Assistant
glue): microphone audio reaches the handler as 16 kHz, 16-bit mono whatever the
satellite sends; events and spoken replies go back, replies in the satellite's
speaker format.

Privacy is enforced here, on the audio path (DESIGN §3): while paused (a Muted
room) the satellite is told ``pause-satellite`` and any audio it still sends is
dropped before it is looked at.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
import io
import logging
from typing import Final, NoReturn, Protocol, Self, cast, override

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, Eventable, write_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.snd import Played
from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated
from wyoming.tts import Synthesize
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detect, Detection

from ..engine_host.engines import ErrorCode
from ..engine_host.formats import AudioFormatError, PcmFormat
from ..engine_host.wire import FrameError, FrameLimits, read_frame
from .client import Endpoint
from .pcm import PcmConverter

# What the handler gets, whatever the satellite's microphone sends.
MIC_FORMAT: Final = PcmFormat(16000, 2, 1)
# Spoken replies go out in 2048-byte chunks, what satellites' players expect.
TTS_CHUNK_BYTES: Final = 2048

# What a pipeline run may tell its satellite, as Home Assistant's satellites do.
type PipelineMessage = (
    Detect
    | Detection
    | Transcribe
    | VoiceStarted
    | VoiceStopped
    | Transcript
    | Synthesize
    | Error
)
type TimerMessage = TimerStarted | TimerUpdated | TimerCancelled | TimerFinished


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSettings:
    """Timeouts and ceilings of a satellite link."""

    frame: FrameLimits = field(default_factory=FrameLimits)
    connect_timeout: float = 5.0
    # From ``describe`` to ``info``.
    reply_timeout: float = 5.0
    # Between a ``pong`` and the next ``ping``; a satellite that does not
    # answer a ``ping`` within ``pong_timeout`` is gone.
    ping_interval: float = 2.0
    pong_timeout: float = 5.0
    # Writing to a satellite that stops reading: one drain, and what may wait
    # unsent before the satellite counts as gone.
    write_timeout: float = 10.0
    write_buffer_bytes: int = 1024 * 1024
    # Reconnecting: the first delay, doubled after every failure up to the last.
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    # Waiting for ``played``: the reply's own length and this much more.
    played_grace: float = 1.0
    # A handler whose audio was cut by a lost connection (or a stop) has this
    # long to return before it is cancelled.
    finish_timeout: float = 1.0
    # Microphone audio a handler may leave unread; more is dropped.
    mic_buffer_seconds: float = 30.0


class SatelliteError(Exception):
    """The satellite is not connected, or went away while being spoken to."""


class AudioEnd(StrEnum):
    """Why a pipeline run's microphone audio ended."""

    # The satellite sent ``audio-stop``: the utterance is complete.
    SATELLITE = "satellite"
    # The handler returned.
    PIPELINE = "pipeline"
    # The hub cut it: ``async_pause`` (a Muted room) or ``cut_pipeline``.
    PAUSED = "paused"
    CUT = "cut"
    # The satellite asked for a new run.
    SUPERSEDED = "superseded"
    # The connection ended: the satellite left, broke the protocol or stopped
    # answering ``ping``.
    LOST = "lost"
    # The link is stopping.
    STOPPED = "stopped"

    @property
    def complete(self) -> bool:
        """Whether the audio is a whole utterance (and not cut short)."""
        return self in {AudioEnd.SATELLITE, AudioEnd.PIPELINE}


# The hub's cuts: the handler of a run cut so is cancelled.
_HUB_CUTS: Final = frozenset({AudioEnd.PAUSED, AudioEnd.CUT})


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineRequest:
    """What a satellite's ``run-pipeline`` asks for."""

    start_stage: PipelineStage
    end_stage: PipelineStage
    # Always-streaming satellites want a new run after each one ends.
    restart_on_end: bool = False
    # What woke a satellite that detects its wake word itself, and its phrase
    # as the satellite's ``info`` gives it.
    wake_word_name: str | None = None
    wake_word_phrase: str | None = None
    announce_text: str | None = None


class SatelliteHandler(Protocol):
    """What the link calls: implemented by the Home Assistant glue.

    The callbacks run in the event loop and must not block or raise.
    """

    def satellite_available(self, info: Info) -> None:
        """Note that the satellite is connected and answers ``ping``."""

    def satellite_unavailable(self, reason: str) -> None:
        """Note that the satellite cannot be reached (once per outage)."""

    async def run_pipeline(self, run: PipelineRun) -> None:
        """Run one pipeline for the satellite; return when it has ended."""


class _DownError(Exception):
    """The connection ended; the text says why."""


class MicStream(AsyncIterator[bytes]):
    """One run's microphone audio, 16 kHz 16-bit mono, until it ends."""

    def __init__(self, limit_bytes: int) -> None:
        """Hold at most ``limit_bytes`` of audio the handler has not read."""
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._limit = limit_bytes
        self._changed = asyncio.Event()
        self.end: AudioEnd | None = None

    def put(self, pcm: bytes) -> None:
        """Add audio; dropped once the stream has ended or the buffer is full."""
        if self.end is not None or self._size + len(pcm) > self._limit:
            return
        self._chunks.append(pcm)
        self._size += len(pcm)
        self._changed.set()

    def close(self, end: AudioEnd) -> None:
        """End the stream; audio not yet read is dropped, but for audio-stop."""
        if self.end is not None:
            return
        self.end = end
        # After audio-stop the handler still reads the rest of the utterance.
        if end is not AudioEnd.SATELLITE:
            self._chunks.clear()
            self._size = 0
        self._changed.set()

    @override
    async def __anext__(self) -> bytes:
        # No timeout here: the link ends every stream when its connection ends,
        # and a lost satellite is found by ``ping`` within seconds.
        while not self._chunks:
            if self.end is not None:
                raise StopAsyncIteration
            self._changed.clear()
            await self._changed.wait()
        pcm = self._chunks.popleft()
        self._size -= len(pcm)
        return pcm


class PipelineRun:
    """One pipeline run a satellite asked for: audio in, events and replies out.

    Once the run is no longer ``live``, what it sends is dropped.
    """

    def __init__(self, connection: _Connection, request: PipelineRequest) -> None:
        """Start a run on ``connection``."""
        self.request = request
        self.audio = MicStream(
            int(connection.settings.mic_buffer_seconds * MIC_FORMAT.bytes_per_second)
        )
        self._connection = connection
        self.failed = False

    @property
    def audio_end(self) -> AudioEnd | None:
        """Why the audio ended; None while it flows."""
        return self.audio.end

    @property
    def live(self) -> bool:
        """Whether the run goes on: connected, its audio not cut short.

        A new run, a pause or a mode change cut the audio and end the run.
        """
        end = self.audio.end
        return self._connection.is_open and (end is None or end.complete)

    def send(self, message: PipelineMessage) -> None:
        """Tell the satellite how the run goes.

        After an ``error`` the run counts as failed: an always-streaming
        satellite does not get another run in a tight loop.
        """
        if isinstance(message, Error):
            self.failed = True
        if self.live:
            self._connection.send(message.event())

    async def play(self, pcm: AsyncIterable[bytes], source: PcmFormat) -> None:
        """Speak a reply and wait until the satellite has played it.

        Returns early if the run is cut; SatelliteError if the satellite goes
        away; AudioFormatError if ``source`` is not 8-48 kHz 16-bit 1-2 channels.
        """
        await self._connection.play(pcm, source, lambda: self.live)


class _Connection:
    """One TCP connection to the satellite and what belongs to it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        settings: LinkSettings,
    ) -> None:
        self.settings = settings
        self._reader = reader
        self._writer = writer
        # The address connected to, which the public service admits.
        peer = writer.get_extra_info("peername")
        self.address: str | None = str(peer[0]) if peer else None
        self.info = Info()
        self.run: PipelineRun | None = None
        self.failure: str | None = None
        # Set by every event the satellite sends: it is alive.
        self.alive = asyncio.Event()
        self.played = asyncio.Event()
        self._playing = asyncio.Lock()
        # From the microphone's format (audio-start, or the first chunk) to
        # MIC_FORMAT, for the current run's audio.
        self.mic: PcmConverter | None = None
        # The last wake word the satellite said it detected.
        self.wake_word: str | None = None

    @classmethod
    async def open(cls, endpoint: Endpoint, settings: LinkSettings) -> Self:
        try:
            async with asyncio.timeout(settings.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    endpoint.host, endpoint.port, limit=settings.frame.header_bytes
                )
        except (OSError, TimeoutError) as err:
            msg = f"cannot connect: {str(err) or 'timed out'}"
            raise _DownError(msg) from err
        return cls(reader, writer, settings)

    @property
    def is_open(self) -> bool:
        return self.failure is None and not self._writer.is_closing()

    @property
    def speaker_format(self) -> PcmFormat | None:
        """The first usable ``snd_format`` the satellite's info gives."""
        for program in self.info.snd:
            speaker = PcmFormat.of(program.snd_format)
            with contextlib.suppress(AudioFormatError):
                speaker.validate()
                return speaker
        return None

    def send(self, event: Event) -> None:
        """Queue one event for writing; dropped once the connection is closing.

        Writing is synchronous, so events keep the order they are sent in.
        """
        if not self.is_open:
            return
        frame = io.BytesIO()
        write_event(event, frame)
        self._writer.write(frame.getvalue())
        if (
            self._writer.transport.get_write_buffer_size()
            > self.settings.write_buffer_bytes
        ):
            self.fail("stopped reading")

    async def drain(self) -> None:
        """Wait until what was sent is written; SatelliteError if it cannot be."""
        if not self.is_open:
            raise self.gone()
        try:
            async with asyncio.timeout(self.settings.write_timeout):
                await self._writer.drain()
        except (OSError, TimeoutError) as err:
            self.fail(str(err) or "stopped reading")
            raise self.gone() from err

    def gone(self) -> SatelliteError:
        """Describe why the satellite cannot be spoken to."""
        return SatelliteError(f"the satellite is gone ({self.failure or 'closed'})")

    def fail(self, reason: str) -> None:
        """Give up on a satellite that is gone: the reader sees the end at once."""
        if self.failure is None:
            self.failure = reason
        self._writer.transport.abort()

    def refuse(self, code: ErrorCode, text: str) -> str:
        """Answer bad input with ``error`` and close; return the reason."""
        self.send(Error(text=text, code=code).event())
        self.failure = self.failure or text
        self._writer.close()
        return f"sent bad input: {text}"

    async def read(self) -> Event:
        """Read one event; _DownError at the end of the connection."""
        try:
            event = await read_frame(self._reader, self.settings.frame)
        except OSError as err:
            raise _DownError(self.failure or f"connection lost: {err}") from err
        if event is None:
            raise _DownError(self.failure or "closed the connection")
        self.alive.set()
        return event

    async def close(self) -> None:
        self._writer.close()
        try:
            async with asyncio.timeout(self.settings.write_timeout):
                await self._writer.wait_closed()
        except OSError:
            pass  # already gone: nothing left to close
        except TimeoutError:
            self._writer.transport.abort()

    async def play(
        self, pcm: AsyncIterable[bytes], source: PcmFormat, live: Callable[[], bool]
    ) -> None:
        """Send audio in the speaker's format; wait for ``played`` while ``live``."""
        target = self.speaker_format or source
        converter = PcmConverter(source, target)
        loop = asyncio.get_running_loop()
        async with self._playing:  # one reply or announcement at a time
            if not self.is_open:
                raise self.gone()
            if not live():
                return
            self.played.clear()
            started = loop.time()
            self.send(AudioStart(target.rate, target.width, target.channels).event())
            pending = bytearray()
            sent = 0
            async for data in pcm:
                if not live():
                    break
                pending += converter.convert(data)
                whole = len(pending) - len(pending) % TTS_CHUNK_BYTES
                for offset in range(0, whole, TTS_CHUNK_BYTES):
                    await self._send_audio(
                        target, bytes(pending[offset : offset + TTS_CHUNK_BYTES])
                    )
                del pending[:whole]
                sent += whole
            if pending and live():
                await self._send_audio(target, bytes(pending))
                sent += len(pending)
            self.send(AudioStop().event())
            await self.drain()
            if not live():
                return
            # The satellite plays in real time from the moment audio starts.
            deadline = started + sent / target.bytes_per_second
            with contextlib.suppress(TimeoutError):  # older satellites never say
                async with asyncio.timeout_at(deadline + self.settings.played_grace):
                    await self.played.wait()
            if not self.played.is_set() and not self.is_open:
                raise self.gone()

    async def _send_audio(self, target: PcmFormat, audio: bytes) -> None:
        self.send(AudioChunk(target.rate, target.width, target.channels, audio).event())
        await self.drain()


def _parse[T: Eventable](kind: type[T], event: Event) -> T:
    """Read an event's fields; malformed data is the satellite's error."""
    try:
        return cast(T, kind.from_event(event))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"malformed {event.type} event: {err!r}"
        raise FrameError(ErrorCode.BAD_FRAME, msg) from err


async def _alive_within(connection: _Connection, seconds: float) -> bool:
    """Wait for any event from the satellite; False if none came in time."""
    try:
        async with asyncio.timeout(seconds):
            await connection.alive.wait()
    except TimeoutError:
        return False
    return True


def _wake_phrase(info: Info, name: str) -> str:
    """Find the phrase of a wake word in the satellite's info, else its name."""
    for program in info.wake:
        for model in program.models:
            if model.name == name:
                return model.phrase or name
    return name


class SatelliteLink:
    """Keep one satellite connected and serve its pipeline runs.

    ``async_start`` begins; the link reconnects by itself until
    ``async_stop``. ``async_pause`` and ``async_resume`` switch the satellite's
    microphone off and on (a Muted room).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        handler: SatelliteHandler,
        *,
        logger: logging.Logger,
        settings: LinkSettings | None = None,
    ) -> None:
        """Serve the satellite at ``endpoint`` through ``handler``."""
        self.endpoint = endpoint
        self._handler = handler
        self._logger = logger
        self._settings = settings or LinkSettings()
        self._task: asyncio.Task[None] | None = None
        self._connection: _Connection | None = None
        # Every run whose handler has not returned yet.
        self._runs: dict[asyncio.Task[None], PipelineRun] = {}
        self._paused = False
        self._stopping = False
        # None until the first connection or failure: an outage is logged
        # when it begins and when it ends, never for each attempt.
        self._available: bool | None = None
        # Audio chunks dropped unread while paused (a privacy counter).
        self.refused_chunks = 0

    @property
    def connected(self) -> bool:
        """Whether the satellite is connected (it may not have answered yet)."""
        return self._connection is not None

    @property
    def info(self) -> Info | None:
        """What the connected satellite says about itself."""
        return self._connection.info if self._connection else None

    @property
    def address(self) -> str | None:
        """The satellite's IP address while connected."""
        return self._connection.address if self._connection else None

    @property
    def paused(self) -> bool:
        """Whether the satellite's microphone is refused."""
        return self._paused

    def async_start(self) -> None:
        """Start connecting (in the event loop); reconnects until stopped."""
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(
                self._maintain(), name=f"satellite link {self.endpoint.uri}"
            )

    async def async_stop(self) -> None:
        """Pause the satellite if connected, disconnect, end every run."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._stopping = True
        if (connection := self._connection) is not None:
            connection.send(PauseSatellite().event())
            with contextlib.suppress(SatelliteError):
                await connection.drain()
        task.cancel()
        await asyncio.wait([task])
        # Runs the session could not end: it was stopped while ending them.
        await self._end_runs(AudioEnd.STOPPED)

    async def async_pause(self) -> None:
        """Refuse the microphone: ``pause-satellite``, the current run cut."""
        self._paused = True
        if (connection := self._connection) is not None:
            self._cut(connection, AudioEnd.PAUSED)
            connection.send(PauseSatellite().event())
            with contextlib.suppress(SatelliteError):  # reconnecting sends it too
                await connection.drain()

    async def async_resume(self) -> None:
        """Accept the microphone again: ``run-satellite``."""
        self._paused = False
        if (connection := self._connection) is not None:
            connection.send(RunSatellite().event())
            with contextlib.suppress(SatelliteError):  # reconnecting sends it too
                await connection.drain()

    def cut_pipeline(self) -> None:
        """End the current run's audio at once (a room's mode changed)."""
        if (connection := self._connection) is not None:
            self._cut(connection, AudioEnd.CUT)

    async def async_announce(
        self, pcm: AsyncIterable[bytes], source: PcmFormat
    ) -> None:
        """Play audio outside any pipeline; return once the satellite played it.

        SatelliteError if the satellite is not connected or goes away.
        """
        if (connection := self._connection) is None:
            msg = f"{self.endpoint.uri} is not connected"
            raise SatelliteError(msg)
        await connection.play(pcm, source, lambda: connection.is_open)

    def send_timer(self, message: TimerMessage) -> None:
        """Pass a timer event on; dropped while the satellite is not connected."""
        if self._connection is not None:
            self._connection.send(message.event())

    # Connecting ---------------------------------------------------------------

    async def _maintain(self) -> None:
        delay = self._settings.backoff_initial
        while True:
            reason = await self._session()
            if self._available:  # it was healthy: back off afresh
                delay = self._settings.backoff_initial
            self._set_unavailable(reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.backoff_max)

    def _set_available(self, info: Info) -> None:
        if self._available is False:
            self._logger.info("Satellite %s is available again", self.endpoint.uri)
        self._available = True
        self._handler.satellite_available(info)

    def _set_unavailable(self, reason: str) -> None:
        if self._available is False:
            self._logger.debug("Satellite %s: %s", self.endpoint.uri, reason)
            return
        self._logger.info(
            "Satellite %s is unavailable: %s; reconnecting", self.endpoint.uri, reason
        )
        self._available = False
        self._handler.satellite_unavailable(reason)

    async def _session(self) -> str:
        """Connect and serve the satellite until the connection ends; say why."""
        try:
            connection = await _Connection.open(self.endpoint, self._settings)
        except _DownError as err:
            return str(err)
        pinger: asyncio.Task[None] | None = None
        try:
            connection.info = await self._handshake(connection)
            self._connection = connection
            connection.send(
                (PauseSatellite() if self._paused else RunSatellite()).event()
            )
            pinger = asyncio.create_task(self._keep_alive(connection))
            await self._serve(connection)
        except FrameError as err:
            return connection.refuse(err.code, str(err))
        except AudioFormatError as err:
            return connection.refuse(ErrorCode.BAD_AUDIO_FORMAT, str(err))
        except _DownError as err:
            return str(err)
        finally:
            self._connection = None
            if pinger is not None:
                pinger.cancel()
                await asyncio.wait([pinger])
            # Closed first, so that no run ending now starts another.
            await connection.close()
            await self._end_runs(AudioEnd.STOPPED if self._stopping else AudioEnd.LOST)

    async def _handshake(self, connection: _Connection) -> Info:
        connection.send(Describe().event())
        try:
            async with asyncio.timeout(self._settings.reply_timeout):
                while not Info.is_type((event := await connection.read()).type):
                    if Ping.is_type(event.type):
                        self._answer_ping(connection, event)
        except TimeoutError as err:
            msg = f"no answer to describe within {self._settings.reply_timeout:g} s"
            raise _DownError(msg) from err
        info = _parse(Info, event)
        if info.satellite is None:
            msg = "not a Wyoming satellite (its info has no 'satellite')"
            raise _DownError(msg)
        return info

    async def _keep_alive(self, connection: _Connection) -> None:
        """Ping the satellite; its first sign of life makes it available.

        Any event counts as an answer: a streaming satellite is plainly
        there. One silent for half the timeout is also asked ``describe``,
        which satellites that never answer ``ping`` (wyoming-satellite 1.0) do
        answer.
        """
        answered = False
        half = self._settings.pong_timeout / 2
        while True:
            connection.alive.clear()
            connection.send(Ping().event())
            if not await _alive_within(connection, half):
                connection.send(Describe().event())
                if not await _alive_within(connection, half):
                    connection.fail(
                        f"no answer to ping within {self._settings.pong_timeout:g} s"
                    )
                    return
            if not answered:
                answered = True
                self._set_available(connection.info)
            await asyncio.sleep(self._settings.ping_interval)

    async def _end_runs(self, end: AudioEnd) -> None:
        """End the runs' audio, give their handlers a moment, then cancel them."""
        if not self._runs:
            return
        for run in self._runs.values():
            run.audio.close(end)
        _, pending = await asyncio.wait(
            set(self._runs), timeout=self._settings.finish_timeout
        )
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # Serving ------------------------------------------------------------------

    async def _serve(self, connection: _Connection) -> NoReturn:
        """Handle the satellite's events until the connection ends."""
        while True:
            event = await connection.read()
            if AudioChunk.is_type(event.type):
                self._mic_chunk(connection, event)
            elif AudioStart.is_type(event.type):
                self._mic_start(connection, event)
            elif AudioStop.is_type(event.type):
                self._mic_stop(connection)
            else:
                self._control(connection, event)

    def _control(self, connection: _Connection, event: Event) -> None:
        if Ping.is_type(event.type):
            self._answer_ping(connection, event)
        elif Pong.is_type(event.type):
            pass  # every event is a sign of life (``read``)
        elif RunPipeline.is_type(event.type):
            self._run_pipeline(connection, _parse(RunPipeline, event))
        elif Detection.is_type(event.type):
            connection.wake_word = _parse(Detection, event).name
        elif Played.is_type(event.type):
            connection.played.set()
        elif Info.is_type(event.type):
            self._update_info(connection, _parse(Info, event))
        else:
            self._logger.debug("Satellite %s sent %s", self.endpoint.uri, event.type)

    def _answer_ping(self, connection: _Connection, event: Event) -> None:
        connection.send(Pong(text=_parse(Ping, event).text).event())

    def _update_info(self, connection: _Connection, info: Info) -> None:
        if info.satellite is not None:
            connection.info = info

    def _run_pipeline(self, connection: _Connection, run_pipeline: RunPipeline) -> None:
        if self._paused:
            self._logger.debug(
                "Satellite %s asked for a pipeline while paused", self.endpoint.uri
            )
            return
        name = run_pipeline.wake_word_name or connection.wake_word
        connection.wake_word = None
        self._start_run(
            connection,
            PipelineRequest(
                start_stage=run_pipeline.start_stage,
                end_stage=run_pipeline.end_stage,
                restart_on_end=run_pipeline.restart_on_end,
                wake_word_name=name,
                wake_word_phrase=_wake_phrase(connection.info, name) if name else None,
                announce_text=run_pipeline.announce_text,
            ),
        )

    def _start_run(self, connection: _Connection, request: PipelineRequest) -> None:
        self._cut(connection, AudioEnd.SUPERSEDED)
        run = PipelineRun(connection, request)
        connection.run = run
        if connection.mic is not None:
            # A fresh converter: nothing of the last run's audio carries over.
            connection.mic = PcmConverter(connection.mic.source, MIC_FORMAT)
        task = asyncio.create_task(
            self._drive(connection, run), name=f"satellite pipeline {self.endpoint.uri}"
        )
        self._runs[task] = run
        task.add_done_callback(self._runs.pop)

    async def _drive(self, connection: _Connection, run: PipelineRun) -> None:
        try:
            await self._handler.run_pipeline(run)
        except asyncio.CancelledError:
            if run.audio_end not in _HUB_CUTS:
                raise
            # Cut by the hub (``_cut``): the run is over, the link goes on.
            if (task := asyncio.current_task()) is not None:
                task.uncancel()
        except Exception:
            self._logger.exception(
                "Pipeline for satellite %s failed", self.endpoint.uri
            )
            run.failed = True
        finally:
            run.audio.close(AudioEnd.PIPELINE)
        # Not after a failure (no tight loop), a pause, a new run or a lost
        # connection; after a cut (a mode change) the stream goes on afresh.
        if (
            run.request.restart_on_end
            and not run.failed
            and not self._paused
            and connection.run is run
            and connection.is_open
        ):
            self._start_run(connection, run.request)

    def _cut(self, connection: _Connection, end: AudioEnd) -> None:
        """End the current run's audio; a pause or a mode change ends the run too.

        Its handler is cancelled at once, so that nothing of an utterance cut
        short is transcribed, acted on or answered.
        """
        if (run := connection.run) is None:
            return
        run.audio.close(end)
        if end in _HUB_CUTS:
            for task, running in self._runs.items():
                if running is run:
                    task.cancel()

    def _mic_start(self, connection: _Connection, event: Event) -> None:
        if not self._paused:
            start = _parse(AudioStart, event)
            connection.mic = PcmConverter(PcmFormat.of(start), MIC_FORMAT)

    def _mic_stop(self, connection: _Connection) -> None:
        if not self._paused and connection.run is not None:
            connection.run.audio.close(AudioEnd.SATELLITE)

    def _mic_chunk(self, connection: _Connection, event: Event) -> None:
        if self._paused:
            # Dropped before anything of it is looked at (DESIGN §3, Muted).
            self.refused_chunks += 1
            return
        run = connection.run
        if run is None or run.audio_end is not None:
            return  # no run is listening: the audio goes nowhere
        chunk = _parse(AudioChunk, event)
        chunk_format = PcmFormat.of(chunk)
        if connection.mic is None:
            connection.mic = PcmConverter(chunk_format, MIC_FORMAT)
        elif chunk_format != connection.mic.source:
            msg = (
                f"audio-chunk as {chunk_format} in a stream of {connection.mic.source}"
            )
            raise AudioFormatError(msg)
        run.audio.put(connection.mic.convert(chunk.audio))
