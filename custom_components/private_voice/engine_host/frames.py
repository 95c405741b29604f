"""Fixed-size frames cut from a stream that arrives in chunks of any size."""

import numpy as np


class Framer:
    """Cut one stream of int16 samples into frames of ``size`` samples.

    A partial frame waits for the next chunk, so the frames, and what a
    model makes of them, do not depend on how the client chunks its audio.
    """

    def __init__(self, size: int) -> None:
        """Cut frames of ``size`` samples."""
        self._size = size
        self._pending = np.zeros(0, dtype=np.int16)

    def frames(self, samples: np.ndarray) -> np.ndarray:
        """Return the whole frames ``samples`` complete, one per row."""
        audio = np.concatenate((self._pending, samples))
        usable = len(audio) - len(audio) % self._size
        self._pending = audio[usable:]
        frames: np.ndarray = audio[:usable].reshape(-1, self._size)
        return frames
