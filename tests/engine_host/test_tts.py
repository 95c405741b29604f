"""Text-to-speech with a real piper voice."""

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
import json
from pathlib import Path
import re
import shutil
from typing import override

from faster_whisper import WhisperModel
import numpy as np
import pytest

from custom_components.private_voice.engine_host.audio import ToEngineFormat
from custom_components.private_voice.engine_host.engines import (
    EngineError,
    ModelInfo,
    SpeechAudio,
)
from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.engine_host.tts import PiperTts

VOICE = "en_US-joe-medium"
JOE_RATE = 22050
WORKERS = 2
THREE_SENTENCES = "Good morning. The kitchen lights are on. Have a nice day!"


class CountingPool(ThreadPoolExecutor):
    """A real thread pool that counts the jobs it is given."""

    def __init__(self) -> None:
        """Start with as many workers as the engine host's pool."""
        super().__init__(max_workers=WORKERS)
        self.submitted = 0

    @override
    def submit[**P, T](
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def engine(piper_voice_path: Path, executor: ThreadPoolExecutor) -> PiperTts:
    """Give the module joe, a single-speaker US English voice."""
    return PiperTts({VOICE: piper_voice_path}, executor)


@pytest.fixture
def counting_pool() -> Iterator[CountingPool]:
    """Give a test its own counting executor, for an engine of its own."""
    with CountingPool() as executor:
        yield executor


@pytest.fixture
def voice_copy(piper_voice_path: Path, tmp_path: Path) -> Path:
    """Joe's config alone in a folder: the model file beside it is missing."""
    model = tmp_path / piper_voice_path.name
    config = piper_voice_path.with_name(f"{piper_voice_path.name}.json")
    shutil.copy(config, tmp_path / config.name)
    return model


async def collect(
    engine: PiperTts, text: str, *, voice: str | None = None, speaker: str | None = None
) -> list[SpeechAudio]:
    """All the audio the engine says for ``text``."""
    return [
        audio async for audio in engine.synthesize(text, voice=voice, speaker=speaker)
    ]


def seconds(audio: SpeechAudio) -> float:
    """Duration of 16-bit mono audio."""
    return len(audio.pcm) / 2 / audio.rate


def test_voice_info(engine: PiperTts) -> None:
    assert engine.voices == [
        ModelInfo(
            name=VOICE,
            languages=["en_US"],
            description="joe (medium)",
            attribution_name="Piper",
            attribution_url="https://github.com/OHF-Voice/piper1-gpl",
            speakers=[],
        )
    ]


def test_voice_info_lists_speakers(
    voice_copy: Path, counting_pool: CountingPool
) -> None:
    config_path = voice_copy.with_name(f"{voice_copy.name}.json")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["num_speakers"] = 2
    config["speaker_id_map"] = {"alice": 0, "bob": 1}
    config_path.write_text(json.dumps(config), encoding="utf-8")

    engine = PiperTts({"pair": voice_copy}, counting_pool)

    assert engine.voices[0].speakers == ["alice", "bob"]
    assert counting_pool.submitted == 0  # describing loads no model


async def test_speech_at_voice_rate_and_audible(engine: PiperTts) -> None:
    [audio] = await collect(engine, "Hello there.")

    assert audio.rate == JOE_RATE
    samples = np.frombuffer(audio.pcm, dtype="<i2").astype(np.float64)
    assert np.sqrt(np.mean(samples**2)) > 1000
    assert 0.4 < seconds(audio) < 3


async def test_longer_text_longer_speech(engine: PiperTts) -> None:
    long_text = "The quick brown fox jumps over the lazy dog near the river bank."
    [short] = await collect(engine, "Yes.")
    [long] = await collect(engine, long_text)

    assert seconds(long) > 3 * seconds(short)
    assert 0.03 < seconds(long) / len(long_text) < 0.12


async def test_speech_is_intelligible(
    engine: PiperTts, whisper_tiny_en_dir: Path
) -> None:
    audio = await collect(engine, "Turn on the kitchen lights. Then lock the door.")
    assert len(audio) == 2

    converter = ToEngineFormat(PcmFormat(audio[0].rate, 2, 1))
    samples = converter.convert(b"".join(part.pcm for part in audio))
    whisper = WhisperModel(str(whisper_tiny_en_dir), device="cpu", compute_type="int8")
    segments, _ = whisper.transcribe(
        samples.astype(np.float32) / 32768, language="en", beam_size=1
    )
    heard = re.sub(r"[^\w\s]", "", " ".join(s.text for s in segments).lower()).split()

    assert {"kitchen", "lights", "lock", "door"} <= set(heard)


async def test_sentences_are_pipelined_one_ahead(
    piper_voice_path: Path, counting_pool: CountingPool
) -> None:
    engine = PiperTts({VOICE: piper_voice_path}, counting_pool)
    await collect(engine, "Hi.")  # loads the voice
    counting_pool.submitted = 0

    # Jobs handed to the pool each time a sentence's audio reaches the caller:
    # the first arrives while the second is being made and the third waits.
    jobs_seen = [
        counting_pool.submitted async for _ in engine.synthesize(THREE_SENTENCES)
    ]

    assert jobs_seen == [2, 3, 3]


async def test_stopping_early_starts_no_more_work(
    piper_voice_path: Path, counting_pool: CountingPool
) -> None:
    engine = PiperTts({VOICE: piper_voice_path}, counting_pool)
    await collect(engine, "Hi.")
    counting_pool.submitted = 0

    async with aclosing(engine.synthesize(THREE_SENTENCES)) as stream:
        first = await anext(stream)

    assert first.rate == JOE_RATE
    assert counting_pool.submitted == 2


async def test_voice_loads_once_for_concurrent_requests(
    piper_voice_path: Path, counting_pool: CountingPool
) -> None:
    engine = PiperTts({VOICE: piper_voice_path}, counting_pool)

    first, second = await asyncio.gather(
        collect(engine, "Hello."), collect(engine, "Goodbye.")
    )

    assert len(first) == len(second) == 1
    # One load and one job per sentence.
    assert counting_pool.submitted == 3


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
async def test_no_text_no_audio(engine: PiperTts, text: str) -> None:
    assert await collect(engine, text) == []


async def test_unknown_voice(engine: PiperTts) -> None:
    with pytest.raises(EngineError, match="Voice nobody is not installed") as err:
        await collect(engine, "Hello.", voice="nobody")
    assert err.value.code == "unknown-voice"


async def test_no_voice_installed(counting_pool: CountingPool) -> None:
    engine = PiperTts({}, counting_pool)

    assert engine.voices == []
    with pytest.raises(EngineError, match="No voice is installed") as err:
        await collect(engine, "Hello.")
    assert err.value.code == "unknown-voice"


def test_unknown_default_voice(
    piper_voice_path: Path, executor: ThreadPoolExecutor
) -> None:
    with pytest.raises(EngineError, match="Voice nobody is not installed") as err:
        PiperTts({VOICE: piper_voice_path}, executor, default_voice="nobody")
    assert err.value.code == "unknown-voice"


async def test_unknown_speaker(engine: PiperTts) -> None:
    with pytest.raises(EngineError, match="has no speaker 'alice'") as err:
        await collect(engine, "Hello.", speaker="alice")
    assert err.value.code == "unknown-speaker"
    assert VOICE in str(err.value)


async def test_missing_model_file(
    voice_copy: Path, counting_pool: CountingPool
) -> None:
    engine = PiperTts({VOICE: voice_copy}, counting_pool)

    with pytest.raises(EngineError) as err:
        await collect(engine, "Hello.")

    assert err.value.code == "missing-model"
    assert VOICE in str(err.value)
    assert str(voice_copy) in str(err.value)


def test_missing_config_file(tmp_path: Path, counting_pool: CountingPool) -> None:
    model = tmp_path / "lost.onnx"

    with pytest.raises(EngineError) as err:
        PiperTts({"lost": model}, counting_pool)

    assert err.value.code == "missing-model"
    assert "Voice lost" in str(err.value)
    assert f"{model}.json" in str(err.value)


def test_bad_config_file(tmp_path: Path, counting_pool: CountingPool) -> None:
    model = tmp_path / "broken.onnx"
    model.with_name("broken.onnx.json").write_text('{"audio": {}}', encoding="utf-8")

    with pytest.raises(EngineError, match="Voice broken") as err:
        PiperTts({"broken": model}, counting_pool)

    assert err.value.code == "bad-model"
