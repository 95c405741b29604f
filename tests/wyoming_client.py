"""Client-side steps shared by the tests of our Wyoming servers.

The engine host and the public service answer the same requests; these drive
them the same way, with the real ``wyoming`` client.
"""

import asyncio

from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop


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
