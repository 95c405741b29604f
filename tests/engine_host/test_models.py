"""The model store against a real HTTP peer: a local hub serving packaged models.

The hub on 127.0.0.1 speaks Hugging Face's layout: ``/api/models/<repo>/tree/
<rev>`` listings with LFS hashes, ``/<repo>/resolve/<rev>/<file>`` with LFS
files redirected to a CDN path, and piper-voices' ``voices.json``.
"""

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
import filecmp
from functools import partial
import hashlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import re
import threading
from typing import Any, Self, cast, override
from urllib.parse import unquote

import pytest

from custom_components.private_voice.engine_host.catalogue import (
    PIPER_REPO,
    WHISPER_CATALOGUE,
    WHISPER_V3_LANGUAGES,
    ModelKind,
    Speed,
    piper_fallback,
)
from custom_components.private_voice.engine_host.engines import EngineError
from custom_components.private_voice.engine_host.models import (
    PACKAGED_MODELS,
    ModelStore,
    PackagedModel,
)

from .conftest import serving

# Files at or above this size are LFS files on the fake hub, as model.bin and
# tokenizer.json are on the real one.
_LFS_THRESHOLD = 1 << 20
_CHUNK = 1 << 20
# The hub serves tiny.en's files as "tiny": the store checks them against the
# hub's listing, not their content, and the packaged tiny.en stays out of it.
_WHISPER_REPO = "Systran/faster-whisper-tiny"
_JOE = "en_US-joe-medium"
_JOE_PATH = f"en/en_US/joe/medium/{_JOE}"
# What the hub offers of each kind.
_SERVED = {ModelKind.WHISPER: "tiny", ModelKind.PIPER: _JOE}


@dataclass(frozen=True, slots=True)
class Blob:
    """A file the hub serves, with the hashes the hub publishes for it."""

    source: Path
    size: int
    sha256: str
    git_sha1: str
    md5: str

    @classmethod
    def of(cls, source: Path) -> Self:
        """Read a file's size and hashes."""
        size = source.stat().st_size
        sha256 = hashlib.sha256()
        git_sha1 = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
        md5 = hashlib.md5(usedforsecurity=False)
        with source.open("rb") as file:
            while chunk := file.read(_CHUNK):
                for hasher in (sha256, git_sha1, md5):
                    hasher.update(chunk)
        return cls(
            source, size, sha256.hexdigest(), git_sha1.hexdigest(), md5.hexdigest()
        )

    @property
    def lfs(self) -> bool:
        """Whether the hub keeps it in LFS."""
        return self.size >= _LFS_THRESHOLD


