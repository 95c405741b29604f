"""Speech-to-text with faster-whisper, decoding while the speaker falls silent.

Most of the delay a user feels is the time from the end of their speech to the
transcript. A client stops streaming only once its own silence detection is
sure, typically the better part of a second after the last word. A session
notices the trailing silence itself and decodes the audio heard so far in the
meantime; when the audio ends with nothing new said, that result is the
transcript, already computed or nearly so.
"""

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
import logging
from pathlib import Path
from typing import override

import ctranslate2  # type: ignore[import-untyped]
from faster_whisper import WhisperModel  # type: ignore[import-untyped]
from faster_whisper.tokenizer import _LANGUAGE_CODES  # type: ignore[import-untyped]
import numpy as np

from .engines import EngineError, ErrorCode, ModelInfo, SpeechToText, SttSession
from .formats import ENGINE_RATE

_LOGGER = logging.getLogger(__name__)


# Whisper hears at most 30 s at once and voice commands are far shorter: audio
# beyond this is ignored, so a client that never stops costs bounded memory.
MAX_SAMPLES = 30 * ENGINE_RATE

# The endpointer looks at 20 ms frames. A frame is speech when it is louder
# than a floor (-55 dBFS) and within 30 dB of the loudest frame so far, so the
# quiet ends of words still count. 100 ms of speech, then 300 ms without any,
# and the audio so far is decoded.
_FRAME = ENGINE_RATE // 50
_FLOOR_POWER = (32768 * 10 ** (-55 / 20)) ** 2
_SPEECH_RANGE = 10 ** (-30 / 10)
_MIN_SPEECH = ENGINE_RATE // 10
_TRAILING_SILENCE = ENGINE_RATE * 3 // 10


@dataclass(frozen=True, slots=True, kw_only=True)
class WhisperModelSpec:
    """An installed CTranslate2 Whisper model."""

    path: Path
    description: str
    # Empty: every language the model knows (English only for ".en" models).
    languages: Sequence[str] = ()


