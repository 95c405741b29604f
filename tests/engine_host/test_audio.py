"""Conversion of any accepted PCM format to the engines' 16 kHz mono int16."""

import numpy as np
import pytest

from custom_components.private_voice.engine_host.audio import ToEngineFormat
from custom_components.private_voice.engine_host.formats import (
    AudioFormatError,
    PcmFormat,
)


def _tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 10000).astype(np.int16)


def _dominant_hz(samples: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize(
    ("rate", "width", "channels", "reason"),
    [
        (4000, 2, 1, "rate"),
        (96000, 2, 1, "rate"),
        (16000, 1, 1, "width"),
        (16000, 4, 1, "width"),
        (16000, 2, 0, "channels"),
        (16000, 2, 6, "channels"),
    ],
)
def test_unsupported_formats_are_refused(
    rate: int, width: int, channels: int, reason: str
) -> None:
    """Outside 8-48 kHz, 16-bit, 1-2 channels: a clear error."""
    with pytest.raises(AudioFormatError, match=reason):
        ToEngineFormat(PcmFormat(rate, width, channels))


def test_engine_format_passes_through() -> None:
    """16 kHz mono is returned sample for sample."""
    tone = _tone(16000, 0.5)
    out = ToEngineFormat(PcmFormat(16000, 2, 1)).convert(tone.tobytes())
    np.testing.assert_array_equal(out, tone)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("chunk_bytes", [2048, 1001, 7777])
def test_resampling_keeps_pitch_and_length_across_chunks(
    rate: int, chunk_bytes: int
) -> None:
    """Any chunking (odd sizes too) gives the right length and frequency."""
    data = _tone(rate, 1.0).tobytes()
    converter = ToEngineFormat(PcmFormat(rate, 2, 1))
    out = np.concatenate(
        [
            converter.convert(data[i : i + chunk_bytes])
            for i in range(0, len(data), chunk_bytes)
        ]
    )
    assert abs(len(out) - 16000) <= 2
    assert abs(_dominant_hz(out) - 440.0) < 2.0
    # No clicks at chunk boundaries: the signal stays a smooth sine.
    assert np.abs(np.diff(out.astype(np.int32))).max() < 2000


def test_downsampling_removes_what_16k_cannot_carry() -> None:
    """A 12 kHz tone at 48 kHz would alias to 4 kHz; the low-pass removes it."""
    out = ToEngineFormat(PcmFormat(48000, 2, 1)).convert(
        _tone(48000, 0.5, 12000).tobytes()
    )
    assert np.abs(out[100:]).max() < 1500


def test_stereo_is_mixed_to_mono() -> None:
    """Two channels become their mean."""
    left = _tone(16000, 0.1)
    stereo = np.stack([left, np.zeros_like(left)], axis=1).reshape(-1)
    out = ToEngineFormat(PcmFormat(16000, 2, 2)).convert(stereo.tobytes())
    np.testing.assert_allclose(out, left / 2, atol=1)