@dataclass
class FakeHub:
    """What the hub holds, and how it misbehaves when a test asks it to."""

    repos: dict[str, dict[str, Blob]]
    endpoint: str = ""
    requests: list[str] = field(default_factory=list)
    # URL path: HTTP status answered instead.
    status: dict[str, int] = field(default_factory=dict)
    # Repository file paths sent with a flipped byte, or cut in the middle.
    corrupt: set[str] = field(default_factory=set)
    truncate: set[str] = field(default_factory=set)
    # Repository file paths whose second half waits for the event.
    hold: dict[str, threading.Event] = field(default_factory=dict)

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one GET request."""
        path = unquote(handler.path)
        self.requests.append(path)
        if (status := self.status.get(path)) is not None:
            handler.send_error(status)
        elif match := re.fullmatch(r"/api/models/(.+)/tree/main", path):
            self._send_listing(handler, match[1])
        elif match := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
            self._send_blob(handler, match[1])
        elif match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/main/(.+)", path):
            self._send_resolved(handler, match[1], match[2])
        else:
            handler.send_error(404)

    def _send_listing(self, handler: BaseHTTPRequestHandler, repo: str) -> None:
        if (blobs := self.repos.get(repo)) is None:
            handler.send_error(404)
            return
        listing: list[dict[str, Any]] = [
            {"type": "directory", "oid": "0" * 40, "size": 0, "path": "extras"}
        ]
        for path, blob in blobs.items():
            entry: dict[str, Any] = {
                "type": "file",
                "oid": blob.git_sha1,
                "size": blob.size,
                "path": path,
            }
            if blob.lfs:
                entry["lfs"] = {
                    "oid": blob.sha256,
                    "size": blob.size,
                    "pointerSize": 134,
                }
            listing.append(entry)
        body = json.dumps(listing).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _send_resolved(
        self, handler: BaseHTTPRequestHandler, repo: str, path: str
    ) -> None:
        if (blob := self.repos.get(repo, {}).get(path)) is None:
            handler.send_error(404)
        elif blob.lfs:
            # As the hub does: LFS content comes from its CDN.
            handler.send_response(302)
            handler.send_header("Location", f"/cdn/{blob.sha256}")
            handler.send_header("X-Linked-Etag", f'"{blob.sha256}"')
            handler.send_header("X-Linked-Size", str(blob.size))
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        else:
            self._send_content(handler, path, blob)

    def _send_blob(self, handler: BaseHTTPRequestHandler, sha256: str) -> None:
        for blobs in self.repos.values():
            for path, blob in blobs.items():
                if blob.sha256 == sha256:
                    self._send_content(handler, path, blob)
                    return
        handler.send_error(404)

    def _send_content(
        self, handler: BaseHTTPRequestHandler, path: str, blob: Blob
    ) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(blob.size))
        handler.end_headers()
        half = blob.size // 2
        sent = 0
        try:
            with blob.source.open("rb") as source:
                while chunk := source.read(
                    _CHUNK if sent >= half else min(_CHUNK, half - sent)
                ):
                    if path in self.corrupt and sent == 0:
                        chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    if sent >= half:
                        if path in self.truncate:
                            return
                        if (gate := self.hold.get(path)) is not None:
                            gate.wait()
                    handler.wfile.write(chunk)
                    sent += len(chunk)
        except BrokenPipeError, ConnectionResetError:
            pass  # The client gave up, which is what some tests are about.


class _HubServer(ThreadingHTTPServer):
    # Request threads are joined on close, so no test leaves one behind.
    daemon_threads = False

    def __init__(self, hub: FakeHub) -> None:
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.hub = hub


class _HubHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        cast("_HubServer", self.server).hub.serve(self)

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def whisper_blobs(
    whisper_tiny_en_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Blob]:
    """tiny.en's files, and a README that faster-whisper does not need."""
    readme = tmp_path_factory.mktemp("readme") / "README.md"
    readme.write_text("# faster-whisper tiny\n")
    blobs = {item.name: Blob.of(item) for item in whisper_tiny_en_dir.iterdir()}
    blobs["README.md"] = Blob.of(readme)
    return blobs


@pytest.fixture(scope="module")
def piper_blobs(
    piper_voice_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Blob]:
    """Joe's files where piper-voices keeps them, and a voices.json listing them."""
    model = Blob.of(piper_voice_path)
    config = Blob.of(piper_voice_path.with_name(f"{_JOE}.onnx.json"))
    index = {
        _JOE: {
            "key": _JOE,
            "name": "joe",
            "language": {"code": "en_US", "family": "en", "region": "US"},
            "quality": "medium",
            "num_speakers": 1,
            "speaker_id_map": {},
            "files": {
                f"{_JOE_PATH}.onnx": {
                    "size_bytes": model.size,
                    "md5_digest": model.md5,
                },
                f"{_JOE_PATH}.onnx.json": {
                    "size_bytes": config.size,
                    "md5_digest": config.md5,
                },
            },
            "aliases": [],
        },
        # Not a voice name: left out of the catalogue.
        "joe's notes": {"files": {}},
    }
    voices = tmp_path_factory.mktemp("piper-voices") / "voices.json"
    voices.write_text(json.dumps(index))
    return {
        "voices.json": Blob.of(voices),
        f"{_JOE_PATH}.onnx": model,
        f"{_JOE_PATH}.onnx.json": config,
    }


@pytest.fixture
def hub(
    socket_enabled: None,
    whisper_blobs: dict[str, Blob],
    piper_blobs: dict[str, Blob],
) -> Iterator[FakeHub]:
    """Run a hub for one test: tests change how it behaves."""
    fake = FakeHub(
        repos={_WHISPER_REPO: dict(whisper_blobs), PIPER_REPO: dict(piper_blobs)}
    )
    with serving(_HubServer(fake), "fake-hub") as fake.endpoint:
        try:
            yield fake
        finally:
            # Held downloads finish, so the server's threads can be joined.
            for gate in fake.hold.values():
                gate.set()


