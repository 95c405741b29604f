"""Text-to-speech with piper voices, spoken sentence by sentence."""

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any, override

from piper import PiperConfig, PiperVoice, SynthesisConfig

from .engines import EngineError, ErrorCode, ModelInfo, SpeechAudio, TextToSpeech
from .sentences import split_sentences

_ATTRIBUTION_NAME = "Piper"
_ATTRIBUTION_URL = "https://github.com/OHF-Voice/piper1-gpl"


@dataclass(frozen=True, slots=True)
class _Voice:
    """An installed voice: its model file and what its config says."""

    model: Path
    info: ModelInfo
    speaker_ids: dict[str, int]


class PiperTts(TextToSpeech):
    """Piper voices; each loads on first use, once, in the executor."""

    PROGRAM = ModelInfo(
        name="piper",
        languages=[],
        description="Piper text-to-speech, on this machine",
        attribution_name=_ATTRIBUTION_NAME,
        attribution_url=_ATTRIBUTION_URL,
    )

    def __init__(
        self,
        voices: dict[str, Path],
        executor: Executor,
        *,
        default_voice: str | None = None,
        use_cuda: bool = False,
    ) -> None:
        """Offer ``voices`` (name → .onnx path, its .onnx.json beside it).

        Reads each voice's small JSON config now, so ``voices`` can describe
        them without loading any model. ``default_voice`` defaults to the first.
        """
        self._voices = {
            name: _read_voice(name, model) for name, model in voices.items()
        }
        if default_voice is not None and default_voice not in self._voices:
            raise _unknown_voice(default_voice)
        self._default_voice = default_voice or next(iter(self._voices), None)
        self._executor = executor
        self._use_cuda = use_cuda
        self._loaded: dict[str, PiperVoice] = {}
        self._load_lock = asyncio.Lock()

    @property
    @override
    def voices(self) -> list[ModelInfo]:
        """Installed voices, with their speakers."""
        return [voice.info for voice in self._voices.values()]

    @override
    async def preload(self) -> None:
        """Load the default voice and speak a word with it, unheard.

        onnxruntime plans its graph on the first run: done now, the first
        reply is as quick as any other.
        """
        if self._default_voice is not None:
            async for _ in self.synthesize("Ready."):
                pass

    @override
    async def synthesize(
        self, text: str, *, voice: str | None = None, speaker: str | None = None
    ) -> AsyncIterator[SpeechAudio]:
        """Speak ``text``, yielding each sentence's audio as soon as it is ready.

        While the caller sends one sentence, the next one is synthesized; no
        more than that, so an abandoned stream leaves little work behind.
        """
        name = voice if voice is not None else self._default_voice
        if name is None or name not in self._voices:
            raise _unknown_voice(name)
        chosen = self._voices[name]
        config = SynthesisConfig(speaker_id=_speaker_id(chosen, speaker))
        sentences = split_sentences(text)
        if not sentences:
            return
        piper_voice = await self._load(chosen)
        rate = piper_voice.config.sample_rate
        loop = asyncio.get_running_loop()

        def start(sentence: str) -> asyncio.Future[bytes]:
            return loop.run_in_executor(
                self._executor, _speak, piper_voice, sentence, config
            )

        upcoming = iter(sentences[1:])
        pending: asyncio.Future[bytes] | None = start(sentences[0])
        try:
            while pending is not None:
                pcm = await pending
                following = next(upcoming, None)
                pending = None if following is None else start(following)
                if pcm:
                    yield SpeechAudio(rate, pcm)
        finally:
            if pending is not None:
                # The caller stopped listening: skip a sentence not yet begun.
                pending.cancel()

    async def _load(self, voice: _Voice) -> PiperVoice:
        """Return the loaded voice; the first caller loads it, others wait."""
        name = voice.info.name
        if (loaded := self._loaded.get(name)) is None:
            async with self._load_lock:
                if (loaded := self._loaded.get(name)) is None:
                    loaded = await asyncio.get_running_loop().run_in_executor(
                        self._executor, self._load_blocking, voice
                    )
                    self._loaded[name] = loaded
        return loaded

    def _load_blocking(self, voice: _Voice) -> PiperVoice:
        """Load a voice's model (blocking: runs in the executor)."""
        if not voice.model.is_file():
            msg = f"Voice {voice.info.name}: model file {voice.model} not found"
            raise EngineError(ErrorCode.MISSING_MODEL, msg)
        return PiperVoice.load(voice.model, use_cuda=self._use_cuda)


def _read_voice(name: str, model: Path) -> _Voice:
    """Describe a voice from the JSON config beside its model."""
    config_path = model.with_name(f"{model.name}.json")
    try:
        raw: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
        config = PiperConfig.from_dict(raw)
    except FileNotFoundError as err:
        msg = f"Voice {name}: config file {config_path} not found"
        raise EngineError(ErrorCode.MISSING_MODEL, msg) from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        msg = f"Voice {name}: {config_path} is not a piper voice config: {err!r}"
        raise EngineError(ErrorCode.BAD_MODEL, msg) from err
    # The locale as piper voices give it ("en_US"), as wyoming-piper reports it;
    # Home Assistant matches it to "en" and "en-US" itself.
    language = raw.get("language", {}).get("code") or config.espeak_voice
    dataset = raw.get("dataset", name)
    quality = raw.get("audio", {}).get("quality")
    return _Voice(
        model=model,
        info=ModelInfo(
            name=name,
            languages=[language],
            description=f"{dataset} ({quality})" if quality else dataset,
            attribution_name=_ATTRIBUTION_NAME,
            attribution_url=_ATTRIBUTION_URL,
            speakers=list(config.speaker_id_map),
        ),
        speaker_ids=dict(config.speaker_id_map),
    )


def _speaker_id(voice: _Voice, speaker: str | None) -> int | None:
    """Piper's id for ``speaker`` (None: the voice's default speaker)."""
    if speaker is None:
        return None
    if speaker not in voice.speaker_ids:
        known = ", ".join(voice.speaker_ids) or "it has a single speaker"
        msg = f"Voice {voice.info.name} has no speaker {speaker!r} ({known})"
        raise EngineError(ErrorCode.UNKNOWN_SPEAKER, msg)
    return voice.speaker_ids[speaker]


def _unknown_voice(name: str | None) -> EngineError:
    """Build the error for a voice that is not installed (None: none is)."""
    if name is None:
        return EngineError(ErrorCode.UNKNOWN_VOICE, "No voice is installed")
    return EngineError(ErrorCode.UNKNOWN_VOICE, f"Voice {name} is not installed")


def _speak(voice: PiperVoice, sentence: str, config: SynthesisConfig) -> bytes:
    """Synthesize one sentence to 16-bit PCM (blocking: runs in the executor)."""
    return b"".join(
        chunk.audio_int16_bytes
        for chunk in voice.synthesize(sentence, syn_config=config)
    )