class FasterWhisperStt(SpeechToText):
    """faster-whisper models, each loaded on first use and kept."""

    PROGRAM = ModelInfo(
        name="faster-whisper",
        languages=[],
        description="faster-whisper speech-to-text, on this machine",
        attribution_name="SYSTRAN",
        attribution_url="https://github.com/SYSTRAN/faster-whisper",
    )

    def __init__(
        self,
        models: Mapping[str, WhisperModelSpec],
        executor: Executor,
        *,
        device: str = "auto",
        beam_size: int = 1,
    ) -> None:
        """Serve ``models`` (name: spec; the first is the default).

        ``device`` is "cpu", "cuda" or "auto" (CUDA when a GPU is present).
        """
        self._specs = dict(models)
        self._executor = executor
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        self._device = device
        self._compute_type = "float16" if device == "cuda" else "int8"
        self._beam_size = beam_size
        self._infos = {
            name: ModelInfo(
                name=name,
                languages=_languages(name, spec),
                description=spec.description,
                attribution_name="OpenAI Whisper",
                attribution_url="https://github.com/openai/whisper",
            )
            for name, spec in self._specs.items()
        }
        self._loads: dict[str, asyncio.Future[WhisperModel]] = {}

    @property
    @override
    def models(self) -> list[ModelInfo]:
        return list(self._infos.values())

    @override
    async def preload(self) -> None:
        """Load the first model and decode a second of silence with it.

        CTranslate2 sets up its buffers on the first decode: done now, the
        first command is as quick as any other.
        """
        if not self._specs:
            return
        name = next(iter(self._specs))
        whisper = await self._load(name)
        languages = self._infos[name].languages
        await asyncio.get_running_loop().run_in_executor(
            self._executor,
            _transcribe,
            whisper,
            np.zeros(ENGINE_RATE, dtype=np.int16),
            languages[0] if languages else None,
            1,
        )

    @override
    def start(
        self, *, model: str | None = None, language: str | None = None
    ) -> FasterWhisperSession:
        """Begin an utterance with ``model``, or the first that knows ``language``.

        Raises EngineError: unknown model, unsupported language, or missing model
        (the model's folder has no model.bin).
        """
        if language is not None:
            # Whisper's codes have no region: "en-US" and "en_GB" are "en".
            language = language.replace("_", "-").split("-")[0].lower()
        name = self._choose(model, language)
        path = self._specs[name].path
        # A cheap stat, so a missing model is refused before the user speaks.
        if name not in self._loads and not (path / "model.bin").is_file():
            raise EngineError(
                ErrorCode.MISSING_MODEL,
                f"Speech-to-text model {name!r} is not installed: "
                f"{path} has no model.bin",
            )
        return FasterWhisperSession(self, model=name, language=language)

    async def transcribe(
        self, samples: np.ndarray, *, model: str, language: str | None
    ) -> str:
        """Transcribe 16 kHz int16 ``samples`` with an installed ``model``."""
        # Shielded: a cancelled utterance must not throw away a shared load.
        whisper = await asyncio.shield(self._load(model))
        return await asyncio.get_running_loop().run_in_executor(
            self._executor,
            _transcribe,
            whisper,
            samples,
            language,
            self._beam_size,
        )

    def _choose(self, model: str | None, language: str | None) -> str:
        if model is not None and model not in self._infos:
            installed = ", ".join(self._infos) or "none"
            raise EngineError(
                ErrorCode.UNKNOWN_MODEL,
                f"Speech-to-text model {model!r} is not installed "
                f"(installed: {installed})",
            )
        candidates = [model] if model is not None else list(self._infos)
        if not candidates:
            raise EngineError(
                ErrorCode.UNKNOWN_MODEL, "No speech-to-text model is installed"
            )
        for name in candidates:
            if language is None or language in self._infos[name].languages:
                return name
        if model is not None:
            message = (
                f"Speech-to-text model {model!r} does not transcribe language "
                f"{language!r}"
            )
        else:
            message = f"No speech-to-text model transcribes language {language!r}"
        raise EngineError(ErrorCode.UNSUPPORTED_LANGUAGE, message)

    def _load(self, name: str) -> asyncio.Future[WhisperModel]:
        """Load ``name`` once; concurrent and later callers share the one load."""
        if (loading := self._loads.get(name)) is None:
            path = self._specs[name].path
            _LOGGER.debug("Loading speech-to-text model %s from %s", name, path)
            loading = asyncio.get_running_loop().run_in_executor(
                self._executor, self._open, name, path
            )
            loading.add_done_callback(partial(self._forget_failed, name))
            self._loads[name] = loading
        return loading

    def _forget_failed(self, name: str, loading: asyncio.Future[WhisperModel]) -> None:
        # The next utterance tries again: the folder may have been repaired.
        if loading.exception() is not None:
            del self._loads[name]

    def _open(self, name: str, path: Path) -> WhisperModel:
        try:
            return WhisperModel(
                str(path),
                device=self._device,
                compute_type=self._compute_type,
                # Never a download: a folder that vanished is an error, not a model ID.
                local_files_only=True,
            )
        except (OSError, RuntimeError, ValueError) as err:
            msg = f"Speech-to-text model {name!r} in {path} cannot be loaded: {err}"
            raise EngineError(ErrorCode.BAD_MODEL, msg) from err


@dataclass(frozen=True, slots=True)
class _Decode:
    """A decode of the first ``covers`` samples of the utterance."""

    covers: int
    task: asyncio.Task[str]


