"""The short chime a Quiet room hears instead of a spoken reply."""

from functools import cache
import math
from typing import Final

from .engine_host.formats import PcmFormat

CHIME_FORMAT: Final = PcmFormat(22050, 2, 1)
# Two soft rising tones (E6, A6): heard, understood, not spoken.
_TONES: Final = ((1318.5, 0.09), (1760.0, 0.16))
_VOLUME: Final = 0.2
# Fade in and out over this long, so that no tone clicks.
_FADE_SECONDS: Final = 0.01


@cache
def chime_pcm() -> bytes:
    """Return the chime as 16-bit mono PCM in ``CHIME_FORMAT`` (about 0.25 s)."""
    rate = CHIME_FORMAT.rate
    fade = int(_FADE_SECONDS * rate)
    samples = bytearray()
    for frequency, seconds in _TONES:
        count = int(seconds * rate)
        for i in range(count):
            envelope = min(1.0, i / fade, (count - i) / fade)
            value = _VOLUME * envelope * math.sin(2 * math.pi * frequency * i / rate)
            samples += int(value * 32767).to_bytes(2, "little", signed=True)
    return bytes(samples)
