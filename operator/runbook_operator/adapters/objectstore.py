"""Backup artifacts in S3-compatible object storage (boto3), one store per backup.

An `S3Store` is bound to the one object key its backup may have (core.destination
derives it from the namespace, the schedule and the uid), and has the methods of
adapters.storage's `BackupStore`. Reading, checksumming or deleting any other
location is refused (`NotThisBackups`) before a request is made: a status that was
edited to name another artifact reads and deletes nothing.

Writing is a multipart upload fed while pg_dump runs: PART bytes are buffered, never
a temporary file. sha256 is computed on the dump's own bytes on the way (before
encryption, so verification and restore compare what pg_restore reads). A failed or
interrupted upload is aborted, so no partial object and no parts are left; what a
crash or a vanished server left anyway is aborted by `discard_partials()`, which the
next attempt (or the next run of the schedule) calls first.

Exceptions (StorageError, each with a `reason`):
    ObjectStoreUnreachable   the endpoint did not answer (connection, timeout)
    ObjectStoreDenied        credentials rejected, or access denied
    BucketNotFound
    NotThisBackups           a location that is not this backup's key
    ArtifactMissing          (adapters.storage) the object is gone
    InvalidArtifact          (adapters.sealing) it does not decrypt
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from . import sealing
from .storage import ArtifactMissing, StorageError, Stored

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "BucketNotFound",
    "Keyring",
    "NotThisBackups",
    "ObjectStoreDenied",
    "ObjectStoreUnreachable",
    "S3Config",
    "S3Store",
]

PART = 8 * 1024 * 1024
"""Bytes per uploaded part (S3's minimum is 5 MiB, the last part excepted)."""
READ = 1024 * 1024
IN_FLIGHT = 2
"""Parts uploading at once while the next one fills (memory: (IN_FLIGHT + 1) x PART)."""


class ObjectStoreUnreachable(StorageError):
    reason = "ObjectStoreUnreachable"


class ObjectStoreDenied(StorageError):
    reason = "ObjectStoreDenied"


class BucketNotFound(StorageError):
    reason = "BucketNotFound"


class NotThisBackups(StorageError):
    reason = "ArtifactNotOwned"


@dataclass(frozen=True)
class S3Config:
    """How to reach the bucket. The secret key never appears in repr()."""

    endpoint: str
    bucket: str
    region: str
    path_style: bool
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    ca_pem: bytes | None = field(default=None, repr=False)


Keyring = Callable[[str], bytes]
"""The 32-byte key of a key id (read from its Secret when asked)."""


def _client(config: S3Config, ca_file: str | None) -> S3Client:
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=config.endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        verify=ca_file if ca_file else True,
        config=Config(
            s3={"addressing_style": "path" if config.path_style else "virtual"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _translate(exc: Exception, config: S3Config, what: str) -> StorageError:
    where = f"{config.endpoint} bucket {config.bucket}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return ArtifactMissing(f"{what} is not in {where}")
        if code == "NoSuchBucket":
            return BucketNotFound(f"{where} does not exist")
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return ObjectStoreDenied(f"{where} refused {what}: {code} {message}".strip())
        return StorageError(f"{where}: {what} failed: {code} {message}".strip())
    return ObjectStoreUnreachable(f"{where} did not answer while {what}: {exc}")


class _MultipartUpload:
    """pg_dump's bytes into one multipart upload: `write()`, then `commit()` or `abort()`.

    Parts go up on IN_FLIGHT threads while the next part fills, so pg_dump is not held
    up by the network; a failed part fails the next `write()` or `commit()`."""

    def __init__(self, store: S3Store, sealer: sealing.Sealer | None) -> None:
        self.store = store
        self.sealer = sealer
        self.hash = hashlib.sha256()
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.pending: deque[Future[dict[str, Any]]] = deque()
        self.numbered = 0
        self.size = 0
        self.upload_id = store._call(
            "starting the upload",
            lambda c: c.create_multipart_upload(
                Bucket=store.config.bucket, Key=store.key, **store.lock_arguments()
            ),
        )["UploadId"]
        self.pool = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="s3-part")

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.buffer += self.sealer.seal(data) if self.sealer else data
        while len(self.buffer) >= PART:
            self._part(bytes(self.buffer[:PART]))
            del self.buffer[:PART]

    def _part(self, body: bytes) -> None:
        self.numbered += 1
        self.size += len(body)
        self.pending.append(self.pool.submit(self._upload, self.numbered, body))
        while len(self.pending) > IN_FLIGHT:
            self.parts.append(self.pending.popleft().result())

    def _upload(self, number: int, body: bytes) -> dict[str, Any]:
        answer = self.store._call(
            f"uploading part {number}",
            lambda c: c.upload_part(
                Bucket=self.store.config.bucket,
                Key=self.store.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=body,
            ),
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def commit(self) -> Stored:
        if self.sealer:
            self.buffer += self.sealer.finish()
        if self.buffer or not self.numbered:
            self._part(bytes(self.buffer))
            self.buffer.clear()
        while self.pending:
            self.parts.append(self.pending.popleft().result())
        self.pool.shutdown()
        bucket, key = self.store.config.bucket, self.store.key
        self.store._call(
            "completing the upload",
            lambda c: c.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},  # type: ignore[typeddict-item]
            ),
        )
        return Stored(self.store.location_url, self.size, self.hash.hexdigest())

    def abort(self) -> None:
        """Drop the parts uploaded so far (best effort: a dead server is cleaned up by the
        next attempt's discard_partials)."""
        self.pool.shutdown(wait=True, cancel_futures=True)  # no part lands after the abort
        self.pending.clear()
        with suppress(StorageError):
            self.store._call(
                "aborting the upload",
                lambda c: c.abort_multipart_upload(
                    Bucket=self.store.config.bucket, Key=self.store.key, UploadId=self.upload_id
                ),
            )


class S3Store:
    """The artifact of one backup in a bucket."""

    def __init__(
        self,
        config: S3Config,
        key: str,
        family: str,
        *,
        seal_with: tuple[str, bytes] | None = None,
        opened_with: str | None = None,
        keyring: Keyring | None = None,
        sweep: bool = False,
        lock: tuple[str, datetime] | None = None,
    ) -> None:
        """key: the object's key; family: the prefix of its schedule's objects (ends /).
        seal_with: (key id, key) to encrypt a new artifact; opened_with: the key id the
        backup recorded, to decrypt it (None: stored in the clear). sweep: discard_partials
        aborts the unfinished uploads of the whole family (before a run uploads), not
        only this key's (a deletion, while another run of the schedule may be uploading).
        lock: (Object Lock mode, retain-until date) the new artifact is uploaded with."""
        self.sweep = sweep
        self.lock = lock
        self.config = config
        self.key = key
        self.family = family
        self.seal_with = seal_with
        self.opened_with = opened_with
        self.keyring = keyring
        self.location_url = f"s3://{config.bucket}/{key}"
        self._ca = tempfile.TemporaryDirectory(prefix="runbook-ca-") if config.ca_pem else None
        ca_file = None
        if self._ca is not None and config.ca_pem is not None:
            ca_path = Path(self._ca.name) / "ca.crt"
            ca_path.write_bytes(config.ca_pem)
            ca_file = str(ca_path)
        self.client = _client(config, ca_file)

    def lock_arguments(self) -> dict[str, Any]:
        """The Object Lock headers of a new upload (none when not locked)."""
        if self.lock is None:
            return {}
        mode, until = self.lock
        return {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": until}

    def _call(self, what: str, request: Callable[[S3Client], Any]) -> Any:
        try:
            return request(self.client)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, self.config, what) from None

    def _own(self, location: str) -> None:
        if location != self.location_url:
            raise NotThisBackups(
                f"{location} is not this backup's artifact ({self.location_url}); "
                "refused: nothing was read or deleted"
            )

    # --- BackupStore ---------------------------------------------------------------

    def begin(self, namespace: str, backup: str, stamp: str, owner: str = "") -> _MultipartUpload:
        """Each multipart upload has its own id, so two replicas' uploads never mix: one
        commits only its own parts. `owner` is not needed to tell them apart."""
        sealer = sealing.Sealer(self.seal_with[1], self.seal_with[0]) if self.seal_with else None
        return _MultipartUpload(self, sealer)

    def location(self, namespace: str, backup: str, stamp: str) -> str:
        return self.location_url

    def raw(self) -> Iterator[bytes]:
        """The object's bytes as stored (ciphertext when encrypted)."""
        answer = self._call(
            f"reading {self.key}",
            lambda c: c.get_object(Bucket=self.config.bucket, Key=self.key),
        )
        body = answer["Body"]
        try:
            while True:
                try:
                    chunk = body.read(READ)
                except (BotoCoreError, OSError) as exc:
                    raise _translate(exc, self.config, f"reading {self.key}") from None
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def read(self, location: str) -> Iterator[bytes]:
        self._own(location)
        if self.opened_with is None:
            yield from self.raw()
            return
        if self.keyring is None:
            raise sealing.InvalidArtifact(f"no key to decrypt {location}")
        yield from sealing.unseal(self.raw(), self.keyring(self.opened_with), self.opened_with)

    def checksum(self, location: str) -> Stored:
        digest = hashlib.sha256()
        size = 0
        for chunk in self.read(location):
            digest.update(chunk)
            size += len(chunk)
        return Stored(location, size, digest.hexdigest())

    def delete(self, location: str) -> bool:
        self._own(location)
        bucket, key = self.config.bucket, self.key
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if isinstance(_translate(exc, self.config, key), ArtifactMissing):
                return False
            raise _translate(exc, self.config, f"looking up {key}") from None
        except BotoCoreError as exc:
            raise _translate(exc, self.config, f"looking up {key}") from None
        self._call(f"deleting {key}", lambda c: c.delete_object(Bucket=bucket, Key=key))
        return True

    def discard_partials(
        self, namespace: str, backup: str, keep: frozenset[str] = frozenset()
    ) -> int:
        """Abort the unfinished multipart uploads of this key, or (sweep) of this backup's
        family: one run of a schedule at a time, so any found belongs to an interrupted
        earlier run. S3 does not say which replica started an upload, so when owners are
        to be kept nothing is aborted (the next claim of the attempt, keeping none, does)."""
        if keep:
            return 0
        bucket, found = self.config.bucket, 0
        prefix = self.family if self.sweep else self.key
        answer = self._call(
            "listing unfinished uploads",
            lambda c: c.list_multipart_uploads(Bucket=bucket, Prefix=prefix),
        )
        for upload in answer.get("Uploads", []):
            key, upload_id = upload["Key"], upload["UploadId"]
            if not self.sweep and key != self.key:
                continue
            self._abort(key, upload_id)
            found += 1
        return found

    def _abort(self, key: str, upload_id: str) -> None:
        bucket = self.config.bucket
        self._call(
            f"aborting the unfinished upload of {key}",
            lambda c: c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id),
        )
