"""The voice encoder's download: one file kept out of Resemblyzer's wheel.

A local HTTP server on 127.0.0.1 stands in for PyPI (tests named mock_pypi):
it serves wheels built here, holding the real packaged weights. One test
downloads the real wheel from PyPI, in a child process (the test harness
allows no other host), and skips when PyPI cannot be reached.
"""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
import errno
import filecmp
import hashlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import io
import logging
import os
from pathlib import Path
import shutil
import subprocess
import sys
from typing import IO, Any, override
import zipfile

import numpy as np
import pytest

from custom_components.private_voice import engine_host
from custom_components.private_voice.engine_host.catalogue import (
    VOICE_ENCODER_CATALOGUE,
    VOICE_ENCODER_NAME,
    CatalogueEntry,
    ModelKind,
)
from custom_components.private_voice.engine_host.cli import compose, parse_args
from custom_components.private_voice.engine_host.engines import EngineError
from custom_components.private_voice.engine_host.models import (
    ModelStore,
)
from custom_components.private_voice.engine_host.voiceprint import Ge2eEncoder

from .conftest import Speak, serving

_ENTRY = VOICE_ENCODER_CATALOGUE[0]
_WHEEL = _ENTRY.files[0]
_MEMBER = "resemblyzer/pretrained.pt"
# Where the wheel is on the stand-in, as on files.pythonhosted.org.
_WHEEL_PATH = f"/packages/d9/b5/{_WHEEL.path}"
_PHRASE = "Turn on the kitchen lights and set the heating to twenty one degrees."


def _wheel(members: dict[str, bytes | Path]) -> bytes:
    """Build a wheel (a zip, deflated as pip's are) holding ``members``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, content in members.items():
            if isinstance(content, Path):
                wheel.write(content, name)
            else:
                wheel.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def wheel(weights: Path) -> bytes:
    """Build a Resemblyzer-like wheel with the real weights in it."""
    return _wheel(
        {
            "resemblyzer/__init__.py": b"",
            _MEMBER: weights,
            "Resemblyzer-0.1.4.dist-info/RECORD": b"",
        }
    )


@dataclass
class FakePypi:
    """Files by URL path, and the paths asked for."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    endpoint: str = ""

    def entry(self, wheel: bytes, **changes: Any) -> CatalogueEntry:
        """Serve ``wheel``; give the real catalogue entry, pointing at it."""
        self.files[_WHEEL_PATH] = wheel
        served = replace(
            _WHEEL,
            url=f"{self.endpoint}{_WHEEL_PATH}",
            size=len(wheel),
            digest=hashlib.sha256(wheel).hexdigest(),
        )
        return replace(_ENTRY, files=(replace(served, **changes),))


class _Handler(BaseHTTPRequestHandler):
    server: _PypiServer

    def do_GET(self) -> None:
        pypi = self.server.pypi
        pypi.requests.append(self.path)
        if (content := pypi.files.get(self.path)) is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _PypiServer(ThreadingHTTPServer):
    # Request threads are joined on close, so no test leaves one behind.
    daemon_threads = False

    def __init__(self, pypi: FakePypi) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pypi = pypi


@pytest.fixture
def pypi(socket_enabled: None) -> Iterator[FakePypi]:
    """Run the stand-in for PyPI for one test."""
    fake = FakePypi()
    with serving(_PypiServer(fake), "fake-pypi") as fake.endpoint:
        yield fake


