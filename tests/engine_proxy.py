"""A counting proxy in front of the engine host: what reaches the engines, and when.

Home Assistant's entry is pointed at the proxy as at an engine host; the proxy
forwards both ways to the real one. What Home Assistant sends is read event by
event with the ``wyoming`` library (so the count is of what the engine host
would parse), each audio chunk's payload counted with the moment it arrived;
the engines' answers are passed back byte for byte.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field
import time

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk
from wyoming.event import async_read_event, async_write_event
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeStart
from wyoming.wake import Detect

from custom_components.private_voice.protocol.client import Endpoint

DESCRIBE = Describe().event().type
TRANSCRIBE = Transcribe().event().type
DETECT = Detect().event().type
_SPEECH = frozenset({Synthesize(text="").event().type, SynthesizeStart().event().type})
# The event that says what a connection is for: its first one of these.
_REQUESTS = frozenset({TRANSCRIBE, DETECT, *_SPEECH})
_ANSWER_READ_BYTES = 64 * 1024


@dataclass
class Chunk:
    """One audio chunk the engine host received."""

    # time.monotonic() when the proxy read it.
    at: float
    size: int


@dataclass
class ProxiedConnection:
    """One connection from Home Assistant to the engine host."""

    opened: float
    # Its first request (transcribe, detect, synthesize…); describe if none.
    request: str = DESCRIBE
    chunks: list[Chunk] = field(default_factory=list)
    # The text of every synthesize request (what would be spoken).
    texts: list[str] = field(default_factory=list)
    # A transcription that asked for the speaker's voice print.
    voice_print_asked: bool = False
    # time.monotonic() when Home Assistant's side ended (closed or broke off).
    ended: float | None = None

    @property
    def audio_bytes(self) -> int:
        """Audio bytes the engine host received on this connection."""
        return sum(chunk.size for chunk in self.chunks)


class EngineProxy:
    """Listens on 127.0.0.1, forwards to ``target``, counts what goes there."""

    def __init__(self, target: Endpoint) -> None:
        """Forward to the engine host at ``target``; ``start`` listens."""
        self.target = target
        self.connections: list[ProxiedConnection] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def endpoint(self) -> Endpoint:
        """Where Home Assistant reaches the engines."""
        return Endpoint("127.0.0.1", self.port)

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # What reached the engines -------------------------------------------------

    def of(self, request: str) -> list[ProxiedConnection]:
        """Return the connections made for ``request``."""
        return [c for c in self.connections if c.request == request]

    def speech(self) -> list[ProxiedConnection]:
        """Return the text-to-speech requests (streamed or not)."""
        return [c for c in self.connections if c.request in _SPEECH]

    def audio_bytes(self, request: str | None = None) -> int:
        """Audio bytes received for ``request`` (transcribe, detect), or in all."""
        return sum(
            c.audio_bytes
            for c in self.connections
            if request is None or c.request == request
        )

    def chunks_after(self, moment: float) -> list[Chunk]:
        """Every chunk received after ``moment``."""
        return [
            chunk for c in self.connections for chunk in c.chunks if chunk.at > moment
        ]

    def in_flight(self, moment: float) -> list[ProxiedConnection]:
        """Return the audio streams open at ``moment`` (audio begun, not ended)."""
        return [
            c
            for c in self.connections
            if c.opened < moment
            and c.chunks
            and c.chunks[0].at < moment
            and (c.ended is None or c.ended > moment)
        ]

    # Forwarding ------------------------------------------------------------------

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = ProxiedConnection(opened=time.monotonic())
        self.connections.append(connection)
        try:
            engine_reader, engine_writer = await asyncio.open_connection(
                self.target.host, self.target.port
            )
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        answers = asyncio.create_task(self._answers(engine_reader, writer))
        try:
            await self._requests(connection, reader, engine_writer)
            await answers
        except ConnectionError:
            pass  # either side went away: so does the other
        finally:
            if connection.ended is None:
                connection.ended = time.monotonic()
            answers.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await answers
            engine_writer.close()
            writer.close()
            self._tasks.discard(task)

    async def _requests(
        self,
        connection: ProxiedConnection,
        reader: asyncio.StreamReader,
        engine: asyncio.StreamWriter,
    ) -> None:
        """Pass Home Assistant's events on, counting the audio as it arrives."""
        while (event := await async_read_event(reader)) is not None:
            if AudioChunk.is_type(event.type):
                connection.chunks.append(
                    Chunk(at=time.monotonic(), size=len(event.payload or b""))
                )
            elif event.type in _REQUESTS and connection.request == DESCRIBE:
                connection.request = event.type
            if Transcribe.is_type(event.type):
                context = Transcribe.from_event(event).context or {}
                connection.voice_print_asked = context.get("voice_print") is True
            if Synthesize.is_type(event.type):
                connection.texts.append(Synthesize.from_event(event).text)
            await async_write_event(event, engine)
        connection.ended = time.monotonic()
        if engine.can_write_eof():
            engine.write_eof()

    async def _answers(
        self, engine: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Pass the engine host's answers back as they are."""
        while data := await engine.read(_ANSWER_READ_BYTES):
            writer.write(data)
            await writer.drain()
        writer.close()
