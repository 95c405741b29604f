"""Bounded Wyoming framing: one JSON header line, then optional data and payload.

The ``wyoming`` library's reader trusts its peer (any ``data_length`` is read).
Here every part of a frame has a ceiling, and a frame that breaks one is a
``FrameError`` for that connection alone.
"""

import asyncio
from dataclasses import dataclass
import json
from typing import Any

from wyoming.event import Event

from .engines import ErrorCode


class FrameError(Exception):
    """A frame that is malformed or over a limit; the connection must end."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        """Carry a machine-readable ``code`` for Wyoming's ``error`` event."""
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameLimits:
    """Ceilings for one frame."""

    header_bytes: int = 64 * 1024
    data_bytes: int = 256 * 1024
    # One second of 48 kHz stereo is 192 kB; nothing legitimate sends more at once.
    payload_bytes: int = 512 * 1024


async def read_frame(reader: asyncio.StreamReader, limits: FrameLimits) -> Event | None:
    """Read one event; None at a clean end of stream.

    ``reader`` must have been created with ``limit=limits.header_bytes`` so that
    an endless header line is refused before it is buffered.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial.strip():
            return None
        raise FrameError(
            ErrorCode.BAD_FRAME, "connection closed inside a header"
        ) from err
    except asyncio.LimitOverrunError as err:
        msg = f"header line longer than {limits.header_bytes} bytes"
        raise FrameError(ErrorCode.FRAME_TOO_LARGE, msg) from err

    try:
        header = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FrameError(ErrorCode.BAD_FRAME, "header is not JSON") from err
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise FrameError(ErrorCode.BAD_FRAME, "header has no event type")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise FrameError(ErrorCode.BAD_FRAME, "event data is not an object")

    data_length = _length(header, "data_length", limits.data_bytes)
    if data_length:
        try:
            extra = json.loads(await _read_exactly(reader, data_length))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FrameError(ErrorCode.BAD_FRAME, "event data is not JSON") from err
        if not isinstance(extra, dict):
            raise FrameError(ErrorCode.BAD_FRAME, "event data is not an object")
        data = {**data, **extra}

    payload_length = _length(header, "payload_length", limits.payload_bytes)
    payload = await _read_exactly(reader, payload_length) if payload_length else None
    return Event(type=header["type"], data=data, payload=payload)


def _length(header: dict[str, Any], key: str, ceiling: int) -> int:
    value = header.get(key) or 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FrameError(ErrorCode.BAD_FRAME, f"{key} is not a non-negative integer")
    if value > ceiling:
        msg = f"{key} {value} is over the limit of {ceiling} bytes"
        raise FrameError(ErrorCode.FRAME_TOO_LARGE, msg)
    return value


async def _read_exactly(reader: asyncio.StreamReader, count: int) -> bytes:
    try:
        return await reader.readexactly(count)
    except asyncio.IncompleteReadError as err:
        raise FrameError(
            ErrorCode.BAD_FRAME, "connection closed inside a frame"
        ) from err
