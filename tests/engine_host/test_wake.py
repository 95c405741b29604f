"""Wake word engines on their packaged models, listening to speech from piper."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import json
from pathlib import Path
import shutil

import numpy as np
import pymicro_wakeword
import pyopen_wakeword
import pytest

from custom_components.private_voice.engine_host.engines import (
    EngineError,
    ErrorCode,
    WakeDetection,
    WakeSession,
    WakeWord,
)
from custom_components.private_voice.engine_host.formats import ENGINE_RATE
from custom_components.private_voice.engine_host.wake import (
    MicroWakeWord,
    OpenWakeWord,
)

from .conftest import Speak, silence

# A detection comes once the phrase is complete; the next sentence starts
# this long after the phrase ends.
PAUSE_SECONDS = 0.5
# Piper adds random noise to each synthesis. Said so, the phrase clears the
# microWakeWord cutoff (0.85) by a wide margin (lowest 0.95 in 20 syntheses;
# these scenes passed 200 times of 200); "Okay nabu" missed ~4 times in 100.
WAKE_PHRASE = "Okay Nabu!"


@dataclass(frozen=True, slots=True)
class Scene:
    """Audio, and where (ms) each wake phrase in it starts and ends."""

    audio: np.ndarray
    phrases: list[tuple[int, int]]

    def heard_at(self, detection: WakeDetection) -> int | None:
        """Index of the phrase a detection belongs to, if any."""
        for index, (start, end) in enumerate(self.phrases):
            if start <= detection.timestamp_ms <= end + PAUSE_SECONDS * 1000:
                return index
        return None


def _scene(parts: list[tuple[np.ndarray, bool]]) -> Scene:
    """Join parts of audio; the flag marks the wake phrases."""
    phrases: list[tuple[int, int]] = []
    position = 0
    for audio, is_phrase in parts:
        if is_phrase:
            phrases.append((position, position + len(audio) * 1000 // ENGINE_RATE))
        position += len(audio) * 1000 // ENGINE_RATE
    return Scene(np.concatenate([audio for audio, _ in parts]), phrases)


@pytest.fixture(scope="module")
def okay_nabu_in_speech(speak: Speak) -> Scene:
    """Say the wake phrase between two sentences."""
    return _scene(
        [
            (speak("The weather is nice today."), False),
            (silence(PAUSE_SECONDS), False),
            (speak(WAKE_PHRASE), True),
            (silence(PAUSE_SECONDS), False),
            (speak("What time is it?"), False),
        ]
    )


@pytest.fixture(scope="module")
def no_wake_word(speak: Speak) -> np.ndarray:
    """Speech with no wake word in it."""
    return np.concatenate(
        [
            speak("The weather is nice today."),
            silence(PAUSE_SECONDS),
            speak("What time is it?"),
        ]
    )


@pytest.fixture(scope="module")
def okay_nabu_thrice(speak: Speak) -> Scene:
    """Say the wake phrase twice within the refractory period, then once after."""
    phrase = speak(WAKE_PHRASE)
    return _scene(
        [
            (phrase, True),
            (silence(0.3), False),
            (phrase, True),
            (silence(2.5), False),
            (phrase, True),
            (silence(1), False),
        ]
    )


@pytest.fixture(params=[MicroWakeWord, OpenWakeWord], ids=["micro", "open"])
def engine(request: pytest.FixtureRequest, executor: ThreadPoolExecutor) -> WakeWord:
    """Each engine with its packaged models."""
    engine_type: type[MicroWakeWord | OpenWakeWord] = request.param
    return engine_type(executor)


async def _listen(
    session: WakeSession, audio: np.ndarray, chunk: int = 1024
) -> list[WakeDetection]:
    detections: list[WakeDetection] = []
    for start in range(0, len(audio), chunk):
        detections += await session.process(audio[start : start + chunk])
    return detections


async def test_wake_word_in_speech_is_detected_once_where_said(
    engine: WakeWord, okay_nabu_in_speech: Scene
) -> None:
    """One detection at the phrase, whatever chunks the audio comes in."""
    heard = [
        await _listen(engine.start(["okay_nabu"]), okay_nabu_in_speech.audio, chunk)
        for chunk in (160, 1024, 4000)
    ]

    assert heard[0] == heard[1] == heard[2]
    [detection] = heard[0]
    assert detection.name == "okay_nabu"
    assert okay_nabu_in_speech.heard_at(detection) == 0


@pytest.mark.parametrize(
    ("names", "expected"),
    [(None, ["okay_nabu"]), (["hey_jarvis"], [])],
    ids=["all-models", "other-model"],
)
async def test_session_listens_for_the_names_it_was_given(
    engine: WakeWord,
    okay_nabu_in_speech: Scene,
    names: list[str] | None,
    expected: list[str],
) -> None:
    """No names: every model listens, and only the spoken one fires."""
    heard = await _listen(engine.start(names), okay_nabu_in_speech.audio)

    assert [detection.name for detection in heard] == expected


async def test_speech_without_wake_word_is_not_detected(
    engine: WakeWord, no_wake_word: np.ndarray
) -> None:
    """No model fires on ordinary speech."""
    assert await _listen(engine.start(None), no_wake_word) == []


async def test_refractory_period_gives_one_detection_per_utterance(
    engine: WakeWord, okay_nabu_thrice: Scene
) -> None:
    """A phrase repeated at once is ignored; one said 2.5 s later is not."""
    heard = await _listen(engine.start(["okay_nabu"]), okay_nabu_thrice.audio)

    assert [okay_nabu_thrice.heard_at(detection) for detection in heard] == [0, 2]


def test_unknown_model_is_refused(engine: WakeWord) -> None:
    """The error names the model and what is installed."""
    with pytest.raises(EngineError, match="no_such_word") as caught:
        engine.start(["okay_nabu", "no_such_word"])

    assert caught.value.code == ErrorCode.UNKNOWN_MODEL
    assert "okay_nabu" in str(caught.value)


@pytest.mark.parametrize("engine_type", [MicroWakeWord, OpenWakeWord])
def test_missing_model_folder_is_refused(
    engine_type: type[MicroWakeWord | OpenWakeWord],
    executor: ThreadPoolExecutor,
    tmp_path: Path,
) -> None:
    """A model folder that does not exist is named in the error."""
    with pytest.raises(EngineError, match="absent") as caught:
        engine_type(executor, [tmp_path / "absent"])

    assert caught.value.code == ErrorCode.MISSING_MODEL


def test_micro_models_describe_themselves(executor: ThreadPoolExecutor) -> None:
    """Phrase, languages and author come from each model's config."""
    models = {model.name: model for model in MicroWakeWord(executor).models}

    assert set(models) == {"okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"}
    okay_nabu = models["okay_nabu"]
    assert okay_nabu.phrase == "Okay Nabu"
    assert "en" in okay_nabu.languages
    assert okay_nabu.attribution_name == "Kevin Ahrendt"
    assert models["hey_jarvis"].phrase == "Hey Jarvis"