@pytest.fixture
def new_store(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> Callable[[CatalogueEntry], ModelStore]:
    """Make a store with one voice encoder in its catalogue, none packaged."""

    def _new(entry: CatalogueEntry) -> ModelStore:
        return ModelStore(
            tmp_path, executor=executor, packaged=(), voice_encoders=(entry,)
        )

    return _new


def _left(store: ModelStore) -> list[str]:
    """List the voice encoders' folder, hidden staging folders included."""
    folder = store.folder(ModelKind.VOICE_ENCODER)
    return sorted(item.name for item in folder.iterdir()) if folder.exists() else []


async def test_mock_pypi_download_installs_the_weights(
    pypi: FakePypi,
    wheel: bytes,
    weights: Path,
    new_store: Callable[[CatalogueEntry], ModelStore],
    speak: Speak,
) -> None:
    store = new_store(pypi.entry(wheel))
    progress: list[tuple[int, int]] = []

    path = await store.download(
        ModelKind.VOICE_ENCODER,
        VOICE_ENCODER_NAME,
        lambda done, total: progress.append((done, total)),
    )

    assert path == store.folder(ModelKind.VOICE_ENCODER) / f"{VOICE_ENCODER_NAME}.pt"
    assert _left(store) == [path.name]
    assert filecmp.cmp(path, weights, shallow=False)
    # Progress counts the wheel's bytes, growing to its size.
    assert progress
    assert {total for _, total in progress} == {len(wheel)}
    done = [done for done, _ in progress]
    assert done == sorted(done)
    assert done[-1] == len(wheel)
    # The downloaded weights are the packaged ones: the same voice print.
    speech = speak(_PHRASE)
    downloaded = Ge2eEncoder.load(path).embed(speech)
    np.testing.assert_array_equal(downloaded, Ge2eEncoder.load(weights).embed(speech))
    # Installed, with its licence: no second download.
    [installed] = await store.installed(ModelKind.VOICE_ENCODER)
    assert installed.path == path
    assert installed.entry is not None
    assert installed.entry.licence == "Apache-2.0"
    assert await store.download(ModelKind.VOICE_ENCODER, VOICE_ENCODER_NAME) == path
    assert pypi.requests == [_WHEEL_PATH]


async def test_mock_pypi_wrong_sha256_is_refused_and_nothing_kept(
    pypi: FakePypi, wheel: bytes, new_store: Callable[[CatalogueEntry], ModelStore]
) -> None:
    store = new_store(pypi.entry(wheel, digest="0" * 64))

    with pytest.raises(EngineError, match=r"\.whl is corrupt: sha256 ") as caught:
        await store.download(ModelKind.VOICE_ENCODER, VOICE_ENCODER_NAME)

    assert caught.value.code == "download-failed"
    assert pypi.requests == [_WHEEL_PATH]
    assert _left(store) == []
    assert await store.installed(ModelKind.VOICE_ENCODER) == []


@pytest.mark.parametrize(
    ("members", "error"),
    [
        ({"resemblyzer/__init__.py": b""}, rf"holds no {_MEMBER}"),
        ({_MEMBER: b"not the weights"}, rf"{_MEMBER} in .* is 15 bytes, not \d+"),
    ],
    ids=["without the member", "member of another size"],
)
async def test_mock_pypi_wheel_without_the_weights_is_refused(
    pypi: FakePypi,
    new_store: Callable[[CatalogueEntry], ModelStore],
    members: dict[str, bytes | Path],
    error: str,
) -> None:
    # Its checksum holds: the catalogue names what the wheel does not have.
    store = new_store(pypi.entry(_wheel(members)))

    with pytest.raises(EngineError, match=error) as caught:
        await store.download(ModelKind.VOICE_ENCODER, VOICE_ENCODER_NAME)

    assert caught.value.code == "download-failed"
    assert _left(store) == []


async def test_mock_pypi_not_enough_space_fails_before_downloading(
    pypi: FakePypi, wheel: bytes, new_store: Callable[[CatalogueEntry], ModelStore]
) -> None:
    # The wheel fits anywhere; the weights taken out of it, claimed huge, do not.
    entry = pypi.entry(wheel)
    assert entry.member is not None
    store = new_store(replace(entry, member=replace(entry.member, size=1 << 60)))

    with pytest.raises(EngineError, match=r"needs \d+ bytes, .* free") as caught:
        await store.download(ModelKind.VOICE_ENCODER, VOICE_ENCODER_NAME)

    assert caught.value.code == "disk-full"
    assert pypi.requests == []
    assert _left(store) == []


async def test_mock_pypi_mock_disk_filling_while_extracting_leaves_nothing(
    pypi: FakePypi,
    wheel: bytes,
    new_store: Callable[[CatalogueEntry], ModelStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A disk that fills up cannot be made here: the copy out of the wheel
    # writes a first chunk, then fails as a full disk does.
    def copy_until_full(source: IO[bytes], out: IO[bytes]) -> None:
        out.write(source.read(1 << 20))
        out.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shutil, "copyfileobj", copy_until_full)
    store = new_store(pypi.entry(wheel))

    with pytest.raises(EngineError, match=r"No space left in .* for ") as caught:
        await store.download(ModelKind.VOICE_ENCODER, VOICE_ENCODER_NAME)

    assert caught.value.code == "disk-full"
    assert pypi.requests == [_WHEEL_PATH]
    assert _left(store) == []


async def test_packaged_encoder_wins_over_a_download(
    tmp_path: Path, executor: ThreadPoolExecutor, weights: Path, free_port: int
) -> None:
    # Nothing listens there: the store must not even try.
    dead = replace(_WHEEL, url=f"http://127.0.0.1:{free_port}{_WHEEL_PATH}")
    store = ModelStore(
        tmp_path, executor=executor, voice_encoders=(replace(_ENTRY, files=(dead,)),)
    )

    path = await store.download(ModelKind.VOICE_ENCODER, VOICE_ENCODER_NAME)

    assert path == weights
    assert _left(store) == []


# The engine host's command line -------------------------------------------------


@pytest.mark.parametrize("flag", ["--download", "--download-voice-encoder"])
async def test_mock_pypi_host_downloads_a_missing_encoder(
    pypi: FakePypi,
    wheel: bytes,
    new_store: Callable[[CatalogueEntry], ModelStore],
    executor: ThreadPoolExecutor,
    flag: str,
) -> None:
    store = new_store(pypi.entry(wheel))

    engines = await compose(
        parse_args(["--models-dir", str(store.models_dir), flag]), store, executor
    )

    assert isinstance(engines.speaker, Ge2eEncoder)
    assert _left(store) == [f"{VOICE_ENCODER_NAME}.pt"]
    assert pypi.requests == [_WHEEL_PATH]


async def test_mock_pypi_host_without_download_offers_no_voice_prints(
    pypi: FakePypi,
    wheel: bytes,
    new_store: Callable[[CatalogueEntry], ModelStore],
    executor: ThreadPoolExecutor,
) -> None:
    store = new_store(pypi.entry(wheel))

    engines = await compose(
        parse_args(["--models-dir", str(store.models_dir)]), store, executor
    )

    assert engines.speaker is None
    assert pypi.requests == []


async def test_mock_pypi_failed_encoder_download_leaves_the_host_serving(
    pypi: FakePypi,
    wheel: bytes,
    new_store: Callable[[CatalogueEntry], ModelStore],
    executor: ThreadPoolExecutor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = new_store(pypi.entry(wheel, digest="0" * 64))
    args = parse_args(["--models-dir", str(store.models_dir), "--download"])

    with caplog.at_level(logging.WARNING):
        engines = await compose(args, store, executor)

    # Voice prints are an extra: the host starts without them, and says why.
    assert engines.speaker is None
    assert engines.wake
    assert "No voice prints" in caplog.text
    assert "download-failed" in caplog.text
    assert _left(store) == []


# PyPI itself --------------------------------------------------------------------

# Run as a child, with the package standalone as the engine host runs it: the
# test harness lets this process reach 127.0.0.1 only.
_REAL_DOWNLOAD = """
import asyncio, sys
from pathlib import Path
from engine_host.catalogue import VOICE_ENCODER_NAME, ModelKind
from engine_host.engines import EngineError
from engine_host.models import ModelStore

async def main() -> None:
    store = ModelStore(Path(sys.argv[1]), packaged=())
    try:
        print(await store.download(ModelKind.VOICE_ENCODER, VOICE_ENCODER_NAME))
    except EngineError as err:
        print(f"{err.code}: {err}")
        sys.exit(3)

asyncio.run(main())
"""


def test_real_pypi_download(tmp_path: Path, weights: Path) -> None:
    """Download the pinned wheel from files.pythonhosted.org (15.7 MB)."""
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _REAL_DOWNLOAD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(engine_host.__file__).parent.parent)},
    )
    answer = done.stdout.strip()
    if done.returncode == 3 and "cannot reach" in answer:
        pytest.skip(f"PyPI is unreachable from here: {answer}")
    assert done.returncode == 0, f"{answer}\n{done.stderr}"
    path = Path(answer)
    assert path == tmp_path / "voice-encoder" / f"{VOICE_ENCODER_NAME}.pt"
    assert filecmp.cmp(path, weights, shallow=False)
    Ge2eEncoder.load(path)
