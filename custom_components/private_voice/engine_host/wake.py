"""Wake word engines: microWakeWord and openWakeWord on TensorFlow Lite.

A session feeds its stream to the models in fixed steps whatever chunks the
client sends, so what is detected, and when, does not depend on chunking.

Inference runs in the executor, microWakeWord's too (~0.15 ms per 1024
samples on this 2-core machine; openWakeWord ~2.5 ms, plus ~0.3 s on a
session's first step, which fills 8 s of silent history): the cost grows with
the chunk size a client picks, a 4000-sample chunk already nears the ~1 ms the
event loop may block, and TensorFlow Lite, called through ctypes, releases the
GIL, so the streams spread over the cores.
"""

import asyncio
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
import json
from pathlib import Path
from typing import Protocol, override

import numpy as np
import pymicro_wakeword
import pyopen_wakeword

from .engines import (
    EngineError,
    ErrorCode,
    ModelInfo,
    WakeDetection,
    WakeSession,
    WakeWord,
)
from .formats import ENGINE_RATE
from .frames import Framer

# One utterance gives one detection: after a detection a session listens again
# once this time has passed and no model is over its cutoff any more (a model
# stays over it for a few hundred ms after the phrase).
REFRACTORY_SAMPLES = 2 * ENGINE_RATE

# microWakeWord computes one feature frame per 10 ms.
MICRO_STEP = 160
# What pymicro-wakeword reads from a config's "micro" section.
MICRO_SETTINGS = frozenset({"probability_cutoff", "sliding_window_size"})
# openWakeWord computes one embedding per 80 ms.
OPEN_STEP = 1280
# openWakeWord's recommended threshold (its models carry none).
OPEN_THRESHOLD = 0.5
# The feature models beside openWakeWord's packaged wake word models.
OPEN_FEATURE_MODELS = frozenset({"melspectrogram", "embedding_model"})
OPEN_URL = "https://github.com/dscripka/openWakeWord"
OPEN_LICENCE = "CC BY-NC-SA 4.0, non-commercial use only"


class _Listener(Protocol):
    """One stream's models with their state."""

    def hear(self, step: bytes) -> str | None:
        """Take one step of audio; return the most probable model over its cutoff."""


@dataclass(frozen=True, slots=True)
class _Installed:
    """A model found on disk: what describe shows, and the file to load."""

    info: ModelInfo
    path: Path


class _StepSession(WakeSession):
    """One stream fed to its listener in fixed steps, off the event loop.

    ``process`` is called once at a time, in stream order. The models load
    on the first chunk, in the executor: ``start`` runs on the event loop.
    """

    def __init__(
        self, executor: Executor, step: int, open_listener: Callable[[], _Listener]
    ) -> None:
        self._executor = executor
        self._framer = Framer(step)
        self._open_listener = open_listener
        self._listener: _Listener | None = None
        self._position = 0  # samples fed to the models
        self._refractory_until = 0  # a position, in samples
        self._armed = True

    @override
    async def process(self, samples: np.ndarray) -> list[WakeDetection]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._process, samples)

    def _process(self, samples: np.ndarray) -> list[WakeDetection]:
        if self._listener is None:
            self._listener = self._open_listener()
        detections: list[WakeDetection] = []
        for step in self._framer.frames(samples):
            heard = self._listener.hear(step.tobytes())
            self._position += len(step)
            if heard is None:
                # Listen again once the refractory period is over and the
                # phrase that was detected has faded.
                self._armed |= self._position >= self._refractory_until
            elif self._armed:
                self._armed = False
                self._refractory_until = self._position + REFRACTORY_SAMPLES
                timestamp_ms = self._position * 1000 // ENGINE_RATE
                detections.append(WakeDetection(heard, timestamp_ms))
        return detections


class _TfLiteWakeWord(WakeWord):
    """Installed models by name, and sessions listening for some of them."""

    def __init__(
        self,
        executor: Executor,
        installed: dict[str, _Installed],
        *,
        step: int,
        listener: Callable[[list[tuple[str, Path]]], _Listener],
    ) -> None:
        self._executor = executor
        self._installed = installed
        self._step = step
        self._listener = listener

    @property
    @override
    def models(self) -> list[ModelInfo]:
        return [model.info for model in self._installed.values()]

    @override
    def start(self, names: list[str] | None) -> WakeSession:
        """Listen for ``names``; None or empty: for every installed model."""
        chosen = list(dict.fromkeys(names or self._installed))
        if unknown := [name for name in chosen if name not in self._installed]:
            msg = (
                f"no wake word model named {', '.join(unknown)} "
                f"(installed: {', '.join(self._installed)})"
            )
            raise EngineError(ErrorCode.UNKNOWN_MODEL, msg)
        paths = [(name, self._installed[name].path) for name in chosen]
        return _StepSession(self._executor, self._step, partial(self._listener, paths))


# microWakeWord ---------------------------------------------------------------


class MicroWakeWord(_TfLiteWakeWord):
    """microWakeWord: its packaged models and those in ``model_dirs``.

    A model is a ``.json`` config (``"type": "micro"``) beside its ``.tflite``
    file; a model in a later folder replaces a packaged one of the same name.
    """

    PROGRAM = ModelInfo(
        name="microWakeWord",
        languages=[],
        description="microWakeWord wake word detection, on this machine",
        attribution_name="Kevin Ahrendt",
        attribution_url="https://github.com/kahrendt/microWakeWord",
    )

    def __init__(self, executor: Executor, model_dirs: Sequence[Path] = ()) -> None:
        """Find the models; EngineError for a missing or unusable one."""
        packaged = Path(pymicro_wakeword.__file__).parent / "models"
        super().__init__(
            executor,
            _find(_micro_model, "*.json", [packaged, *model_dirs]),
            step=MICRO_STEP,
            listener=_MicroListener,
        )


