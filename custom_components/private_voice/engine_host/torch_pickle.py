"""Read the tensors of a PyTorch ``.pt`` file without torch, and without trusting it.

A ``.pt`` file is a pickle, and unpickling runs whatever callables the pickle
names. This reader resolves only an allow-list of names (an ordered dict, the
tensor rebuilders, the typed storages), and builds numpy arrays instead of
tensors; a pickle naming anything else is refused before it runs.

Both of torch's layouts are read:

- the legacy one (torch < 1.6, and ``_use_new_zipfile_serialization=False``):
  five pickles in a row (magic number, protocol version, system info, the
  object, the storage keys), then each storage as an int64 element count and
  its raw little-endian bytes;
- the zip one (torch >= 1.6): ``<archive>/data.pkl`` and one raw file per
  storage, ``<archive>/data/<key>``.

The tar layout of torch < 0.1.10 is not.
"""

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
import io
from pathlib import Path
import pickle
import struct
from typing import IO, Any, Final, override
import zipfile

import numpy as np

# What the legacy layout begins with, as torch writes it.
_LEGACY_MAGIC: Final = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL: Final = 1001

_STORAGE_DTYPES: Final[Mapping[str, np.dtype[Any]]] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TorchFileError(ValueError):
    """The file is not a readable torch file, or names what it may not."""


@dataclass(frozen=True, slots=True)
class _StorageType:
    """A typed storage class named in the pickle (``torch.FloatStorage``)."""

    dtype: np.dtype[Any]


@dataclass(slots=True)
class _Storage:
    """A storage of ``count`` elements; its data is filled in once read."""

    dtype: np.dtype[Any]
    count: int
    data: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class _StorageView:
    """Part of a storage (legacy layout): ``count`` elements from ``offset``."""

    base: _Storage
    offset: int
    count: int


@dataclass(frozen=True, slots=True)
class _PendingTensor:
    """A tensor whose storage is read after the pickle (legacy layout)."""

    storage: _Storage | _StorageView
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    *_ignored: object,
) -> _PendingTensor:
    """Stand in for ``torch._utils._rebuild_tensor_v2`` (and its older form).

    The rest (requires_grad, backward hooks, metadata) means nothing without torch.
    """
    if not isinstance(storage, _Storage | _StorageView):
        msg = f"a tensor built on {type(storage).__name__}, not a storage"
        raise TorchFileError(msg)
    if not isinstance(size, tuple) or not isinstance(stride, tuple):
        msg = f"a tensor of size {size!r} and stride {stride!r}"
        raise TorchFileError(msg)
    return _PendingTensor(
        storage,
        _count(storage_offset),
        tuple(_count(n) for n in size),
        tuple(_count(n) for n in stride),
    )


def _rebuild_parameter(data: object, *_ignored: object) -> _PendingTensor:
    """Stand in for ``torch._utils._rebuild_parameter``: a parameter is its data."""
    if not isinstance(data, _PendingTensor):
        msg = f"a parameter of {type(data).__name__}, not a tensor"
        raise TorchFileError(msg)
    return data


def _storage_type_of(dtype: np.dtype[Any]) -> Callable[[], object]:
    return lambda: _StorageType(dtype)


def _fresh[**P, R](func: Callable[P, R]) -> Callable[[], Callable[P, R]]:
    """Make a new wrapper of ``func`` for each use.

    A pickle's BUILD opcode sets attributes on what it built, functions
    included: each load gets its own wrappers, so no file can change a
    function the next load uses.
    """

    def make() -> Callable[P, R]:
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return func(*args, **kwargs)

        return wrapper

    return make


