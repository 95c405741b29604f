"""Audio formats and conversion to what the engines take (16 kHz, 16-bit, mono)."""

import numpy as np

from .formats import ENGINE_RATE, PcmFormat


class ToEngineFormat:
    """Convert a stream of PCM chunks to 16 kHz 16-bit mono int16 samples.

    Stateful, so chunk boundaries do not click: a partial frame, the low-pass
    filter's history and the resampler's position carry over to the next chunk.
    Downsampling low-passes with a windowed-sinc FIR first (no aliasing of
    48 kHz microphones); resampling is linear interpolation between samples.
    """

    def __init__(self, source: PcmFormat) -> None:
        """Start converting from ``source``; AudioFormatError if unsupported."""
        source.validate()
        self._channels = source.channels
        self._frame = source.width * source.channels
        self._pending = b""
        self._step = source.rate / ENGINE_RATE
        self._resampling = source.rate != ENGINE_RATE
        self._kernel = _lowpass(self._step) if self._step > 1 else None
        self._history = np.zeros(
            0 if self._kernel is None else len(self._kernel) - 1, dtype=np.float32
        )
        self._carry = np.zeros(0, dtype=np.float32)
        self._position = 0.0

    def convert(self, data: bytes) -> np.ndarray:
        """Return the int16 engine samples that ``data`` completes."""
        data = self._pending + data
        usable = len(data) - len(data) % self._frame
        self._pending = data[usable:]
        samples = np.frombuffer(data, dtype="<i2", count=usable // 2)
        if self._channels == 2:  # noqa: PLR2004
            samples = samples.reshape(-1, 2).mean(axis=1)
        if not self._resampling:
            return samples.astype(np.int16)
        return self._resample(samples.astype(np.float32))

    def _resample(self, samples: np.ndarray) -> np.ndarray:
        if self._kernel is not None:
            joined = np.concatenate((self._history, samples))
            self._history = joined[len(joined) - len(self._history) :]
            samples = np.convolve(joined, self._kernel, mode="valid").astype(np.float32)
        joined = np.concatenate((self._carry, samples))
        last = len(joined) - 1
        if last < self._position:
            self._carry = joined
            return np.zeros(0, dtype=np.int16)
        count = int((last - self._position) // self._step) + 1
        positions = self._position + self._step * np.arange(count)
        out = np.interp(positions, np.arange(len(joined)), joined)
        self._carry = joined[-1:]
        self._position = float(positions[-1] + self._step - last)
        converted: np.ndarray = np.clip(np.round(out), -32768, 32767).astype(np.int16)
        return converted


def _lowpass(step: float) -> np.ndarray:
    """Windowed-sinc low-pass FIR with its cutoff at the new Nyquist frequency."""
    taps = 8 * int(np.ceil(step)) + 1
    n = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(n / step) * np.hamming(taps)
    normalised: np.ndarray = (kernel / kernel.sum()).astype(np.float32)
    return normalised
