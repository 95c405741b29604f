"""Raw PCM formats and stream conversion on Home Assistant's side.

The engine host converts with numpy; Home Assistant has no numpy on every
install, but ships ``audioop`` (audioop-lts), which is enough for 16-bit audio:
mix down, resample, mix up.
"""

import audioop

from ..engine_host.formats import SAMPLE_WIDTH, PcmFormat


class PcmConverter:
    """Convert one stream of PCM chunks from one valid format to another.

    Stateful, so chunk boundaries do not matter: a partial frame waits for the
    next chunk and the resampler's position carries over, which makes the
    result of many chunks the same as that of the whole stream at once.
    """

    def __init__(self, source: PcmFormat, target: PcmFormat) -> None:
        """Convert from ``source`` to ``target``; AudioFormatError if unsupported."""
        source.validate()
        target.validate()
        self.source = source
        self.target = target
        self._pending = b""
        self._ratecv_state: tuple[int, tuple[tuple[int, int], ...]] | None = None

    def convert(self, data: bytes) -> bytes:
        """Return the converted audio of the whole frames ``data`` completes."""
        data = self._pending + data
        usable = len(data) - len(data) % self.source.frame_bytes
        self._pending = data[usable:]
        audio = data[:usable]
        # Mix down before resampling and up after: the resampler does less work.
        if self.source.channels > self.target.channels:
            audio = audioop.tomono(audio, SAMPLE_WIDTH, 0.5, 0.5)
        if self.source.rate != self.target.rate:
            audio, self._ratecv_state = audioop.ratecv(
                audio,
                SAMPLE_WIDTH,
                min(self.source.channels, self.target.channels),
                self.source.rate,
                self.target.rate,
                self._ratecv_state,
            )
        if self.source.channels < self.target.channels:
            audio = audioop.tostereo(audio, SAMPLE_WIDTH, 1.0, 1.0)
        return audio
