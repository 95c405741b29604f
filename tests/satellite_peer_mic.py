"""A microphone for the wyoming-satellite peer: raw PCM on stdout, in real time.

The satellite runs this as its ``--mic-command`` and reads 16 kHz 16-bit mono
PCM from it. It hears silence until the start file exists (the test creates it
once the hub is listening), then, after a short pause, the speech from a raw
PCM file, then silence until it is stopped. Standard library only: it runs
under any Python 3.
"""

import argparse
from collections.abc import Iterator
import os
from pathlib import Path
import sys
import time

RATE = 16000
SAMPLE_BYTES = 2
# What the satellite reads at a time (its default 1024 samples, 64 ms).
CHUNK_BYTES = 1024 * SAMPLE_BYTES
CHUNK_SECONDS = CHUNK_BYTES / (RATE * SAMPLE_BYTES)


def sound(speech: bytes, start_file: Path, pause: float) -> Iterator[bytes]:
    """Yield chunks: silence until ``start_file`` exists, the speech, silence."""
    silence = bytes(CHUNK_BYTES)
    while not start_file.exists():
        yield silence
    said = bytes(int(pause * RATE) * SAMPLE_BYTES) + speech
    for offset in range(0, len(said), CHUNK_BYTES):
        yield said[offset : offset + CHUNK_BYTES].ljust(CHUNK_BYTES, b"\0")
    while True:
        yield silence


def main() -> None:
    """Write the chunks at the pace a microphone records them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("speech", type=Path, help="raw 16 kHz 16-bit mono PCM")
    parser.add_argument("start_file", type=Path, help="speak once this exists")
    parser.add_argument(
        "--pause", type=float, default=0.5, help="seconds of silence before speaking"
    )
    args = parser.parse_args()
    out = sys.stdout.buffer
    begun = time.monotonic()
    try:
        for index, chunk in enumerate(
            sound(args.speech.read_bytes(), args.start_file, args.pause)
        ):
            # A chunk is there once it has been recorded; pacing by the clock
            # keeps the stream in real time however long writing takes.
            time.sleep(max(0.0, begun + (index + 1) * CHUNK_SECONDS - time.monotonic()))
            out.write(chunk)
            out.flush()
    except BrokenPipeError:
        # The satellite stopped reading (it exits or restarts its microphone);
        # nothing is left to flush at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
