"""Bounded Wyoming framing."""

import asyncio
import io
import json

import pytest
from wyoming.audio import AudioChunk
from wyoming.event import write_event

from custom_components.private_voice.engine_host.wire import (
    FrameError,
    FrameLimits,
    read_frame,
)

LIMITS = FrameLimits(header_bytes=1024, data_bytes=512, payload_bytes=4096)


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=LIMITS.header_bytes)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _encode(chunk: AudioChunk) -> bytes:
    """Encode with the wyoming library's own writer."""
    buffer = io.BytesIO()
    write_event(chunk.event(), buffer)
    return buffer.getvalue()


async def test_reads_what_the_wyoming_library_writes() -> None:
    """data_length blocks and payloads parse as the library's own reader would."""
    chunk = AudioChunk(rate=16000, width=2, channels=1, audio=b"\x01\x02" * 100)
    event = await read_frame(_reader(_encode(chunk)), LIMITS)
    assert event is not None
    parsed = AudioChunk.from_event(event)
    assert (parsed.rate, parsed.width, parsed.channels) == (16000, 2, 1)
    assert parsed.audio == chunk.audio


async def test_inline_data_parses() -> None:
    """Peers that put ``data`` in the header line (e.g. ESP32 firmware) work."""
    header = {"type": "audio-start", "data": {"rate": 16000, "width": 2, "channels": 1}}
    event = await read_frame(_reader(json.dumps(header).encode() + b"\n"), LIMITS)
    assert event is not None
    assert event.type == "audio-start"
    assert event.data == {"rate": 16000, "width": 2, "channels": 1}


async def test_inline_and_block_data_merge() -> None:
    """Both forms in one frame: the block adds to the inline data."""
    block = json.dumps({"width": 2}).encode()
    header = {"type": "audio-start", "data": {"rate": 16000}, "data_length": len(block)}
    frame = json.dumps(header).encode() + b"\n" + block
    event = await read_frame(_reader(frame), LIMITS)
    assert event is not None
    assert event.data == {"rate": 16000, "width": 2}


async def test_clean_end_of_stream() -> None:
    """No bytes at all is the end, not an error."""
    assert await read_frame(_reader(b""), LIMITS) is None


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"not json\n", "bad-frame"),
        (b"[1, 2]\n", "bad-frame"),
        (b'{"data": {}}\n', "bad-frame"),
        (b'{"type": "x", "data": [1]}\n', "bad-frame"),
        (b'{"type": "x", "data_length": -1}\n', "bad-frame"),
        (b'{"type": "x", "data_length": "5"}\n', "bad-frame"),
        (b'{"type": "x", "data_length": 4}\n[1] ', "bad-frame"),
        (b'{"type": "x", "data_length": 3}\n{"a', "bad-frame"),
        (b'{"type": "x", "data_length": 513}\n', "frame-too-large"),
        (b'{"type": "x", "payload_length": 4097}\n', "frame-too-large"),
        (b'{"type": "x", "payload_length": 10}\nshort', "bad-frame"),
        (b'{"type": "x"', "bad-frame"),
        (b"\xff\xfe\n", "bad-frame"),
        (b"x" * 2000 + b"\n", "frame-too-large"),
    ],
)
async def test_bad_frames_are_refused(frame: bytes, code: str) -> None:
    """Malformed or oversized frames raise FrameError with a code."""
    with pytest.raises(FrameError) as err:
        await read_frame(_reader(frame), LIMITS)
    assert err.value.code == code