def test_open_models_show_their_licence(executor: ThreadPoolExecutor) -> None:
    """The packaged models are non-commercial: users see it where they pick."""
    models = {model.name: model for model in OpenWakeWord(executor).models}

    assert set(models) == {
        "alexa",
        "hey_jarvis",
        "hey_mycroft",
        "hey_rhasspy",
        "okay_nabu",
    }
    assert models["hey_rhasspy"].phrase == "Hey Rhasspy"
    for model in models.values():
        assert model.languages == ["en"]
        assert "CC BY-NC-SA 4.0" in model.description
        assert "CC BY-NC-SA 4.0" in model.attribution_name


def _write_micro_model(folder: Path, name: str, phrase: str) -> None:
    """Write the packaged okay_nabu microWakeWord model under a new name."""
    packaged = Path(pymicro_wakeword.__file__).parent / "models"
    shutil.copyfile(packaged / "okay_nabu.tflite", folder / f"{name}.tflite")
    config = json.loads((packaged / "okay_nabu.json").read_text())
    config |= {"model": f"{name}.tflite", "wake_word": phrase}
    (folder / f"{name}.json").write_text(json.dumps(config))


async def test_micro_models_from_a_folder(
    executor: ThreadPoolExecutor, tmp_path: Path, okay_nabu_in_speech: Scene
) -> None:
    """A folder adds models and replaces packaged ones of the same name."""
    _write_micro_model(tmp_path, "my_nabu", "My Nabu")
    _write_micro_model(tmp_path, "alexa", "Not Alexa")
    (tmp_path / "notes.json").write_text('{"not": "a model"}')
    engine = MicroWakeWord(executor, [tmp_path])
    phrases = {model.name: model.phrase for model in engine.models}

    assert phrases["my_nabu"] == "My Nabu"
    assert phrases["alexa"] == "Not Alexa"
    assert phrases["okay_nabu"] == "Okay Nabu"
    heard = await _listen(engine.start(["my_nabu"]), okay_nabu_in_speech.audio)
    assert [detection.name for detection in heard] == ["my_nabu"]


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ("{not json", ErrorCode.BAD_MODEL),
        (
            '{"type": "micro", "wake_word": "Hi", "model": "hi.tflite"}',
            ErrorCode.BAD_MODEL,
        ),
        (
            (
                '{"type": "micro", "wake_word": "Hi", "model": "hi.tflite", "micro":'
                ' {"probability_cutoff": 0.9, "sliding_window_size": 5}}'
            ),
            ErrorCode.MISSING_MODEL,
        ),
    ],
    ids=["not-json", "no-settings", "no-model-file"],
)
def test_unusable_micro_config_is_refused(
    executor: ThreadPoolExecutor, tmp_path: Path, config: str, code: str
) -> None:
    """The error names the config file."""
    (tmp_path / "hi.json").write_text(config)

    with pytest.raises(EngineError, match=r"hi\.json") as caught:
        MicroWakeWord(executor, [tmp_path])

    assert caught.value.code == code


def test_open_models_from_a_folder(
    executor: ThreadPoolExecutor, tmp_path: Path
) -> None:
    """A user's model is described by its name and folder, without our licence."""
    packaged = Path(pyopen_wakeword.__file__).parent / "models"
    shutil.copyfile(packaged / "okay_nabu.tflite", tmp_path / "hey_nabu.tflite")
    models = {model.name: model for model in OpenWakeWord(executor, [tmp_path]).models}

    assert models["hey_nabu"].phrase == "Hey Nabu"
    assert str(tmp_path) in models["hey_nabu"].description
    assert "CC BY-NC-SA" not in models["hey_nabu"].description
    assert "CC BY-NC-SA" in models["okay_nabu"].description