class FasterWhisperSession(SttSession):
    """One utterance; decodes speculatively once the speaker falls silent."""

    def __init__(
        self, engine: FasterWhisperStt, *, model: str, language: str | None
    ) -> None:
        """Transcribe with ``model`` in ``language`` (None: detect it)."""
        self._engine = engine
        self._model = model
        self._language = language
        self._audio = np.empty(MAX_SAMPLES, dtype=np.int16)
        self._length = 0
        self._endpointer = _Endpointer()
        self._speculation: _Decode | None = None
        self._reported = ""
        # Decodes started for this utterance, speculative or final.
        self.decodes = 0

    @override
    async def feed(self, samples: np.ndarray) -> str | None:
        """Take samples; return the transcript so far when a new one is ready."""
        samples = samples[: MAX_SAMPLES - self._length]
        self._audio[self._length : self._length + len(samples)] = samples
        self._length += len(samples)
        self._endpointer.add(samples)

        speculation = self._speculation
        if speculation is not None and not self._is_current(speculation):
            if not speculation.task.done():
                return None  # One decode in flight at a time; a newer one follows.
            speculation = self._speculation = None
        if speculation is None:
            if self._endpointer.paused:
                self._speculation = self._decode()
            return None
        if not speculation.task.done():
            return None
        text = speculation.task.result()
        if text == self._reported:
            return None
        self._reported = text
        return text

    @override
    async def finish(self) -> str:
        """Return the transcript, reusing the speculative decode if nothing followed."""
        self._endpointer.flush()
        speculation = self._speculation
        if speculation is None or not self._is_current(speculation):
            if speculation is not None:
                speculation.task.cancel()
            speculation = self._speculation = self._decode()
        return await speculation.task

    @override
    def cancel(self) -> None:
        """Drop the audio; a decode still running is left to finish unheard."""
        if self._speculation is not None:
            self._speculation.task.cancel()
        self._speculation = None
        # A new buffer: that decode may still be reading the old one.
        self._audio = np.empty(MAX_SAMPLES, dtype=np.int16)
        self._length = 0
        self._endpointer = _Endpointer()
        self._reported = ""

    def _is_current(self, decode: _Decode) -> bool:
        """Whether nothing but silence has arrived since ``decode``'s snapshot."""
        return self._endpointer.speech_end <= decode.covers

    def _decode(self) -> _Decode:
        self.decodes += 1
        # Audio before ``_length`` is never overwritten, so a view is safe.
        snapshot = self._audio[: self._length]
        task = asyncio.get_running_loop().create_task(
            self._engine.transcribe(
                snapshot, model=self._model, language=self._language
            )
        )
        return _Decode(self._length, task)


class _Endpointer:
    """Where speech ends, from frame energy relative to the utterance's loudest."""

    def __init__(self) -> None:
        self._rest = np.zeros(0, dtype=np.int16)
        self._peak = 0.0
        self._seen = 0
        self._speech = 0
        # Sample index just past the last frame that held speech.
        self.speech_end = 0

    @property
    def paused(self) -> bool:
        """Enough speech, then enough silence, to be worth decoding now."""
        return (
            self._speech >= _MIN_SPEECH
            and self._seen - self.speech_end >= _TRAILING_SILENCE
        )

    def add(self, samples: np.ndarray) -> None:
        """Classify the whole frames ``samples`` complete."""
        samples = np.concatenate((self._rest, samples))
        usable = len(samples) - len(samples) % _FRAME
        self._rest = samples[usable:]
        self._classify(samples[:usable].reshape(-1, _FRAME))

    def flush(self) -> None:
        """Classify the last partial frame: the audio has ended."""
        if len(self._rest):
            self._classify(self._rest.reshape(1, -1))
            self._rest = self._rest[:0]

    def _classify(self, frames: np.ndarray) -> None:
        if not len(frames):
            return
        values = frames.astype(np.float32)
        power = np.mean(values * values, axis=1)
        self._peak = max(self._peak, float(power.max()))
        speech = np.flatnonzero(power > max(_FLOOR_POWER, self._peak * _SPEECH_RANGE))
        width = frames.shape[1]
        self._speech += len(speech) * width
        if len(speech):
            self.speech_end = self._seen + (int(speech[-1]) + 1) * width
        self._seen += frames.size


def _languages(name: str, spec: WhisperModelSpec) -> list[str]:
    if name.endswith(".en"):
        return ["en"]
    # faster-whisper keeps its language list in the tokenizer, as a private name.
    return list(spec.languages) or list(_LANGUAGE_CODES)


def _transcribe(
    whisper: WhisperModel, samples: np.ndarray, language: str | None, beam_size: int
) -> str:
    """Decode in the executor; the segments are lazy, so iterate them here too."""
    # Arrays, never files: faster-whisper 1.2.1 with PyAV 19 fails on file input.
    audio = samples.astype(np.float32) / 32768
    segments, _info = whisper.transcribe(
        audio,
        language=language,
        beam_size=beam_size,
        vad_filter=False,
        condition_on_previous_text=False,
        without_timestamps=True,
    )
    return " ".join(segment.text.strip() for segment in segments).strip()
