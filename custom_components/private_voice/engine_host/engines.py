"""The small interfaces every engine implements; the server sees only these.

Engines take and give 16 kHz, 16-bit, mono int16 samples (see ``audio``); the
server converts whatever a client sends. Engine objects are created once and
injected into the server; sessions hold one request's state. CPU-heavy calls
run in the executor the engine was given, never on the event loop.
"""

from abc import ABC, abstractmethod
import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Final

if TYPE_CHECKING:
    # Only in annotations: Home Assistant imports the model store, which uses
    # EngineError, where the engines' packages (numpy) may not be installed.
    import numpy as np


# Wire names of voice prints: asked for in ``transcribe``'s context, given in
# ``transcript``'s (256 floats, and the seconds of speech they came from), or
# why there is none (an error code, such as "too-little-speech").
VOICE_PRINT: Final = "voice_print"
VOICE_PRINT_SECONDS: Final = "voice_print_seconds"
VOICE_PRINT_ERROR: Final = "voice_print_error"


class ErrorCode(StrEnum):
    """Codes of Wyoming ``error`` events: what a client can act on."""

    # Engines and the model store.
    UNKNOWN_MODEL = "unknown-model"
    MISSING_MODEL = "missing-model"
    BAD_MODEL = "bad-model"
    UNSUPPORTED_LANGUAGE = "unsupported-language"
    UNKNOWN_VOICE = "unknown-voice"
    UNKNOWN_SPEAKER = "unknown-speaker"
    TOO_LITTLE_SPEECH = "too-little-speech"
    DOWNLOAD_FAILED = "download-failed"
    DISK_FULL = "disk-full"
    STORAGE_FAILED = "storage-failed"
    # The server and its framing.
    BAD_FRAME = "bad-frame"
    FRAME_TOO_LARGE = "frame-too-large"
    BAD_AUDIO_FORMAT = "bad-audio-format"
    NO_AUDIO_START = "no-audio-start"
    UNEXPECTED_EVENT = "unexpected-event"
    NOT_SUPPORTED = "not-supported"
    BUSY = "busy"
    TIMEOUT = "timeout"


class EngineError(Exception):
    """An engine could not do what was asked (model missing, bad request)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        """Carry a machine-readable ``code`` for Wyoming's ``error`` event."""
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """One installed model, voice or wake word, as ``describe`` reports it."""

    name: str
    languages: list[str]
    description: str
    version: str | None = None
    attribution_name: str = ""
    attribution_url: str = ""
    # Wake words: the spoken phrase. Voices: speaker names (empty: one speaker).
    phrase: str | None = None
    speakers: list[str] = field(default_factory=list)


# Speech-to-text --------------------------------------------------------------


class SttSession(ABC):
    """One utterance being transcribed while its audio arrives."""

    @abstractmethod
    async def feed(self, samples: np.ndarray) -> str | None:
        """Take the next int16 samples; return new partial text, if any."""

    @abstractmethod
    async def finish(self) -> str:
        """Return the final transcript: the audio has ended."""

    @abstractmethod
    def cancel(self) -> None:
        """Drop the utterance and whatever work is pending for it."""


class SpeechToText(ABC):
    """A speech-to-text engine."""

    # The program as ``describe`` names it (set by each implementation).
    PROGRAM: ClassVar[ModelInfo]

    @property
    @abstractmethod
    def models(self) -> list[ModelInfo]:
        """Installed models."""

    @abstractmethod
    async def preload(self) -> None:
        """Load the default model now, so that the first request does not wait."""

    @abstractmethod
    def start(self, *, model: str | None, language: str | None) -> SttSession:
        """Begin an utterance; EngineError("unknown-model") if not installed."""


# Text-to-speech --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Synthesized speech: raw PCM at ``rate`` Hz, 16-bit, mono."""

    rate: int
    pcm: bytes


class TextToSpeech(ABC):
    """A text-to-speech engine."""

    # The program as ``describe`` names it (set by each implementation).
    PROGRAM: ClassVar[ModelInfo]

    @property
    @abstractmethod
    def voices(self) -> list[ModelInfo]:
        """Installed voices (with speakers)."""

    @abstractmethod
    async def preload(self) -> None:
        """Load the default voice now, so that the first request does not wait."""

    @abstractmethod
    def synthesize(
        self, text: str, *, voice: str | None, speaker: str | None
    ) -> AsyncIterator[SpeechAudio]:
        """Speak ``text``, yielding audio as each sentence is ready."""


# Wake word -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WakeDetection:
    """A wake word heard ``timestamp_ms`` after the start of the stream."""

    name: str
    timestamp_ms: int


class WakeSession(ABC):
    """One audio stream listened to for wake words."""

    @abstractmethod
    async def process(self, samples: np.ndarray) -> list[WakeDetection]:
        """Take the next int16 samples; return the wake words they complete."""


class WakeWord(ABC):
    """A wake word engine."""

    # The program as ``describe`` names it (set by each implementation).
    PROGRAM: ClassVar[ModelInfo]

    @property
    @abstractmethod
    def models(self) -> list[ModelInfo]:
        """Installed wake word models (with phrases)."""

    @abstractmethod
    def start(self, names: list[str] | None) -> WakeSession:
        """Listen for ``names`` (None: the default set); EngineError if unknown."""


# Speaker embedding ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VoicePrint:
    """An utterance's speaker embedding (unit length) and the speech it came from."""

    vector: np.ndarray
    speech_seconds: float


class SpeakerEncoder(ABC):
    """A speaker embedding engine: a voice print of each utterance.

    Prints of the same voice point the same way: compare them by cosine
    similarity (a dot product, as they have unit length).
    """

    # The program as ``describe`` names it (set by each implementation).
    PROGRAM: ClassVar[ModelInfo]

    # Where ``voice_print`` computes; None: the event loop's default executor.
    executor: Executor | None = None

    @abstractmethod
    def measure(self, samples: np.ndarray) -> VoicePrint:
        """Compute the print of int16 samples, blocking (CPU-heavy).

        EngineError("too-little-speech") if they hold too little speech.
        """

    async def voice_print(self, samples: np.ndarray) -> VoicePrint:
        """Compute the print of int16 samples in the engine's executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.measure, samples)
