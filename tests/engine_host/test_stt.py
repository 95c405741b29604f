"""Speech-to-text with faster-whisper, on real models and real speech."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import re

import numpy as np
import pytest

from custom_components.private_voice.engine_host.engines import EngineError
from custom_components.private_voice.engine_host.formats import ENGINE_RATE
from custom_components.private_voice.engine_host.stt import (
    FasterWhisperSession,
    FasterWhisperStt,
    WhisperModelSpec,
)

from .conftest import Speak, silence

COMMAND = "Turn on the kitchen lights."
COMMAND_WORDS = ["turn", "on", "the", "kitchen", "lights"]
MORE = "And lock the front door."
# 32 ms, what satellites typically send at once.
CHUNK = 512


@pytest.fixture(scope="module")
def tiny(whisper_tiny_en_dir: Path, executor: ThreadPoolExecutor) -> FasterWhisperStt:
    """Serve the English-only tiny model."""
    spec = WhisperModelSpec(path=whisper_tiny_en_dir, description="Whisper tiny")
    return FasterWhisperStt({"tiny.en": spec}, executor)


def utterance(speak: Speak, text: str) -> np.ndarray:
    """``text`` said a moment after the stream starts, as after a wake word."""
    return np.concatenate((silence(0.3), speak(text)))


def words(text: str) -> list[str]:
    """Lowercase words without punctuation."""
    return re.sub(r"[^\w\s]", "", text.lower()).split()


async def feed(session: FasterWhisperSession, samples: np.ndarray) -> list[str]:
    """Stream ``samples`` in chunks, as fast as possible; return partial texts."""
    return [
        text
        for start in range(0, len(samples), CHUNK)
        if (text := await session.feed(samples[start : start + CHUNK])) is not None
    ]


async def feed_silence_until_partial(session: FasterWhisperSession) -> str:
    """Stream silence at the pace of a live microphone until a partial comes."""
    for _ in range(10 * ENGINE_RATE // CHUNK):
        if (text := await session.feed(silence(CHUNK / ENGINE_RATE))) is not None:
            return text
        await asyncio.sleep(CHUNK / ENGINE_RATE)
    pytest.fail("no speculative transcript within 10 s of silence")


def test_models(tiny: FasterWhisperStt) -> None:
    [info] = tiny.models
    assert info.name == "tiny.en"
    assert info.languages == ["en"]
    assert info.description == "Whisper tiny"


async def test_speculative_transcript_is_the_final_one(
    tiny: FasterWhisperStt, speak: Speak
) -> None:
    session = tiny.start(model=None, language="en")
    assert await feed(session, utterance(speak, COMMAND)) == []

    partial = await feed_silence_until_partial(session)

    assert words(partial) == COMMAND_WORDS
    assert await session.finish() == partial
    assert session.decodes == 1


async def test_speech_after_the_speculative_decode_is_decoded_again(
    tiny: FasterWhisperStt, speak: Speak
) -> None:
    session = tiny.start(model="tiny.en", language=None)
    await feed(session, utterance(speak, COMMAND))
    assert words(await feed_silence_until_partial(session)) == COMMAND_WORDS

    await feed(session, utterance(speak, MORE))
    text = await session.finish()

    assert words(text) == [*COMMAND_WORDS, *words(MORE)]
    assert session.decodes == 2


async def test_cancel_ignores_the_pending_decode(
    tiny: FasterWhisperStt, speak: Speak
) -> None:
    session = tiny.start(model=None, language=None)
    await feed(session, utterance(speak, COMMAND))
    await feed(session, silence(0.5))
    assert session.decodes == 1

    session.cancel()
    await feed(session, utterance(speak, MORE))

    assert words(await session.finish()) == words(MORE)


async def test_audio_beyond_30_s_is_ignored(
    tiny: FasterWhisperStt, speak: Speak
) -> None:
    session = tiny.start(model=None, language=None)
    await feed(session, silence(29.8))

    # The command's leading silence fills the last 0.2 s; its words are dropped.
    assert await feed(session, utterance(speak, COMMAND)) == []

    assert "kitchen" not in words(await session.finish())
    assert session.decodes == 1


async def test_multilingual_model(
    whisper_base_dir: Path, executor: ThreadPoolExecutor, speak: Speak
) -> None:
    spec = WhisperModelSpec(path=whisper_base_dir, description="Whisper base")
    stt = FasterWhisperStt({"base": spec}, executor)
    [info] = stt.models
    assert {"en", "de", "fr", "nl", "zh"} <= set(info.languages)
    assert len(info.languages) > 90

    session = stt.start(model="base", language="en-US")
    assert await feed(session, utterance(speak, COMMAND)) == []

    assert words(await session.finish()) == COMMAND_WORDS
    assert session.decodes == 1


def test_languages_given_for_a_multilingual_model(
    whisper_base_dir: Path, executor: ThreadPoolExecutor
) -> None:
    spec = WhisperModelSpec(
        path=whisper_base_dir, description="Whisper base", languages=("de", "nl")
    )
    stt = FasterWhisperStt({"base": spec}, executor)

    assert stt.models[0].languages == ["de", "nl"]
    with pytest.raises(
        EngineError, match="No speech-to-text model transcribes language 'en'"
    ):
        stt.start(model=None, language="en")


def test_unknown_model(tiny: FasterWhisperStt) -> None:
    with pytest.raises(EngineError, match=r"'large' is not installed") as error:
        tiny.start(model="large", language=None)
    assert error.value.code == "unknown-model"
    assert "tiny.en" in str(error.value)


@pytest.mark.parametrize("model", [None, "tiny.en"])
def test_unsupported_language(tiny: FasterWhisperStt, model: str | None) -> None:
    with pytest.raises(EngineError, match="language 'de'") as error:
        tiny.start(model=model, language="de-DE")
    assert error.value.code == "unsupported-language"


def test_no_models(executor: ThreadPoolExecutor) -> None:
    with pytest.raises(EngineError, match="No speech-to-text model") as error:
        FasterWhisperStt({}, executor).start(model=None, language=None)
    assert error.value.code == "unknown-model"


def test_missing_model(tmp_path: Path, executor: ThreadPoolExecutor) -> None:
    spec = WhisperModelSpec(path=tmp_path, description="Whisper small")
    stt = FasterWhisperStt({"small": spec}, executor)

    with pytest.raises(EngineError) as error:
        stt.start(model=None, language=None)

    assert error.value.code == "missing-model"
    assert "'small'" in str(error.value)
    assert str(tmp_path) in str(error.value)


async def test_bad_model(tmp_path: Path, executor: ThreadPoolExecutor) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a model")
    spec = WhisperModelSpec(path=tmp_path, description="Whisper small")
    session = FasterWhisperStt({"small": spec}, executor).start(
        model=None, language=None
    )
    await session.feed(silence(0.1))

    with pytest.raises(EngineError, match=r"'small' in .* cannot be loaded") as error:
        await session.finish()

    assert error.value.code == "bad-model"
