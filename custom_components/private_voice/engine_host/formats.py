"""Raw PCM formats: what the engine host and Home Assistant's side accept.

No imports beyond the standard library and ``wyoming``: Home Assistant uses this
where numpy and the engines' packages are not installed (musl).
"""

from dataclasses import dataclass
from typing import Self

from wyoming.audio import AudioFormat

MIN_RATE = 8000
MAX_RATE = 48000
SAMPLE_WIDTH = 2
MONO = 1
STEREO = 2


class AudioFormatError(ValueError):
    """An audio format outside 8-48 kHz, 16-bit, 1-2 channels."""


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """Raw little-endian PCM: samples per second, bytes per sample, channels."""

    rate: int
    width: int
    channels: int

    @classmethod
    def of(cls, audio: AudioFormat) -> Self:
        """Take the format a Wyoming audio event or program declares."""
        return cls(audio.rate, audio.width, audio.channels)

    def validate(self) -> None:
        """Raise AudioFormatError unless 8-48 kHz, 16-bit, 1-2 channels."""
        if not all(
            type(value) is int for value in (self.rate, self.width, self.channels)
        ):
            msg = "rate, width and channels must be whole numbers"
            raise AudioFormatError(msg)
        if not MIN_RATE <= self.rate <= MAX_RATE:
            msg = f"rate {self.rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz"
            raise AudioFormatError(msg)
        if self.width != SAMPLE_WIDTH:
            msg = f"sample width {self.width} bytes is not supported (only 2)"
            raise AudioFormatError(msg)
        if self.channels not in {MONO, STEREO}:
            msg = f"{self.channels} channels are not supported (only 1 or 2)"
            raise AudioFormatError(msg)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample on every channel."""
        return self.width * self.channels

    @property
    def bytes_per_second(self) -> int:
        """Bytes of one second of this audio."""
        return self.rate * self.frame_bytes


# What every engine takes.
ENGINE_RATE = 16000
ENGINE_FORMAT = PcmFormat(ENGINE_RATE, SAMPLE_WIDTH, MONO)
