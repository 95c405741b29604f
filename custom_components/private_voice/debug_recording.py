"""A room's debug recording: the one exception to "no audio on disk".

Off unless the user turns it on for one room; it turns itself off after an
hour, and every recording is deleted a day after it was made (DESIGN §3). Each
stream of the room's audio that reaches the hub's Assist pipeline becomes one
WAV file under ``<config>/private_voice/debug_recordings/<area>/``, written
when the stream ends, off the event loop.
"""

from datetime import datetime, timedelta
from pathlib import Path
import time
from typing import Final
import wave

from homeassistant.core import HomeAssistant

from .const import DOMAIN, LOGGER

DEBUG_RECORDING_DIR: Final = f"{DOMAIN}/debug_recordings"
# How long a recording stays on once turned on, and how long its files are kept.
DEBUG_RECORDING_DURATION: Final = timedelta(hours=1)
DEBUG_RECORDING_KEEP: Final = timedelta(days=1)
# The Assist pipeline's audio: 16 kHz, 16-bit, mono.
_RATE: Final = 16000
# An always-streaming satellite's wake word stream never ends: one file holds
# at most this much; the rest of the stream is not recorded.
_MAX_BYTES: Final = 5 * 60 * _RATE * 2


def recordings_dir(hass: HomeAssistant, area_id: str | None = None) -> Path:
    """Return where debug recordings (of one room) are written."""
    base = Path(hass.config.path(DEBUG_RECORDING_DIR))
    return base / area_id if area_id is not None else base


class StreamRecording:
    """One stream of a room's audio, held in memory until it ends."""

    def __init__(self, hass: HomeAssistant, path: Path) -> None:
        """Record into ``path`` (written when the stream ends)."""
        self._hass = hass
        self._path = path
        self._pcm = bytearray()

    def write(self, pcm: bytes) -> None:
        """Add the stream's next chunk."""
        if len(self._pcm) + len(pcm) <= _MAX_BYTES:
            self._pcm += pcm

    def close(self) -> None:
        """Write the recording, off the event loop; nothing for an empty stream."""
        if self._pcm:
            self._hass.async_add_executor_job(_write_wav, self._path, bytes(self._pcm))
        self._pcm.clear()


def _write_wav(path: Path, pcm: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(_RATE)
            wav.writeframes(pcm)
    except OSError as err:
        LOGGER.warning("Cannot write the debug recording %s: %s", path, err)


def prune_recordings(directory: Path, now: datetime) -> int:
    """Delete recordings older than a day, and emptied folders; return how many."""
    if not directory.is_dir():
        return 0
    oldest = now.timestamp() - DEBUG_RECORDING_KEEP.total_seconds()
    deleted = 0
    for path in directory.rglob("*.wav"):
        try:
            if path.stat().st_mtime < oldest:
                path.unlink()
                deleted += 1
        except OSError as err:
            LOGGER.warning("Cannot delete the debug recording %s: %s", path, err)
    for folder in sorted(directory.glob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return deleted


def recording_name(now: float | None = None) -> str:
    """Name one stream's file by when it began, to the millisecond (UTC)."""
    now = time.time() if now is None else now
    return (
        time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.3f}"[1:] + ".wav"
    )