@pytest.fixture
def dead_endpoint(free_port: int) -> str:
    """Give a hub address where nothing listens: any network use fails."""
    return f"http://127.0.0.1:{free_port}"


@pytest.fixture
def new_store(tmp_path: Path, executor: ThreadPoolExecutor) -> partial[ModelStore]:
    """Make stores on one models folder; without packaged models unless asked."""
    return partial(ModelStore, tmp_path, executor=executor, packaged=())


type Progress = list[tuple[int, int]]


def _recorder() -> tuple[Progress, Callable[[int, int], None]]:
    calls: Progress = []
    return calls, lambda done, total: calls.append((done, total))


def _assert_progress(calls: Progress, total: int) -> None:
    """Check progress: growing up to the total, which never changes."""
    assert calls
    assert all(reported_total == total for _, reported_total in calls)
    done = [reported_done for reported_done, _ in calls]
    assert done == sorted(done)
    assert done[-1] == total


def _names(folder: Path) -> list[str]:
    return sorted(item.name for item in folder.iterdir())


def _same_files(folder: Path, reference: Path) -> bool:
    """Tell whether ``folder`` holds exactly the files of ``reference``."""
    names = _names(reference)
    return _names(folder) == names and all(
        filecmp.cmp(folder / name, reference / name, shallow=False) for name in names
    )


def _left_in(store: ModelStore, kind: ModelKind) -> list[str]:
    """List what is in a kind's folder, apart from the cached piper index."""
    folder = store.folder(kind)
    if not folder.exists():
        return []
    return [name for name in _names(folder) if name != "voices.json"]


# Catalogue ---------------------------------------------------------------------


def test_whisper_catalogue_follows_faster_whisper() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # noqa: PLC0415
    from faster_whisper.utils import _MODELS  # noqa: PLC0415

    entries = {entry.name: entry for entry in WHISPER_CATALOGUE}
    # Every model faster-whisper can fetch, less two aliases of the same repos.
    assert set(_MODELS) - set(entries) == {"large", "large-v3-turbo"}
    assert all(_MODELS[name] == entry.repo for name, entry in entries.items())
    assert set(WHISPER_V3_LANGUAGES) == set(_LANGUAGE_CODES)
    assert entries["tiny.en"].languages == ("en",)
    assert entries["distil-large-v3"].languages == ("en",)
    assert "yue" not in entries["small"].languages
    assert "yue" in entries["turbo"].languages
    assert entries["tiny"].speed is Speed.FAST
    assert entries["large-v3"].speed is Speed.ACCURATE
    assert entries["tiny"].files == ()


def test_piper_fallback_follows_the_repository_layout() -> None:
    entries = {entry.name: entry for entry in piper_fallback()}
    lessac = entries["en_US-lessac-medium"]
    config, model = lessac.files
    assert config.path == "en/en_US/lessac/medium/en_US-lessac-medium.onnx.json"
    assert model.path == "en/en_US/lessac/medium/en_US-lessac-medium.onnx"
    assert model.checksum == "md5"
    assert lessac.languages == ("en_US",)
    assert lessac.speed is Speed.BALANCED
    assert lessac.size_mb == 64
    assert {entry.languages[0][:2] for entry in entries.values()} >= {"de", "fr", "es"}


async def test_piper_catalogue_offline_is_the_builtin_list(
    new_store: partial[ModelStore], dead_endpoint: str
) -> None:
    store = new_store(endpoint=dead_endpoint)
    assert await store.catalogue(ModelKind.PIPER) == piper_fallback()
    assert await store.catalogue(ModelKind.WHISPER) == list(WHISPER_CATALOGUE)


