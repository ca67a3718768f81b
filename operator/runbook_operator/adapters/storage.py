"""Where backup artifacts live: a filesystem path on a mounted volume (S3 next).

Artifacts are laid out `<root>/<namespace>/<backup>/<timestamp>.dump` and
addressed by a location URL (`file:///…`), so a second store (`s3://bucket/…`)
only needs another class with the same methods (`BackupStore`).

An artifact appears whole or not at all: bytes go to `<name>.partial`, are
fsync'ed, then renamed over the final name. A crash leaves only a `.partial`,
which `discard_partials()` removes before the next attempt.

Exceptions (each has a `reason` for conditions and events):
    StorageError
     +-- DestinationFull        (ENOSPC, EDQUOT)
     +-- DestinationUnwritable  (permissions, read-only, not a directory)
     +-- ArtifactMissing
     +-- ChecksumMismatch
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

__all__ = [
    "ArtifactMissing",
    "BackupStore",
    "ChecksumMismatch",
    "DestinationFull",
    "DestinationUnwritable",
    "FileStore",
    "StorageError",
    "Stored",
    "Upload",
]

CHUNK = 1024 * 1024
SUFFIX = ".dump"
PARTIAL = ".partial"


class StorageError(Exception):
    """Reading or writing an artifact failed."""

    reason = "StorageError"


class DestinationFull(StorageError):
    reason = "DestinationFull"


class DestinationUnwritable(StorageError):
    reason = "DestinationUnwritable"


class ArtifactMissing(StorageError):
    reason = "ArtifactMissing"


class ChecksumMismatch(StorageError):
    reason = "ChecksumMismatch"


@dataclass(frozen=True)
class Stored:
    """A complete artifact."""

    location: str
    size: int
    sha256: str


class Upload(Protocol):
    """An artifact being written: `write()` chunks, then `commit()` or `abort()`."""

    def write(self, data: bytes) -> None: ...

    def commit(self) -> Stored: ...

    def abort(self) -> None: ...


class BackupStore(Protocol):
    def begin(self, namespace: str, backup: str, stamp: str) -> Upload:
        """Start writing `<namespace>/<backup>/<stamp>.dump`."""
        ...

    def location(self, namespace: str, backup: str, stamp: str) -> str:
        """Where `begin(namespace, backup, stamp)` puts the artifact once committed."""
        ...

    def read(self, location: str) -> Iterator[bytes]:
        """The artifact's bytes, in chunks."""
        ...

    def checksum(self, location: str) -> Stored:
        """Size and sha256 of the artifact as stored now."""
        ...

    def delete(self, location: str) -> bool:
        """Remove the artifact; False when it was already gone."""
        ...

    def discard_partials(self, namespace: str, backup: str) -> int:
        """Remove what interrupted writes left behind; returns how many."""
        ...


def _translate(exc: OSError, what: str) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DestinationFull(f"no space left on the backup volume while writing {what}")
    if exc.errno == errno.ENOENT:
        return ArtifactMissing(f"{what} does not exist")
    return DestinationUnwritable(f"cannot write {what}: {exc.strerror or exc}")


class _FileUpload:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.partial = final.with_name(final.name + PARTIAL)
        self.hash = hashlib.sha256()
        self.size = 0
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.partial.open("wb")
        except OSError as exc:
            raise _translate(exc, str(final.parent)) from exc

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)
        try:
            self.file.write(data)
        except OSError as exc:
            raise _translate(exc, str(self.final)) from exc

    def commit(self) -> Stored:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.partial, self.final)
            _fsync_dir(self.final.parent)
        except OSError as exc:
            self.abort()
            raise _translate(exc, str(self.final)) from exc
        return Stored(self.final.as_uri(), self.size, self.hash.hexdigest())

    def abort(self) -> None:
        with suppress(OSError):  # ENOSPC again on the final flush: the file goes anyway
            self.file.close()
        self.partial.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """Artifacts under one directory (the operator's backup volume)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _dir(self, namespace: str, backup: str) -> Path:
        path = (self.root / namespace / backup).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise DestinationUnwritable(f"{namespace}/{backup} is not a valid artifact directory")
        return path

    def path_of(self, location: str) -> Path:
        """The file a location names; only `.dump` files inside the root are ours."""
        url = urlparse(location)
        path = Path(unquote(url.path)).resolve()
        if url.scheme != "file" or not path.is_relative_to(self.root) or path.suffix != SUFFIX:
            raise ArtifactMissing(f"{location} is not an artifact of this store ({self.root})")
        return path

    def begin(self, namespace: str, backup: str, stamp: str) -> Upload:
        return _FileUpload(self._dir(namespace, backup) / f"{stamp}{SUFFIX}")

    def location(self, namespace: str, backup: str, stamp: str) -> str:
        return (self._dir(namespace, backup) / f"{stamp}{SUFFIX}").as_uri()

    def read(self, location: str) -> Iterator[bytes]:
        path = self.path_of(location)
        try:
            with path.open("rb") as file:
                while chunk := file.read(CHUNK):
                    yield chunk
        except FileNotFoundError as exc:
            raise ArtifactMissing(f"the artifact {path} is gone") from exc

    def checksum(self, location: str) -> Stored:
        digest = hashlib.sha256()
        size = 0
        for chunk in self.read(location):
            digest.update(chunk)
            size += len(chunk)
        return Stored(location, size, digest.hexdigest())

    def delete(self, location: str) -> bool:
        path = self.path_of(location)
        existed = path.exists()
        path.unlink(missing_ok=True)
        self._prune(path.parent)
        return existed

    def discard_partials(self, namespace: str, backup: str) -> int:
        folder = self._dir(namespace, backup)
        if not folder.is_dir():
            return 0
        found = list(folder.glob(f"*{SUFFIX}{PARTIAL}"))
        for partial in found:
            partial.unlink(missing_ok=True)
        return len(found)

    def _prune(self, folder: Path) -> None:
        """Remove the backup's and the namespace's directories once they are empty."""
        for _ in range(2):
            if folder == self.root or not folder.is_relative_to(self.root):
                return
            try:
                folder.rmdir()
            except OSError:
                return  # not empty, or already gone
            folder = folder.parent
