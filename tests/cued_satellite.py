"""The simulated ESP32-S3 satellite, spoken to when a test says so.

``SimulatedSatellite`` speaks as soon as the hub sends ``run-satellite``; a
privacy test first puts the room in a mode, then has someone speak. Paced, the
microphone sends each chunk once it has been said (as a real one does), so
that a mode can change while the words are still coming.
"""

import asyncio
from typing import override

from .protocol.simulator import Device, SimulatedSatellite


class CuedSatellite(SimulatedSatellite):
    """A simulated satellite whose speaker starts talking on ``cue``."""

    def __init__(
        self, mic_audio: bytes, device: Device | None = None, *, paced: bool = False
    ) -> None:
        """Say ``mic_audio`` once cued; ``paced``: in real time."""
        super().__init__(mic_audio, device)
        self.paced = paced
        self._cue = asyncio.Event()
        # Set once the whole of ``mic_audio`` has been sent.
        self.said_all = asyncio.Event()

    def cue(self) -> None:
        """Start talking (now, or as soon as the microphone runs)."""
        self._cue.set()

    @override
    async def _stream_mic(self, writer: asyncio.StreamWriter) -> None:
        await self._cue.wait()
        await super()._stream_mic(writer)

    @override
    async def _say(self, writer: asyncio.StreamWriter) -> None:
        await super()._say(writer)
        self.said_all.set()

    @override
    async def _chunk(
        self, writer: asyncio.StreamWriter, audio: bytes, *, rate: int | None = None
    ) -> None:
        await super()._chunk(writer, audio, rate=rate)
        if self.paced:
            await asyncio.sleep(len(audio) / self.device.mic_format.bytes_per_second)
