"""Client-side steps shared by the tests of our Wyoming servers.

The engine host and the public service answer the same requests; these drive
them the same way, with the real ``wyoming`` client.
"""

import asyncio
from collections.abc import Iterator

from wyoming.audio import AudioChunk
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop
from wyoming.wake import Detect, Detection

WAKE_WORD = "okay_nabu"
# What wyoming-satellite streams: 16 kHz 16-bit mono, 1024 samples a chunk.
MIC_RATE = 16000
MIC_CHUNK_BYTES = 2048


async def read_until(client: AsyncTcpClient, *types: str) -> list[Event]:
    """Read events until one of ``types`` (inclusive) or an error."""
    events: list[Event] = []
    while True:
        async with asyncio.timeout(60):
            event = await client.read_event()
        assert event is not None, f"connection closed after {[e.type for e in events]}"
        events.append(event)
        if event.type in types or Error.is_type(event.type):
            return events


async def assert_streaming_synthesis_speaks_early(port: int) -> None:
    """Hear the first sentence while the rest of the text is still unsent."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="Good morning. The kit").event())
        first = await read_until(client, "audio-stop")
        assert first[0].type == "audio-start"
        assert any(e.type == "audio-chunk" for e in first)
        await client.write_event(SynthesizeChunk(text="chen lights are on.").event())
        # Clients also send the whole text, for servers that cannot stream.
        whole = "Good morning. The kitchen lights are on."
        await client.write_event(Synthesize(text=whole).event())
        await client.write_event(SynthesizeStop().event())
        rest = await read_until(client, "synthesize-stopped")
    assert rest[-1].type == "synthesize-stopped"
    # One more sentence, spoken once: the compatibility copy is not spoken again.
    assert [e.type for e in rest].count("audio-start") == 1


def mic_chunks(audio: bytes, rate: int = MIC_RATE) -> Iterator[Event]:
    """16-bit mono audio as a satellite streams it, 2048 bytes a chunk."""
    for offset in range(0, len(audio), MIC_CHUNK_BYTES):
        chunk = audio[offset : offset + MIC_CHUNK_BYTES]
        yield AudioChunk(rate=rate, width=2, channels=1, audio=chunk).event()


async def _say(client: AsyncTcpClient, audio: bytes) -> Detection:
    """Stream ``audio`` (the wake word once); return the detection it brings."""
    for chunk in mic_chunks(audio):
        await client.write_event(chunk)
    events = await read_until(client, "detection", "not-detected")
    assert [event.type for event in events] == ["detection"]
    return Detection.from_event(events[-1])


async def assert_implicit_wake_stream_reports_every_detection(
    port: int, phrase: bytes
) -> None:
    """Stream to a wake service as wyoming-satellite does; hear every detection.

    ``detect``, then chunks with no audio-start, and never an audio-stop; a
    new ``detect`` after each command, on the same stream; ``describe`` (the
    newest satellites ask) and ``ping`` answered inside it. ``phrase`` (16 kHz
    mono, the wake word once, at least 2 s long) is said three times: after
    the first detect, after the second, and once more with none: each
    detection comes as it happens, and none ends the stream.
    """
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Detect(names=[WAKE_WORD]).event())
        first = await _say(client, phrase)
        await client.write_event(Describe().event())
        info = Info.from_event((await read_until(client, "info"))[-1])
        await client.write_event(Detect(names=[WAKE_WORD]).event())
        second = await _say(client, phrase)
        third = await _say(client, phrase)
        await client.write_event(Ping(text="still there").event())
        # Nothing else came: no not-detected, no error, the stream goes on.
        assert [e.type for e in await read_until(client, "pong")] == ["pong"]
    assert WAKE_WORD in {
        model.name for program in info.wake for model in program.models
    }
    assert {first.name, second.name, third.name} == {WAKE_WORD}
    # Timestamps count from the start of the stream, across detects.
    assert first.timestamp is not None
    assert second.timestamp is not None
    assert third.timestamp is not None
    phrase_ms = len(phrase) // 2 * 1000 // MIC_RATE
    assert abs(second.timestamp - first.timestamp - phrase_ms) <= 50
    assert abs(third.timestamp - second.timestamp - phrase_ms) <= 50


async def assert_a_change_of_format_is_refused(port: int) -> None:
    """Send a chunk in another format mid-stream; expect an error, then the close."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Detect(names=[WAKE_WORD]).event())
        for chunk in mic_chunks(bytes(MIC_CHUNK_BYTES * 8)):
            await client.write_event(chunk)
        await client.write_event(Ping().event())
        # The stream is open: its chunks were taken.
        assert [e.type for e in await read_until(client, "pong")] == ["pong"]
        (chunk,) = mic_chunks(bytes(MIC_CHUNK_BYTES), rate=22050)
        await client.write_event(chunk)
        events = await read_until(client, "error")
        assert Error.from_event(events[-1]).code == "bad-audio-format"
        async with asyncio.timeout(10):
            assert await client.read_event() is None
