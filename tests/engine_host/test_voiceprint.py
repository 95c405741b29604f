"""Voice prints: Resemblyzer's real weights read without torch, on real piper speech."""

from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
import io
from pathlib import Path
import pickle
import sys
import time
import types
from typing import Any
import zipfile

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from custom_components.private_voice.engine_host.catalogue import ModelKind
from custom_components.private_voice.engine_host.engines import EngineError, ErrorCode
from custom_components.private_voice.engine_host.models import ModelStore
from custom_components.private_voice.engine_host.server import (
    EngineHostServer,
    Engines,
)
from custom_components.private_voice.engine_host.stt import (
    FasterWhisperStt,
    WhisperModelSpec,
)
from custom_components.private_voice.engine_host.torch_pickle import (
    TorchFileError,
    load,
    load_tensors,
)
from custom_components.private_voice.engine_host.voiceprint import (
    Ge2eEncoder,
)

from ..wyoming_client import read_until
from .conftest import Speak, silence

COMMAND = "Turn on the kitchen lights and set the heating to twenty one degrees."
QUESTION = "What is the weather going to be like tomorrow morning in the city?"


@pytest.fixture(scope="module")
def encoder(weights: Path) -> Ge2eEncoder:
    """Load the real encoder once."""
    return Ge2eEncoder.load(weights)


def _noise(seconds: float, level: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(0, level, int(seconds * 16000)).astype(np.int16)


# The torch file ----------------------------------------------------------------


def test_reads_the_real_weights_without_torch(weights: Path) -> None:
    """Every tensor of the GE2E network comes out with torch's shapes, as float32."""
    tensors = load_tensors(weights)
    assert "torch" not in sys.modules
    expected = {
        "lstm.weight_ih_l0": (1024, 40),
        "lstm.weight_hh_l0": (1024, 256),
        "lstm.bias_ih_l0": (1024,),
        "lstm.weight_ih_l2": (1024, 256),
        "lstm.bias_hh_l2": (1024,),
        "linear.weight": (256, 256),
        "linear.bias": (256,),
    }
    for name, shape in expected.items():
        tensor = tensors[f"model_state.{name}"]
        assert tensor.shape == shape
        assert tensor.dtype == np.float32
        assert np.isfinite(tensor).all()
        assert tensor.std() > 0
    # The LSTM's weights share one storage (cuDNN's flat buffer): each tensor
    # is its own slice of it, not the start of the buffer over and over.
    assert not np.array_equal(
        tensors["model_state.lstm.weight_hh_l0"],
        tensors["model_state.lstm.weight_hh_l1"],
    )
    assert load(weights)["step"] > 0


def _legacy_file(obj_pickle: bytes) -> bytes:
    """Make a legacy torch file of ``obj_pickle`` and no storages."""
    header = b"".join(
        pickle.dumps(part, protocol=2)
        for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True})
    )
    return header + obj_pickle + pickle.dumps([], protocol=2)


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("torch", "load")],
)
def test_refuses_a_pickle_naming_any_other_global(
    tmp_path: Path, module: str, name: str
) -> None:
    """A pickle calling anything off the allow-list is refused before it runs."""
    marker = tmp_path / "ran"
    call = f"touch {marker}" if name == "system" else f"open({str(marker)!r}, 'w')"
    # GLOBAL module name, the argument, TUPLE1, REDUCE: module.name(argument).
    argument = pickle.dumps(call, protocol=2)[2:-1]
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + argument + b"\x85R."
    path = tmp_path / "evil.pt"
    path.write_bytes(_legacy_file(payload))
    with pytest.raises(TorchFileError, match=f"refusing to load {module}.{name}"):
        load(path)
    assert not marker.exists()
    with pytest.raises(EngineError) as caught:
        Ge2eEncoder.load(path)
    assert caught.value.code == ErrorCode.BAD_MODEL


@pytest.mark.parametrize("keep", [100, 5000, 9_000_000])
def test_truncated_file_is_a_clear_error(
    weights: Path, tmp_path: Path, keep: int
) -> None:
    """A file cut in its header, its pickle or its data says it is truncated."""
    path = tmp_path / "cut.pt"
    path.write_bytes(weights.read_bytes()[:keep])
    with pytest.raises(TorchFileError, match="truncated"):
        load(path)


def test_not_a_torch_file_is_refused(tmp_path: Path) -> None:
    """Another pickle, or no pickle at all, is not read as weights."""
    other = tmp_path / "other.pt"
    other.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(TorchFileError, match="magic"):
        load(other)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(TorchFileError):
        load(text)


