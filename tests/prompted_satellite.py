"""The simulated ESP32-S3 satellite (on-device wake), with someone answering it.

Enrolment makes the satellite say a prompt, then waits for the person to say
the wake word and the phrase. ``PromptedSatellite`` plays that person: each
time it has played something the hub sent, it says the next of its answers
(detection on the device, then the phrase). ``say`` speaks a command.
"""

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import override

from wyoming.audio import AudioStart, AudioStop
from wyoming.event import Event
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.wake import Detection

from .protocol.simulator import WAKE_WORD, Device, Firmware, SimulatedSatellite

_PROMPT_SECONDS = 2.2


class PromptedSatellite(SimulatedSatellite):
    """A satellite whose person answers each prompt with the next utterance."""

    def __init__(
        self, answers: Iterable[bytes] = (), device: Device | None = None
    ) -> None:
        """Answer prompts with ``answers``, in order (16 kHz mono PCM each)."""
        super().__init__(b"", device or Device(firmware=Firmware.ON_DEVICE_WAKE))
        self.answers = deque(answers)
        self._writer: asyncio.StreamWriter | None = None
        self._speaking: set[asyncio.Task[None]] = set()

    async def say(self, audio: bytes) -> None:
        """Say ``audio`` after the wake word (after a pause, as people do)."""
        assert self._writer is not None, "not connected"
        await self._answer(self._writer, audio)

    @override
    async def _play(self, event: Event, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        await super()._play(event, writer)
        if AudioStop.is_type(event.type) and self.answers:
            task = asyncio.create_task(self._answer(writer, self.answers.popleft()))
            self._speaking.add(task)
            task.add_done_callback(self._speaking.discard)

    @override
    async def _stream_mic(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        await super()._stream_mic(writer)

    async def _answer(self, writer: asyncio.StreamWriter, audio: bytes) -> None:
        # The simulator plays "instantly"; a real speaker takes seconds to say
        # a prompt, and Home Assistant ignores a wake word heard again within
        # 2 s (a duplicate wake-up): the person answers after that.
        await asyncio.sleep(_PROMPT_SECONDS)
        await self._utter(writer, audio)

    async def _utter(self, writer: asyncio.StreamWriter, audio: bytes) -> None:
        mic = self.device.mic_format
        await self._send(writer, Detection(name=WAKE_WORD, timestamp=0).event())
        await self._send(
            writer,
            RunPipeline(
                start_stage=PipelineStage.ASR,
                end_stage=PipelineStage.TTS,
                wake_word_name=WAKE_WORD,
            ).event(),
        )
        await self._send(writer, AudioStart(mic.rate, mic.width, mic.channels).event())
        for offset in range(0, len(audio), self.chunk_bytes):
            await self._chunk(writer, audio[offset : offset + self.chunk_bytes])
        await self._send(writer, AudioStop().event())

    @override
    async def stop(self) -> None:
        for task in self._speaking:
            task.cancel()
        await asyncio.gather(*self._speaking, return_exceptions=True)
        await super().stop()