async def test_refresh_catalogue_caches_voices_json(
    hub: FakeHub,
    new_store: partial[ModelStore],
    dead_endpoint: str,
    piper_blobs: dict[str, Blob],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    store = new_store()
    [joe] = await store.refresh_catalogue()
    assert joe.name == _JOE
    assert joe.languages == ("en_US",)
    assert joe.files[1].digest == piper_blobs[f"{_JOE_PATH}.onnx"].md5
    cached = store.folder(ModelKind.PIPER) / "voices.json"
    assert filecmp.cmp(cached, piper_blobs["voices.json"].source, shallow=False)
    assert _left_in(store, ModelKind.PIPER) == []

    # Later, offline: the cached index is the catalogue.
    offline = new_store(endpoint=dead_endpoint)
    assert await offline.catalogue(ModelKind.PIPER) == [joe]

    # A damaged cache is ignored for the built-in list.
    cached.write_text("{")
    assert await offline.catalogue(ModelKind.PIPER) == piper_fallback()


# Downloads ---------------------------------------------------------------------


async def test_download_whisper_model(
    hub: FakeHub,
    new_store: partial[ModelStore],
    dead_endpoint: str,
    whisper_tiny_en_dir: Path,
) -> None:
    store = new_store(endpoint=hub.endpoint)
    calls, progress = _recorder()

    path = await store.download(ModelKind.WHISPER, "tiny", progress)

    assert path == store.models_dir / "faster-whisper" / "tiny"
    assert _same_files(path, whisper_tiny_en_dir)
    total = sum(
        blob.size
        for name, blob in hub.repos[_WHISPER_REPO].items()
        if name != "README.md"
    )
    _assert_progress(calls, total)
    assert f"/{_WHISPER_REPO}/resolve/main/README.md" not in hub.requests
    # model.bin came the way the hub sends LFS files: through a redirect.
    assert any(request.startswith("/cdn/") for request in hub.requests)
    assert _left_in(store, ModelKind.WHISPER) == ["tiny"]

    # Installed: found without the network, with what the catalogue knows.
    offline = new_store(endpoint=dead_endpoint)
    assert await offline.download(ModelKind.WHISPER, "tiny") == path
    [installed] = await offline.installed(ModelKind.WHISPER)
    assert installed.name == "tiny"
    assert installed.path == path
    assert installed.entry is not None
    assert "de" in installed.entry.languages


async def test_download_piper_voice(
    hub: FakeHub, new_store: partial[ModelStore], piper_voice_path: Path
) -> None:
    store = new_store(endpoint=hub.endpoint)
    calls, progress = _recorder()

    # Not in the built-in list: found in the hub's voices.json, then fetched.
    path = await store.download(ModelKind.PIPER, _JOE, progress)

    assert path == store.models_dir / "piper" / f"{_JOE}.onnx"
    config = path.with_name(f"{_JOE}.onnx.json")
    assert filecmp.cmp(path, piper_voice_path, shallow=False)
    assert filecmp.cmp(config, piper_voice_path.with_name(config.name), shallow=False)
    blobs = hub.repos[PIPER_REPO]
    total = blobs[f"{_JOE_PATH}.onnx"].size + blobs[f"{_JOE_PATH}.onnx.json"].size
    _assert_progress(calls, total)
    assert f"/{PIPER_REPO}/resolve/main/voices.json" in hub.requests
    assert _left_in(store, ModelKind.PIPER) == [f"{_JOE}.onnx", f"{_JOE}.onnx.json"]
    [installed] = await store.installed(ModelKind.PIPER)
    assert installed.path == path
    assert installed.entry is not None
    assert installed.entry.languages == ("en_US",)


@pytest.mark.parametrize(
    ("kind", "broken", "checksum"),
    [
        (ModelKind.WHISPER, "vocabulary.txt", "git-sha1"),
        (ModelKind.WHISPER, "tokenizer.json", "sha256"),
        (ModelKind.PIPER, f"{_JOE_PATH}.onnx.json", "md5"),
    ],
)
async def test_corrupt_file_is_refused_and_removed(
    hub: FakeHub,
    new_store: partial[ModelStore],
    kind: ModelKind,
    broken: str,
    checksum: str,
) -> None:
    name = _SERVED[kind]
    hub.corrupt.add(broken)
    store = new_store(endpoint=hub.endpoint)

    expected = rf"{re.escape(name)}: {re.escape(broken)} is corrupt: {checksum} "
    with pytest.raises(EngineError, match=expected) as err:
        await store.download(kind, name)

    assert err.value.code == "download-failed"
    assert _left_in(store, kind) == []
    # Small files first: the big model was never fetched.
    assert not any(request.endswith(".onnx") for request in hub.requests)
    whisper_bin = hub.repos[_WHISPER_REPO]["model.bin"].sha256
    assert f"/cdn/{whisper_bin}" not in hub.requests


async def test_cut_connection_is_refused_and_removed(
    hub: FakeHub, new_store: partial[ModelStore]
) -> None:
    hub.truncate.add("vocabulary.txt")
    store = new_store(endpoint=hub.endpoint)

    with pytest.raises(EngineError, match=r"tiny: vocabulary.txt ended after") as err:
        await store.download(ModelKind.WHISPER, "tiny")

    assert err.value.code == "download-failed"
    assert _left_in(store, ModelKind.WHISPER) == []


@pytest.mark.parametrize(
    ("kind", "failing", "status"),
    [
        (ModelKind.WHISPER, f"/{_WHISPER_REPO}/resolve/main/model.bin", 503),
        (ModelKind.WHISPER, f"/api/models/{_WHISPER_REPO}/tree/main", 500),
        (ModelKind.PIPER, f"/{PIPER_REPO}/resolve/main/{_JOE_PATH}.onnx", 404),
    ],
)
async def test_server_error_is_reported_and_nothing_kept(
    hub: FakeHub,
    new_store: partial[ModelStore],
    kind: ModelKind,
    failing: str,
    status: int,
) -> None:
    name = _SERVED[kind]
    hub.status[failing] = status
    store = new_store(endpoint=hub.endpoint)

    expected = rf"{re.escape(name)}: .*{re.escape(failing)} answered HTTP {status}"
    with pytest.raises(EngineError, match=expected) as err:
        await store.download(kind, name)

    assert err.value.code == "download-failed"
    assert _left_in(store, kind) == []


async def test_unreachable_hub_is_reported(
    new_store: partial[ModelStore], dead_endpoint: str
) -> None:
    store = new_store(endpoint=dead_endpoint)

    expected = rf"tiny: cannot reach {re.escape(dead_endpoint)} \(.*refused"
    with pytest.raises(EngineError, match=expected) as err:
        await store.download(ModelKind.WHISPER, "tiny")

    assert err.value.code == "download-failed"
    assert _left_in(store, ModelKind.WHISPER) == []


async def test_not_enough_space_fails_before_downloading(
    hub: FakeHub, new_store: partial[ModelStore]
) -> None:
    blobs = hub.repos[_WHISPER_REPO]
    blobs["model.bin"] = replace(blobs["model.bin"], size=1 << 60)
    store = new_store(endpoint=hub.endpoint)

    with pytest.raises(EngineError, match=r"tiny needs \d+ bytes, .* free") as err:
        await store.download(ModelKind.WHISPER, "tiny")

    assert err.value.code == "disk-full"
    assert hub.requests == [f"/api/models/{_WHISPER_REPO}/tree/main"]
    assert _left_in(store, ModelKind.WHISPER) == []


async def test_cancelled_download_is_removed(hub: FakeHub, tmp_path: Path) -> None:
    hub.hold["model.bin"] = threading.Event()
    # An executor of its own, to wait for the download's thread below.
    executor = ThreadPoolExecutor(max_workers=1)
    store = ModelStore(tmp_path, executor=executor, endpoint=hub.endpoint, packaged=())
    under_way = asyncio.Event()

    def progress(done: int, total: int) -> None:
        # Half of model.bin (most of the total) arrives before the hub holds.
        if done > total // 4:
            under_way.set()

    download = asyncio.create_task(store.download(ModelKind.WHISPER, "tiny", progress))
    async with asyncio.timeout(60):
        await under_way.wait()
    download.cancel()
    with pytest.raises(asyncio.CancelledError):
        await download

    hub.hold["model.bin"].set()
    # The download's thread sees the cancellation at its next chunk.
    executor.shutdown(wait=True)
    assert _left_in(store, ModelKind.WHISPER) == []


async def test_unknown_model_is_refused(
    hub: FakeHub, new_store: partial[ModelStore]
) -> None:
    store = new_store(endpoint=hub.endpoint)

    with pytest.raises(EngineError, match="huge is not in the faster-whisper") as err:
        await store.download(ModelKind.WHISPER, "huge")
    assert err.value.code == "unknown-model"
    assert hub.requests == []

    # A voice may be newer than the cached index: the hub's is read first.
    with pytest.raises(EngineError, match="xx_XX-nobody-low is not in the piper"):
        await store.download(ModelKind.PIPER, "xx_XX-nobody-low")
    assert hub.requests == [f"/{PIPER_REPO}/resolve/main/voices.json"]


def test_endpoint_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http"):
        ModelStore(tmp_path, endpoint="file:///etc")


# Local folders and packaged models --------------------------------------------


async def test_missing_model_names_it_and_the_folder(
    new_store: partial[ModelStore],
) -> None:
    store = new_store()
    folder = store.folder(ModelKind.WHISPER)

    expected = rf"small is not installed in {re.escape(str(folder))}; download it"
    with pytest.raises(EngineError, match=expected) as err:
        await store.path(ModelKind.WHISPER, "small")
    assert err.value.code == "missing-model"

    # A name is never a way out of the models folder.
    outside = store.models_dir / "outside.onnx"
    outside.write_bytes(b"onnx")
    outside.with_name("outside.onnx.json").write_text("{}")
    with pytest.raises(EngineError, match="is not installed"):
        await store.path(ModelKind.PIPER, "../outside")


async def test_models_put_in_the_folder_are_installed(
    new_store: partial[ModelStore],
) -> None:
    store = new_store()
    whisper = store.folder(ModelKind.WHISPER)
    (whisper / "my-model").mkdir(parents=True)
    (whisper / "my-model" / "model.bin").write_bytes(b"ct2")
    (whisper / "no-model").mkdir()
    (whisper / ".half.x.part").mkdir()
    (whisper / ".half.x.part" / "model.bin").write_bytes(b"ct2")
    piper = store.folder(ModelKind.PIPER)
    piper.mkdir()
    (piper / "mine.onnx").write_bytes(b"onnx")
    (piper / "mine.onnx.json").write_text("{}")
    (piper / "no-config.onnx").write_bytes(b"onnx")

    [model] = await store.installed(ModelKind.WHISPER)
    assert (model.name, model.path, model.entry) == (
        "my-model",
        whisper / "my-model",
        None,
    )
    [voice] = await store.installed(ModelKind.PIPER)
    assert (voice.name, voice.path, voice.entry) == ("mine", piper / "mine.onnx", None)


async def test_packaged_models_are_found_and_base_joined_once(
    new_store: partial[ModelStore],
    dead_endpoint: str,
    whisper_tiny_en_dir: Path,
    whisper_base_dir: Path,
    piper_voice_path: Path,
) -> None:
    store = new_store(endpoint=dead_endpoint, packaged=PACKAGED_MODELS)
    base = store.folder(ModelKind.WHISPER) / "base"

    # Listing names joins nothing (the config flow lists every model).
    assert await store.installed_names(ModelKind.WHISPER) == ["base", "tiny.en"]
    assert _left_in(store, ModelKind.WHISPER) == []

    # Two first uses at once: one join.
    assert await asyncio.gather(
        store.path(ModelKind.WHISPER, "base"), store.path(ModelKind.WHISPER, "base")
    ) == [base, base]
    assert _left_in(store, ModelKind.WHISPER) == ["base"]
    assert _same_files(base, whisper_base_dir)
    joined = (base / "model.bin").stat()

    listed = {model.name: model for model in await store.installed(ModelKind.WHISPER)}
    assert list(listed) == ["base", "tiny.en"]
    assert listed["base"].path == base
    assert (base / "model.bin").stat().st_ino == joined.st_ino
    assert listed["tiny.en"].path == whisper_tiny_en_dir
    assert listed["tiny.en"].entry is not None
    assert listed["tiny.en"].entry.languages == ("en",)
    [joe] = await store.installed(ModelKind.PIPER)
    assert (joe.name, joe.path) == (_JOE, piper_voice_path)

    # Installed from a package: nothing to download.
    assert await store.download(ModelKind.WHISPER, "tiny.en") == whisper_tiny_en_dir
    assert await store.download(ModelKind.PIPER, _JOE) == piper_voice_path


async def test_absent_packages_are_not_offered(new_store: partial[ModelStore]) -> None:
    absent = "private_voice_no_such_package"
    split = PACKAGED_MODELS[1]
    store = new_store(
        packaged=(
            PackagedModel(
                kind=ModelKind.WHISPER, name="ghost", package=absent, path="model"
            ),
            replace(split, name="half", parts=(split.package, absent)),
        ),
    )

    assert await store.installed(ModelKind.WHISPER) == []
    with pytest.raises(EngineError, match="half is not installed"):
        await store.path(ModelKind.WHISPER, "half")
    assert not store.folder(ModelKind.WHISPER).exists()