def _micro_model(config_path: Path) -> _Installed | None:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        msg = f"cannot read wake word config {config_path}: {err}"
        raise EngineError(ErrorCode.BAD_MODEL, msg) from err
    if not isinstance(config, dict) or config.get("type") != "micro":
        return None  # some other JSON file
    phrase = config.get("wake_word")
    micro = config.get("micro")
    if not (
        isinstance(phrase, str)
        and isinstance(micro, dict)
        and micro.keys() >= MICRO_SETTINGS
    ):
        msg = (
            f"microWakeWord config {config_path} needs a wake_word and micro "
            f"settings {', '.join(sorted(MICRO_SETTINGS))}"
        )
        raise EngineError(ErrorCode.BAD_MODEL, msg)
    model_path = config_path.parent / str(config.get("model", ""))
    if not model_path.is_file():
        msg = f"microWakeWord config {config_path} names no existing model file"
        raise EngineError(ErrorCode.MISSING_MODEL, msg)
    info = ModelInfo(
        name=model_path.stem,
        languages=list(config.get("trained_languages") or ["en"]),
        description=f"{phrase} (microWakeWord)",
        version=str(config["version"]) if "version" in config else None,
        attribution_name=str(config.get("author", "")),
        attribution_url=str(config.get("website", "")),
        phrase=phrase,
    )
    return _Installed(info, config_path)


class _MicroListener:
    """Shared audio features, and one streaming model per wake word."""

    def __init__(self, configs: list[tuple[str, Path]]) -> None:
        self._features = pymicro_wakeword.MicroWakeWordFeatures()
        self._models = [
            (name, pymicro_wakeword.MicroWakeWord.from_config(path))
            for name, path in configs
        ]
        self._frames = 0
        self._probabilities = {name: 0.0 for name, _ in configs}

    def hear(self, step: bytes) -> str | None:
        for features in self._features.process_streaming(step):
            self._frames += 1
            for name, model in self._models:
                probability = model.process_streaming_prob(features) or 0.0
                # A model infers once per ``stride`` frames and answers 0.0 in
                # between: keep its last answer, so a phrase is heard until it fades.
                if self._frames % model.stride == 0:
                    self._probabilities[name] = probability
        heard, best = None, 0.0
        for name, model in self._models:
            probability = self._probabilities[name]
            if probability > max(model.probability_cutoff, best):
                heard, best = name, probability
        return heard


# openWakeWord ----------------------------------------------------------------


class OpenWakeWord(_TfLiteWakeWord):
    """openWakeWord: its packaged models and the ``.tflite`` in ``model_dirs``.

    The packaged models are licensed CC BY-NC-SA 4.0 (non-commercial), which
    their description and attribution say where users pick them. A model in a
    later folder replaces a packaged one of the same name.
    """

    PROGRAM = ModelInfo(
        name="openWakeWord",
        languages=[],
        description=f"openWakeWord wake word detection; its models: {OPEN_LICENCE}",
        attribution_name="David Scripka",
        attribution_url=OPEN_URL,
    )

    def __init__(self, executor: Executor, model_dirs: Sequence[Path] = ()) -> None:
        """Find the models; EngineError (missing model) for a missing folder."""
        packaged = Path(pyopen_wakeword.__file__).parent / "models"
        installed = _find(partial(_open_model, packaged=True), "*.tflite", [packaged])
        installed |= _find(partial(_open_model, packaged=False), "*.tflite", model_dirs)
        super().__init__(executor, installed, step=OPEN_STEP, listener=_OpenListener)


def _open_model(path: Path, *, packaged: bool) -> _Installed | None:
    if path.stem in OPEN_FEATURE_MODELS:
        return None
    phrase = path.stem.replace("_", " ").title()
    if packaged:
        info = ModelInfo(
            name=path.stem,
            languages=["en"],
            description=f"{phrase} (openWakeWord; model licence {OPEN_LICENCE})",
            attribution_name=f"David Scripka, openWakeWord ({OPEN_LICENCE})",
            attribution_url=OPEN_URL,
            phrase=phrase,
        )
    else:
        info = ModelInfo(
            name=path.stem,
            languages=["en"],
            description=f"{phrase} (openWakeWord, from {path.parent})",
            phrase=phrase,
        )
    return _Installed(info, path)


class _OpenListener:
    """Shared melspectrogram and embeddings, and one model per wake word."""

    def __init__(self, models: list[tuple[str, Path]]) -> None:
        self._features = pyopen_wakeword.OpenWakeWordFeatures.from_builtin()
        self._models = [
            (name, pyopen_wakeword.OpenWakeWord.from_model(path))
            for name, path in models
        ]

    def hear(self, step: bytes) -> str | None:
        heard, best = None, OPEN_THRESHOLD
        for embeddings in self._features.process_streaming(step):
            for name, model in self._models:
                for probability in model.process_streaming(embeddings):
                    if probability > best:
                        heard, best = name, probability
        return heard


# -----------------------------------------------------------------------------


def _find(
    read: Callable[[Path], _Installed | None], pattern: str, folders: Iterable[Path]
) -> dict[str, _Installed]:
    """Models in ``folders`` by name; a later folder's model replaces an earlier."""
    installed: dict[str, _Installed] = {}
    for folder in folders:
        if not folder.is_dir():
            msg = f"wake word model folder {folder} does not exist"
            raise EngineError(ErrorCode.MISSING_MODEL, msg)
        for path in sorted(folder.glob(pattern)):
            if (model := read(path)) is not None:
                installed[model.info.name] = model
    return installed
