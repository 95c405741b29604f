"""A bounded Wyoming client connection, and the one-shot requests built on it."""

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong

from ..engine_host.wire import FrameError, FrameLimits, read_frame

CONNECT_TIMEOUT = 5.0
REPLY_TIMEOUT = 5.0


class PeerError(Exception):
    """A Wyoming peer that cannot be reached, breaks the protocol or refuses."""

    def __init__(self, message: str, *, refusal: Error | None = None) -> None:
        """Describe the failure; ``refusal``: the peer's own ``error`` event."""
        super().__init__(message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a Wyoming service listens."""

    host: str
    port: int

    @classmethod
    def from_uri(cls, uri: str) -> Self:
        """Parse ``tcp://HOST:PORT``; ValueError for anything else."""
        parts = urlsplit(uri.strip())
        try:
            port = parts.port
        except ValueError as err:
            msg = f"{uri!r} has no valid port"
            raise ValueError(msg) from err
        if parts.scheme != "tcp" or not parts.hostname or port is None:
            msg = f"{uri!r} is not tcp://HOST:PORT"
            raise ValueError(msg)
        return cls(parts.hostname, port)

    @property
    def uri(self) -> str:
        """The endpoint as ``tcp://HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


class WyomingConnection:
    """One TCP connection to a Wyoming peer, read with bounded frames."""

    def __init__(self, endpoint: Endpoint, limits: FrameLimits | None = None) -> None:
        """Prepare a connection to ``endpoint`` (opened by ``async with``)."""
        self.endpoint = endpoint
        self._limits = limits or FrameLimits()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Self:
        """Connect; PeerError if the peer cannot be reached in time."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                self._reader, self._writer = await asyncio.open_connection(
                    self.endpoint.host,
                    self.endpoint.port,
                    limit=self._limits.header_bytes,
                )
        except (OSError, TimeoutError) as err:
            msg = f"cannot connect to {self.endpoint.uri}: {str(err) or 'timed out'}"
            raise PeerError(msg) from err
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):  # already gone: nothing to close
                await self._writer.wait_closed()
            self._writer = None
            self._reader = None

    async def write(self, event: Event) -> None:
        """Send one event; PeerError if the connection is gone."""
        if self._writer is None:
            msg = f"not connected to {self.endpoint.uri}"
            raise PeerError(msg)
        try:
            await async_write_event(event, self._writer)
        except OSError as err:
            msg = f"lost connection to {self.endpoint.uri}: {err}"
            raise PeerError(msg) from err

    async def read(self) -> Event:
        """Receive one event; PeerError at the end of stream or on bad frames.

        An ``error`` event from the peer is raised as PeerError with its text.
        """
        if self._reader is None:
            msg = f"not connected to {self.endpoint.uri}"
            raise PeerError(msg)
        try:
            event = await read_frame(self._reader, self._limits)
        except (OSError, FrameError) as err:
            msg = f"bad reply from {self.endpoint.uri}: {err}"
            raise PeerError(msg) from err
        if event is None:
            msg = f"{self.endpoint.uri} closed the connection"
            raise PeerError(msg)
        if Error.is_type(event.type):
            error = Error.from_event(event)
            msg = f"{self.endpoint.uri} refused: {error.text} ({error.code})"
            raise PeerError(msg, refusal=error)
        return event

    async def read_until(self, event_type: str) -> Event:
        """Skip events until one of ``event_type`` arrives."""
        while (event := await self.read()).type != event_type:
            pass
        return event


async def async_describe(endpoint: Endpoint) -> Info:
    """Ask a peer what it offers; PeerError if it does not answer in time."""
    async with WyomingConnection(endpoint) as connection:
        await connection.write(Describe().event())
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                return Info.from_event(await connection.read_until("info"))
        except TimeoutError as err:
            msg = f"{endpoint.uri} did not answer describe"
            raise PeerError(msg) from err


async def async_ping(endpoint: Endpoint) -> None:
    """Check that a peer answers ``ping``; PeerError if it does not in time."""
    async with WyomingConnection(endpoint) as connection:
        await connection.write(Ping().event())
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                Pong.from_event(await connection.read_until("pong"))
        except TimeoutError as err:
            msg = f"{endpoint.uri} did not answer ping"
            raise PeerError(msg) from err
