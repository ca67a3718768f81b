"""Where backup artifacts live: a filesystem path on a mounted volume (S3 next).

Artifacts are laid out `<root>/<namespace>/<backup>/<timestamp>.dump` and
addressed by a location URL (`file:///…`), so a second store (`s3://bucket/…`)
only needs another class with the same methods (`BackupStore`).

An artifact appears whole or not at all: bytes go to `<name>.<owner>.partial`, are
fsync'ed, then renamed over the final name. The owner is the operator replica that
writes it, so two replicas that both believe they run an attempt (one deposed, not yet
aware of it) never write into, nor commit, each other's half-written file. A crash
leaves only a `.partial`, which `discard_partials()` removes before the next attempt:
the caller has just won the attempt's claim (status.attemptBy, written with the
resourceVersion it read), so every other writer's attempt is over (provably dead); an
owner still entitled to write is named in `keep`.

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
    def begin(self, namespace: str, backup: str, stamp: str, owner: str = "") -> Upload:
        """Start writing `<namespace>/<backup>/<stamp>.dump` (as the replica `owner`)."""
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

    def discard_partials(
        self, namespace: str, backup: str, keep: frozenset[str] = frozenset()
    ) -> int:
        """Remove what interrupted writes left behind, but the partials of the owners in
        `keep`; returns how many."""
        ...


def _translate(exc: OSError, what: str) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DestinationFull(f"no space left on the backup volume while writing {what}")
    if exc.errno == errno.ENOENT:
        return ArtifactMissing(f"{what} does not exist")
    return DestinationUnwritable(f"cannot write {what}: {exc.strerror or exc}")


class _FileUpload:
    def __init__(self, final: Path, owner: str) -> None:
        self.final = final
        tag = f".{_safe(owner)}" if owner else ""
        self.partial = final.with_name(final.name + tag + PARTIAL)
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


def _safe(owner: str) -> str:
    """An owner (a Lease identity: pod name and suffix) as part of a file name."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in owner)


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

    def begin(self, namespace: str, backup: str, stamp: str, owner: str = "") -> Upload:
        return _FileUpload(self._dir(namespace, backup) / f"{stamp}{SUFFIX}", owner)

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

    def discard_partials(
        self, namespace: str, backup: str, keep: frozenset[str] = frozenset()
    ) -> int:
        folder = self._dir(namespace, backup)
        if not folder.is_dir():
            return 0
        kept = {f"{SUFFIX}.{_safe(owner)}{PARTIAL}" for owner in keep}
        found = [
            p
            for p in folder.glob(f"*{SUFFIX}*{PARTIAL}")
            if not any(p.name.endswith(k) for k in kept)
        ]
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
