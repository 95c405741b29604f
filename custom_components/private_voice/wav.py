"""Read a WAV stream as it arrives: its format first, then its PCM.

A streamed WAV (Home Assistant's TTS streams, our engines' replies) cannot give
its length in the header, so ``wave`` is of no use: this reads the ``fmt ``
chunk and treats everything after the ``data`` chunk's header as PCM.
"""

from collections.abc import AsyncIterable, AsyncIterator
import struct
from typing import Final

from .engine_host.formats import PcmFormat

_RIFF_HEADER_BYTES: Final = 12
_SAMPLE_BITS: Final = 16
_PCM: Final = 1
_EXTENSIBLE: Final = 0xFFFE
# Bigger headers are not WAV from a speech engine.
_MAX_HEADER_BYTES: Final = 64 * 1024


class WavError(Exception):
    """The stream is not 16-bit PCM WAV."""


def _parse_header(buffer: bytes) -> tuple[PcmFormat, int] | None:
    """Return the format and where the PCM starts; None if more is needed."""
    if len(buffer) < _RIFF_HEADER_BYTES:
        return None
    if buffer[:4] != b"RIFF" or buffer[8:12] != b"WAVE":
        msg = "not a WAV stream (no RIFF/WAVE header)"
        raise WavError(msg)
    offset = _RIFF_HEADER_BYTES
    pcm_format: PcmFormat | None = None
    while len(buffer) >= offset + 8:
        chunk_id = buffer[offset : offset + 4]
        (size,) = struct.unpack_from("<I", buffer, offset + 4)
        body = offset + 8
        if chunk_id == b"data":
            if pcm_format is None:
                msg = "WAV data before its fmt chunk"
                raise WavError(msg)
            return pcm_format, body
        if len(buffer) < body + size:
            return None
        if chunk_id == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack_from(
                "<HHIIHH", buffer, body
            )
            if tag not in {_PCM, _EXTENSIBLE} or bits != _SAMPLE_BITS:
                msg = f"WAV of format {tag} with {bits}-bit samples, not 16-bit PCM"
                raise WavError(msg)
            pcm_format = PcmFormat(rate, 2, channels)
        offset = body + size + size % 2
    return None


async def async_wav_pcm(
    stream: AsyncIterable[bytes],
) -> tuple[PcmFormat, AsyncIterator[bytes]]:
    """Read the header of a WAV stream; return its format and the PCM to come."""
    chunks = aiter(stream)
    buffer = b""
    while (parsed := _parse_header(buffer)) is None:
        if len(buffer) > _MAX_HEADER_BYTES:
            msg = "no WAV data chunk in the first 64 KiB"
            raise WavError(msg)
        try:
            buffer += await anext(chunks)
        except StopAsyncIteration:
            msg = "the WAV stream ended inside its header"
            raise WavError(msg) from None
    pcm_format, start = parsed

    async def _pcm() -> AsyncIterator[bytes]:
        if rest := buffer[start:]:
            yield rest
        async for data in chunks:
            yield data

    return pcm_format, _pcm()
