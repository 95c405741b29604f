"""The real ``wyoming-satellite`` (1.0.0, on PyPI) as a peer for the hub's tests.

It runs as a subprocess from its own venv, ``.peers/wyoming-satellite`` (made by
``scripts/setup``; it pins wyoming 1.4.1), listening on a loopback port for the
hub to connect, as on a Raspberry Pi. Its microphone is ``satellite_peer_mic.py``
(silence, then the given speech once the test says so, then silence); its
speaker appends what it plays, as raw PCM, to a file.

What 1.0.0 does, read from its source (``wyoming_satellite/satellite.py``):

- Without a wake service it streams the microphone from ``run-satellite`` on
  and asks once for ``run-pipeline`` from ``wake`` to ``tts``; it has no
  ``restart_on_end`` (wyoming 1.4.1 predates it) and never sends
  ``audio-start`` or ``audio-stop``.
- With ``--wake-uri`` it streams the microphone to the wake service (``detect``,
  then ``audio-chunk`` events with no ``audio-start``); on a detection it asks
  for ``run-pipeline`` from ``asr`` (no wake word name, and the ``detection``
  is not passed to the hub), streams until a ``transcript`` arrives, then
  listens for the wake word again.
- It never answers ``ping`` and never sends ``played``; it ignores
  ``pause-satellite``.
- The speaker program is started for each reply and its input closed after
  ``audio-stop``; replies are converted to ``--snd-command-rate``.
"""

import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass
import os
from pathlib import Path
import shlex
import signal
import socket
import sys

import pytest

from custom_components.private_voice.protocol.client import Endpoint

PEER_VENV = Path(__file__).parent.parent / ".peers" / "wyoming-satellite"
PEER_PYTHON = PEER_VENV / "bin" / "python"
MIC_PROGRAM = Path(__file__).parent / "satellite_peer_mic.py"
NAME = "Kitchen satellite"
# The speaker's format: piper's own rate, so a reply is played unconverted.
SND_RATE = 22050
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0

requires_satellite_peer = pytest.mark.skipif(
    not PEER_PYTHON.exists(),
    reason=f"the wyoming-satellite peer is not installed in {PEER_VENV}: "
    "run scripts/setup",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SatellitePeer:
    """A running wyoming-satellite: where it listens, what it played, its log."""

    endpoint: Endpoint
    process: asyncio.subprocess.Process
    start_file: Path
    snd_file: Path
    log_file: Path

    def start_speaking(self) -> None:
        """Let the microphone say its speech (after a short pause)."""
        self.start_file.touch()

    def log(self) -> str:
        """Return what the satellite has logged so far (its stderr)."""
        return self.log_file.read_text(errors="replace")

    def played(self) -> bytes:
        """Return the raw PCM played so far (SND_RATE, 16-bit mono)."""
        return self.snd_file.read_bytes() if self.snd_file.exists() else b""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _until_listening(peer: SatellitePeer) -> None:
    """Wait until the satellite accepts connections, or fail with its log."""
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            if peer.process.returncode is not None:
                msg = f"wyoming-satellite exited ({peer.process.returncode})"
                raise RuntimeError(msg)
            try:
                _, writer = await asyncio.open_connection(
                    peer.endpoint.host, peer.endpoint.port
                )
            except OSError:
                await asyncio.sleep(0.05)
                continue
            # A connection that says nothing is forgotten by the satellite.
            writer.close()
            await writer.wait_closed()
            return


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End the satellite and its microphone and speaker programs."""
    if process.returncode is None:
        # Its own process group: the programs it started end with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


@contextlib.asynccontextmanager
async def running_satellite(
    directory: Path, speech: bytes, *, wake_uri: str | None = None
) -> AsyncIterator[SatellitePeer]:
    """Run wyoming-satellite in ``directory`` with ``speech`` for its microphone.

    ``speech``: 16 kHz 16-bit mono PCM, said once ``start_speaking`` is called.
    ``wake_uri``: a Wyoming wake service for local wake word detection
    (``okay_nabu``); without it the satellite streams all the time and the
    hub detects the wake word. The satellite's log goes to stderr at the end,
    which pytest shows when the test fails.
    """
    speech_file = directory / "speech.raw"
    speech_file.write_bytes(speech)
    port = _free_port()
    peer_files = {
        "start_file": directory / "start-speaking",
        "snd_file": directory / "played.raw",
        "log_file": directory / "satellite.log",
    }
    mic = [sys.executable, str(MIC_PROGRAM), str(speech_file)]
    mic.append(str(peer_files["start_file"]))
    snd = ["sh", "-c", f"cat >> {shlex.quote(str(peer_files['snd_file']))}"]
    arguments = [
        *("--uri", f"tcp://127.0.0.1:{port}", "--name", NAME, "--no-zeroconf"),
        *("--mic-command", shlex.join(mic)),
        *("--snd-command", shlex.join(snd), "--snd-command-rate", str(SND_RATE)),
        "--debug",
    ]
    if wake_uri is not None:
        arguments += ["--wake-uri", wake_uri, "--wake-word-name", "okay_nabu"]
    with peer_files["log_file"].open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            PEER_PYTHON,
            "-m",
            "wyoming_satellite",
            *arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    peer = SatellitePeer(
        endpoint=Endpoint("127.0.0.1", port), process=process, **peer_files
    )
    try:
        await _until_listening(peer)
        yield peer
    finally:
        await _stop(process)
        # Shown by pytest when the test fails.
        sys.stderr.write(f"wyoming-satellite's log:\n{peer.log()}\n")