def test_zip_layout_handmade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zip layout (torch >= 1.6) is read too: here written as torch writes it.

    Without torch, the pickle's globals are stand-ins registered under torch's
    names, so that the pickle names exactly what torch's would.
    """
    fake_torch = types.ModuleType("torch")
    fake_utils = types.ModuleType("torch._utils")

    class FloatStorage:
        """Stands for torch.FloatStorage."""

    def _rebuild_tensor_v2(*args: object) -> None:
        """Stands for torch._utils._rebuild_tensor_v2."""

    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    fake_torch.FloatStorage = FloatStorage  # type: ignore[attr-defined]
    fake_utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "torch._utils", fake_utils)

    data = np.arange(12, dtype="<f4")

    class Storage:
        """A storage, pickled as torch pickles one: by persistent id."""

    class Tensor:
        def __init__(
            self, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
        ) -> None:
            self.args = (offset, size, stride)

        def __reduce__(self) -> tuple[Any, ...]:
            offset, size, stride = self.args
            return (
                _rebuild_tensor_v2,
                (storage, offset, size, stride, False, OrderedDict()),
            )

    storage = Storage()

    class TorchPickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if obj is storage:
                return ("storage", FloatStorage, "0", "cpu", 12)
            return None

    state = OrderedDict(
        [("w", Tensor(0, (3, 4), (4, 1))), ("wt", Tensor(1, (2, 3), (1, 4)))]
    )
    buffer = io.BytesIO()
    TorchPickler(buffer, protocol=2).dump({"model_state": state})
    path = tmp_path / "zip.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", data.tobytes())
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delitem(sys.modules, "torch._utils")

    tensors = load_tensors(path)
    np.testing.assert_array_equal(tensors["model_state.w"], data.reshape(3, 4))
    np.testing.assert_array_equal(
        tensors["model_state.wt"], np.array([[1, 5, 9], [2, 6, 10]], dtype="<f4")
    )


# The encoder ---------------------------------------------------------------------


def test_print_is_unit_float32_and_deterministic(
    encoder: Ge2eEncoder, speak: Speak
) -> None:
    """256 float32 of unit length; the same samples give the same print."""
    samples = speak(COMMAND)
    first = encoder.embed(samples)
    assert first.shape == (256,)
    assert first.dtype == np.float32
    assert np.linalg.norm(first) == pytest.approx(1, abs=1e-5)
    # The network ends in a ReLU: a print has no negative parts.
    assert (first >= 0).all()
    np.testing.assert_array_equal(encoder.embed(samples.copy()), first)


def test_same_voice_scores_high_and_silence_around_it_changes_little(
    encoder: Ge2eEncoder, speak: Speak
) -> None:
    """Re-encoding scores 1; silence around the speech is trimmed away."""
    command = encoder.embed(speak(COMMAND))
    padded = np.concatenate([silence(1.0), speak(COMMAND), silence(1.5)])
    measured = encoder.measure(padded)
    assert float(measured.vector @ command) > 0.98
    # Trimmed: the 2.5 s of silence is not counted as speech.
    assert measured.speech_seconds < len(speak(COMMAND)) / 16000 + 0.5
    # Another sentence by the same (piper) voice.
    question = encoder.embed(speak(QUESTION))
    assert float(question @ command) > 0.8


def test_noise_silence_and_a_word_are_too_little_speech(
    encoder: Ge2eEncoder, speak: Speak
) -> None:
    """No print from hiss, from silence, or from a quarter second of speech."""
    for samples in (
        _noise(3.0, 3000),
        silence(3.0),
        speak(COMMAND)[:4000],
        np.zeros(0, dtype=np.int16),
    ):
        with pytest.raises(EngineError) as caught:
            encoder.embed(samples)
        assert caught.value.code == ErrorCode.TOO_LITTLE_SPEECH


def test_speech_in_noise_keeps_its_voice(encoder: Ge2eEncoder, speak: Speak) -> None:
    """Speech over quiet hiss is still closer to itself than hiss is to anything."""
    clean = speak(COMMAND)
    noisy = (clean + _noise(len(clean) / 16000, 150)).astype(np.int16)
    assert float(encoder.embed(noisy) @ encoder.embed(clean)) > 0.9


def test_five_seconds_take_well_under_a_second(
    encoder: Ge2eEncoder, speak: Speak
) -> None:
    """One print of 5 s of speech, timed (the host runs one OpenBLAS thread)."""
    samples = np.concatenate([speak(COMMAND), speak(QUESTION)])[: 5 * 16000]
    encoder.embed(samples)
    started = time.perf_counter()
    encoder.embed(samples)
    elapsed = time.perf_counter() - started
    print(f"one 5 s voice print: {elapsed * 1000:.0f} ms")  # noqa: T201
    assert elapsed < 5


def test_a_file_of_other_weights_is_a_bad_model(tmp_path: Path) -> None:
    """A torch file that is not this network is refused with bad-model."""
    path = tmp_path / "other.pt"
    path.write_bytes(_legacy_file(pickle.dumps({"model_state": {}}, protocol=2)))
    with pytest.raises(EngineError, match="not a GE2E encoder") as caught:
        Ge2eEncoder.load(path)
    assert caught.value.code == ErrorCode.BAD_MODEL


async def test_model_store_offers_the_packaged_encoder(
    tmp_path: Path, weights: Path
) -> None:
    """The store lists the packaged weights like any other packaged model."""
    store = ModelStore(tmp_path)
    (model,) = await store.installed(ModelKind.VOICE_ENCODER)
    assert model.name == "resemblyzer-ge2e"
    assert model.path == weights
    # The same model the catalogue downloads where the package is absent.
    assert model.entry in await store.catalogue(ModelKind.VOICE_ENCODER)


# Over Wyoming ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def engines(
    executor: ThreadPoolExecutor, whisper_tiny_en_dir: Path, weights: Path
) -> Engines:
    """tiny.en and the voice encoder, both in the shared executor."""
    return Engines(
        stt=FasterWhisperStt(
            {"tiny.en": WhisperModelSpec(path=whisper_tiny_en_dir, description="tiny")},
            executor,
        ),
        speaker=Ge2eEncoder.load(weights, executor=executor),
    )


@pytest.fixture
async def server(
    socket_enabled: None, engines: Engines
) -> AsyncIterator[EngineHostServer]:
    """Run an engine host with voice prints on a free loopback port."""
    host = EngineHostServer(engines, version="1.2.3")
    await host.start("127.0.0.1", 0)
    yield host
    await host.stop()


async def _transcribe(
    port: int, samples: np.ndarray, context: dict[str, Any] | None
) -> Transcript:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en", context=context).event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        data = samples.astype(np.int16).tobytes()
        for offset in range(0, len(data), 2048):
            await client.write_event(
                AudioChunk(
                    rate=16000, width=2, channels=1, audio=data[offset : offset + 2048]
                ).event()
            )
        await client.write_event(AudioStop().event())
        events = await read_until(client, "transcript")
    return Transcript.from_event(events[-1])


async def test_transcript_carries_the_voice_print_when_asked(
    server: EngineHostServer, encoder: Ge2eEncoder, speak: Speak
) -> None:
    """Asked for, the print arrives with the transcript, as 256 rounded floats."""
    samples = np.concatenate([silence(0.3), speak(COMMAND), silence(0.5)])
    transcript = await _transcribe(server.port, samples, {"voice_print": True})
    assert "kitchen" in transcript.text.lower()
    assert transcript.context is not None
    vector = transcript.context["voice_print"]
    assert len(vector) == 256
    assert all(isinstance(value, float) for value in vector)
    assert all(round(value, 5) == value for value in vector)
    received = np.array(vector)
    assert np.linalg.norm(received) == pytest.approx(1, abs=1e-3)
    direct = await encoder.voice_print(samples)
    assert float(received @ direct.vector) > 0.9999
    assert 0.5 < transcript.context["voice_print_seconds"] <= len(samples) / 16000


async def test_transcript_is_unchanged_when_not_asked(
    server: EngineHostServer, speak: Speak
) -> None:
    """A client that does not ask (or asks for something else) gets no context."""
    samples = np.concatenate([speak(COMMAND), silence(0.5)])
    for context in (None, {"voice_print": False}, {"voice_print": "yes"}):
        transcript = await _transcribe(server.port, samples, context)
        assert "kitchen" in transcript.text.lower()
        assert transcript.context is None


async def test_too_short_an_utterance_gets_its_transcript_and_an_error_code(
    server: EngineHostServer, speak: Speak
) -> None:
    """Too little speech for a print: the transcript still arrives, with the reason."""
    samples = np.concatenate([speak("Yes.")[:5000], silence(0.5)])
    transcript = await _transcribe(server.port, samples, {"voice_print": True})
    assert transcript.context == {"voice_print_error": "too-little-speech"}


async def test_describe_says_voice_prints_can_be_asked_for(
    server: EngineHostServer,
) -> None:
    """The speech-to-text program's description mentions voice prints; Info parses."""
    async with AsyncTcpClient("127.0.0.1", server.port) as client:
        await client.write_event(Describe().event())
        events = await read_until(client, "info")
    (asr,) = Info.from_event(events[-1]).asr
    assert "voice prints" in (asr.description or "")
    assert [model.name for model in asr.models] == ["tiny.en"]