# The only names a file may use (OrderedDict is an immutable type, storage
# types are frozen: neither can be changed by BUILD).
_ALLOWED: Final[Mapping[tuple[str, str], Callable[[], object]]] = {
    ("collections", "OrderedDict"): lambda: OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _fresh(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor_v2"): _fresh(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _fresh(_rebuild_parameter),
    **{
        ("torch", name): _storage_type_of(dtype)
        for name, dtype in _STORAGE_DTYPES.items()
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolve only allow-listed globals; storages through ``open_storage``."""

    def __init__(
        self, file: IO[bytes], open_storage: Callable[[tuple[Any, ...]], object]
    ) -> None:
        super().__init__(file)
        self._open_storage = open_storage

    @override
    def find_class(self, module: str, name: str) -> Any:
        if (make := _ALLOWED.get((module, name))) is None:
            msg = f"refusing to load {module}.{name}: not an allowed torch type"
            raise TorchFileError(msg)
        return make()

    @override
    def persistent_load(self, pid: Any) -> object:
        if not isinstance(pid, tuple) or not pid:
            msg = f"unexpected persistent id {pid!r}"
            raise TorchFileError(msg)
        return self._open_storage(pid)


def _storage_type(value: object) -> np.dtype[Any]:
    if not isinstance(value, _StorageType):
        msg = f"storage of unknown type {value!r}"
        raise TorchFileError(msg)
    return value.dtype


def _tag(pid: tuple[Any, ...]) -> str:
    tag = pid[0]
    return tag.decode("ascii") if isinstance(tag, bytes) else str(tag)


def _unpickle(
    file: IO[bytes], open_storage: Callable[[tuple[Any, ...]], object]
) -> Any:
    try:
        return _RestrictedUnpickler(file, open_storage).load()
    except TorchFileError:
        raise
    except (EOFError, pickle.UnpicklingError) as err:
        msg = f"truncated or corrupt pickle: {err or type(err).__name__}"
        raise TorchFileError(msg) from err
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
        msg = f"malformed pickle: {err!r}"
        raise TorchFileError(msg) from err


def _read_legacy(file: IO[bytes]) -> Any:
    """Read the legacy layout: header pickles, the object, then raw storages."""
    _check_legacy_header(file)
    storages: dict[str, _Storage] = {}

    def open_storage(pid: tuple[Any, ...]) -> object:
        if _tag(pid) != "storage" or len(pid) != 6:  # noqa: PLR2004 - torch's tuple
            msg = f"unexpected persistent id {pid[:1]!r}"
            raise TorchFileError(msg)
        _, kind, key, _location, count, view = pid
        storage = storages.setdefault(
            str(key), _Storage(_storage_type(kind), _count(count))
        )
        if view is None:
            return storage
        _view_key, offset, view_count = view
        return _StorageView(storage, _count(offset), _count(view_count))

    result = _unpickle(file, open_storage)
    keys = _unpickle(file, _refuse_storage)
    if not isinstance(keys, list):
        msg = "malformed storage key list"
        raise TorchFileError(msg)
    for key in keys:
        if (storage := storages.get(str(key))) is None:
            msg = f"storage {key} is listed but never used"
            raise TorchFileError(msg)
        header = file.read(8)
        if len(header) != 8:  # noqa: PLR2004 - one int64
            msg = f"truncated file: storage {key} is missing"
            raise TorchFileError(msg)
        (count,) = struct.unpack("<q", header)
        if count != storage.count:
            msg = f"storage {key} has {count} elements, the pickle says {storage.count}"
            raise TorchFileError(msg)
        storage.data = _read_exactly(file, storage, str(key))
    return result


def _check_legacy_header(file: IO[bytes]) -> None:
    """Read the magic number, protocol and system info that open the file."""
    if _unpickle(file, _refuse_storage) != _LEGACY_MAGIC:
        msg = "not a torch file (no torch magic number)"
        raise TorchFileError(msg)
    if (protocol := _unpickle(file, _refuse_storage)) != _LEGACY_PROTOCOL:
        msg = f"unsupported torch protocol {protocol!r}"
        raise TorchFileError(msg)
    info = _unpickle(file, _refuse_storage)
    if isinstance(info, dict) and info.get("little_endian") is False:
        msg = "big-endian torch files are not supported"
        raise TorchFileError(msg)


def _count(value: object) -> int:
    """Read a size or offset from the pickle: a non-negative int."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = f"bad storage size or offset {value!r}"
        raise TorchFileError(msg)
    return value


def _refuse_storage(pid: tuple[Any, ...]) -> object:
    msg = f"unexpected persistent id {pid[:1]!r} in a header"
    raise TorchFileError(msg)


def _read_exactly(file: IO[bytes], storage: _Storage, key: str) -> np.ndarray:
    size = storage.count * storage.dtype.itemsize
    data = file.read(size)
    if len(data) != size:
        msg = f"truncated file: storage {key} has {len(data)} of {size} bytes"
        raise TorchFileError(msg)
    return np.frombuffer(data, dtype=storage.dtype)


def _read_zip(archive: zipfile.ZipFile) -> Any:
    """Read the zip layout: ``<prefix>/data.pkl`` and ``<prefix>/data/<key>``."""
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
    if len(pickles) != 1:
        msg = "a torch zip file has exactly one data.pkl"
        raise TorchFileError(msg)
    prefix = pickles[0].removesuffix("data.pkl")
    byteorder = f"{prefix}byteorder"
    if byteorder in archive.namelist() and archive.read(byteorder) != b"little":
        msg = "big-endian torch files are not supported"
        raise TorchFileError(msg)
    storages: dict[str, _Storage] = {}

    def open_storage(pid: tuple[Any, ...]) -> object:
        if _tag(pid) != "storage" or len(pid) != 5:  # noqa: PLR2004 - torch's tuple
            msg = f"unexpected persistent id {pid[:1]!r}"
            raise TorchFileError(msg)
        _, kind, key, _location, count = pid
        key = str(key)
        if key not in storages:
            storage = _Storage(_storage_type(kind), _count(count))
            try:
                with archive.open(f"{prefix}data/{key}") as data:
                    storage.data = _read_exactly(data, storage, key)
            except KeyError as err:
                msg = f"storage {key} is missing from the archive"
                raise TorchFileError(msg) from err
            storages[key] = storage
        return storages[key]

    with archive.open(pickles[0]) as file:
        return _unpickle(file, open_storage)


def _materialise(value: Any) -> Any:
    """Turn every pending tensor in ``value`` into a numpy array of its own."""
    if isinstance(value, _PendingTensor):
        return _tensor(value)
    if isinstance(value, dict):
        return type(value)((key, _materialise(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_materialise(item) for item in value)
    return value


def _tensor(pending: _PendingTensor) -> np.ndarray:
    storage, offset = pending.storage, pending.offset
    if isinstance(storage, _StorageView):
        base = storage.base
        start, limit = storage.offset, storage.offset + storage.count
    else:
        base, start, limit = storage, 0, storage.count
    if base.data is None or limit > base.count or start < 0:
        msg = "a tensor's storage is missing or too small"
        raise TorchFileError(msg)
    shape, strides = pending.shape, pending.strides
    if len(shape) != len(strides):
        msg = f"bad tensor geometry {shape} / {strides} at {offset}"
        raise TorchFileError(msg)
    first = start + offset
    last = first + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
    if 0 not in shape and last >= limit:
        msg = f"tensor {shape} at {offset} runs outside its storage"
        raise TorchFileError(msg)
    itemsize = base.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        base.data[first:],
        shape=shape,
        strides=tuple(s * itemsize for s in strides),
        writeable=False,
    )
    return np.array(view, copy=True)


def load(path: Path) -> Any:
    """Read ``path``: its objects, with every tensor as a numpy array.

    Raises TorchFileError if the file is truncated, malformed, in another
    layout, or names anything outside the allow-list.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        msg = f"cannot read {path}: {err}"
        raise TorchFileError(msg) from err
    file = io.BytesIO(data)
    if zipfile.is_zipfile(file):
        try:
            with zipfile.ZipFile(file) as archive:
                return _materialise(_read_zip(archive))
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            msg = f"{path}: corrupt zip archive: {err}"
            raise TorchFileError(msg) from err
    file.seek(0)
    return _materialise(_read_legacy(file))


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    """Read ``path`` and return its tensors by dotted name.

    Nested dicts are flattened: ``{"model_state": {"lstm.weight": t}}`` gives
    ``"model_state.lstm.weight"``. Other values (numbers, strings) are left out.
    """
    tensors: dict[str, np.ndarray] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, np.ndarray):
            tensors[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)

    walk("", load(path))
    return tensors
