"""Silero voice activity detection on speech from piper and on silence."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from custom_components.private_voice.engine_host.vad import FRAME_SAMPLES, SileroVad

from .conftest import Speak, silence


@pytest.fixture(scope="module")
def speech(speak: Speak) -> np.ndarray:
    """Say a sentence with no pause in it."""
    return speak("The weather is nice today.")


async def _probabilities(
    executor: ThreadPoolExecutor, audio: np.ndarray, chunk: int
) -> list[float]:
    vad = SileroVad(executor)
    probabilities: list[float] = []
    for start in range(0, len(audio), chunk):
        probabilities += await vad.process(audio[start : start + chunk])
    return probabilities


async def test_speech_is_likely_speech(
    executor: ThreadPoolExecutor, speech: np.ndarray
) -> None:
    """Most frames of a sentence are speech, with high probability."""
    probabilities = await _probabilities(executor, speech, 1024)

    assert len(probabilities) == len(speech) // FRAME_SAMPLES
    assert np.median(probabilities) > 0.8


async def test_silence_is_not_speech(executor: ThreadPoolExecutor) -> None:
    """No frame of silence is speech."""
    probabilities = await _probabilities(executor, silence(1), 1024)

    assert len(probabilities) == 16000 // FRAME_SAMPLES
    assert max(probabilities) < 0.1


async def test_chunk_size_does_not_matter(
    executor: ThreadPoolExecutor, speech: np.ndarray
) -> None:
    """Frames are cut from the stream, not from the chunks."""
    audio = np.concatenate([silence(0.5), speech])
    by_chunk = [
        await _probabilities(executor, audio, chunk) for chunk in (160, 1024, 4000)
    ]

    assert by_chunk[0] == by_chunk[1] == by_chunk[2]
    silent_frames = int(0.5 * 16000) // FRAME_SAMPLES
    assert max(by_chunk[0][:silent_frames]) < 0.1
    assert max(by_chunk[0][silent_frames:]) > 0.8
