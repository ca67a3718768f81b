"""Where a backup's artifact goes: the operator's volume, or S3-compatible object storage.

Shared by DatabaseBackup (which writes there) and DatabaseRestore (which reads a
backup's artifact back), so it lives below both kinds. Pure: the Secrets it names are
read by core.objectstores, the bucket is adapters.objectstore's.

An object's key is derived only from what the API server vouches for: the backup's
namespace, the name of its schedule (or its own name) and its uid, under the
destination's prefix. Status merely echoes it; a reader or a deleter recomputes it
and refuses any other, so a status edited to name another namespace's artifact
reads and deletes nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, NamedTuple

from pydantic import Field

from .fields import GoDuration, ObjectName, parse_duration
from .model import ApiModel, cel

__all__ = [
    "DEFAULT_NAME",
    "DESTINATIONS",
    "S3_SCHEME",
    "Chosen",
    "Destination",
    "Encryption",
    "LockMode",
    "ObjectCredentials",
    "ObjectLock",
    "S3Destination",
    "SecretKeyRef",
    "VolumeDestination",
    "choose",
    "describe",
    "family_prefix",
    "key_id",
    "location_of",
    "object_key",
    "retain_until",
]

S3_SCHEME = "s3://"
DESTINATIONS = "backupdestinations"
"""Plural of BackupDestination: a namespace's default destination, set once."""
DEFAULT_NAME = "default"
"""The one BackupDestination of a namespace that backups without spec.destination use."""


class SecretKeyRef(ApiModel):
    """One key of a Secret in this namespace."""

    name: ObjectName
    """Name of the Secret."""
    key: Annotated[str, Field(min_length=1, max_length=253)] = "ca.crt"
    """Key in the Secret."""


class ObjectCredentials(ApiModel):
    """A Secret in this namespace with the access key pair (read with `get` only)."""

    secret_name: ObjectName
    """Name of the Secret."""
    access_key_id_key: Annotated[str, Field(min_length=1, max_length=253)] = "accessKeyId"
    """Key of the access key id in the Secret."""
    secret_access_key_key: Annotated[str, Field(min_length=1, max_length=253)] = "secretAccessKey"
    """Key of the secret access key in the Secret. It never appears in a log or in status."""


class Encryption(ApiModel):
    """Encrypt the artifact (AES-256-GCM in 1 MiB chunks) with a key from a Secret."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.key)",
                    "encryption names a Secret but not which of its keys holds the encryption "
                    "key: set encryption.key (e.g. key-2025-01)",
                ),
            ]
        }
    }

    secret_name: ObjectName
    """Secret holding the key: 32 random bytes, base64 (`openssl rand -base64 32`)."""
    key: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """Key in the Secret. It is the key id recorded in status: to rotate, add a new key to
    the Secret and name it here; older backups still decrypt with the key they recorded."""


class LockMode(StrEnum):
    COMPLIANCE = "COMPLIANCE"
    """Nobody, not even the bucket's root account, deletes the object before its date."""
    GOVERNANCE = "GOVERNANCE"
    """Only a user granted s3:BypassGovernanceRetention may delete it early, on purpose."""


class ObjectLock(ApiModel):
    """S3 Object Lock: each artifact is uploaded with a retention date, and the server
    refuses to delete it before then. The bucket must have Object Lock enabled (created
    with it); a bucket without it refuses the upload, and the backup fails saying so."""

    mode: LockMode = LockMode.COMPLIANCE
    """COMPLIANCE (default) or GOVERNANCE."""
    retain_for: GoDuration
    """How long each artifact is retained from the backup's start, e.g. 720h."""


class S3Destination(ApiModel):
    """An S3-compatible bucket."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("has(self.bucket)", "s3 needs a bucket: set destination.s3.bucket"),
                cel(
                    "isURL(self.endpoint) && (self.endpoint.startsWith('http://') || "
                    "self.endpoint.startsWith('https://'))",
                    "destination.s3.endpoint must be an http:// or https:// URL, "
                    "e.g. https://s3.eu-west-1.amazonaws.com",
                ),
            ]
        }
    }

    endpoint: Annotated[str, Field(min_length=1, max_length=2048)]
    """The server's URL, e.g. https://s3.eu-west-1.amazonaws.com or http://minio.storage:9000."""
    bucket: (
        Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*$")] | None
    ) = None
    """The bucket (it must exist)."""
    prefix: Annotated[str, Field(max_length=512, pattern=r"^[A-Za-z0-9!_.*'()/-]*$")] = ""
    """Key prefix, e.g. mail-score/; objects are <prefix>/<namespace>/<schedule>/<uid>.dump."""
    region: Annotated[str, Field(min_length=1, max_length=64)] = "us-east-1"
    """Region the request is signed for."""
    force_path_style: bool = True
    """Path-style addressing (http://host/bucket/key); false for virtual-host style."""
    credentials: ObjectCredentials
    """Where the access key pair is."""
    ca: SecretKeyRef | None = None
    """A CA certificate (PEM) the endpoint's TLS certificate must chain to."""
    encryption: Encryption | None = None
    """Encrypt the artifact before it leaves the operator. Unset: stored as pg_dump wrote it."""
    object_lock: ObjectLock | None = None
    """Upload each artifact with an Object Lock retention date, so it cannot be deleted
    before it (deleting the DatabaseBackup earlier leaves the artifact in the bucket)."""


class VolumeDestination(ApiModel):
    """The operator's backup volume (the default)."""


class Destination(ApiModel):
    """Exactly one of volume or s3."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.volume) && has(self.s3))",
                    "set either destination.volume or destination.s3, not both",
                ),
            ]
        }
    }

    volume: VolumeDestination | None = None
    """The operator's backup volume (also when destination is unset)."""
    s3: S3Destination | None = None
    """S3-compatible object storage."""


def family_prefix(prefix: str, namespace: str, family: str) -> str:
    """Where the objects of one backup, or of one schedule's runs, live (ends with /)."""
    parts = [p for p in prefix.strip("/").split("/") if p]
    return "/".join([*parts, namespace, family]) + "/"


def object_key(prefix: str, namespace: str, family: str, uid: str) -> str:
    """The one key a backup's artifact may have: from its namespace, schedule and uid."""
    return f"{family_prefix(prefix, namespace, family)}{uid}.dump"


def location_of(bucket: str, key: str) -> str:
    return f"{S3_SCHEME}{bucket}/{key}"


def key_id(encryption: Encryption | None) -> str | None:
    """The id recorded in status for the key that encrypts a new artifact."""
    if encryption is None or encryption.key is None:
        return None
    return f"{encryption.secret_name}/{encryption.key}"


class Chosen(NamedTuple):
    """The destination a new backup writes to, and where that choice came from (words)."""

    destination: Destination
    source: str


def choose(own: Destination | None, default: Destination | None) -> Chosen:
    """spec.destination when set; else the namespace's BackupDestination `default`; else
    the operator's volume. Decided once, when a backup starts, and recorded in its status,
    so a later change of the default never moves an existing backup's artifact."""
    if own is not None and (own.s3 is not None or own.volume is not None):
        return Chosen(own, "spec.destination")
    if default is not None and (default.s3 is not None or default.volume is not None):
        return Chosen(default, f"BackupDestination {DEFAULT_NAME}")
    return Chosen(Destination(volume=VolumeDestination()), "the operator's volume (no default)")


def describe(destination: Destination | None) -> str:
    """Where a destination puts artifacts, for people: `volume` or `s3://bucket/prefix`."""
    if destination is None or destination.s3 is None:
        return "volume"
    s3 = destination.s3
    prefix = s3.prefix.strip("/")
    return f"{S3_SCHEME}{s3.bucket}/{prefix}" if prefix else f"{S3_SCHEME}{s3.bucket}"


def retain_until(s3: S3Destination | None, started_at: datetime | None) -> datetime | None:
    """The Object Lock retention date of an artifact whose backup started then (None: not
    locked). From the start, recorded before the upload, so a retried upload gets the same."""
    if s3 is None or s3.object_lock is None or started_at is None:
        return None
    return started_at + parse_duration(s3.object_lock.retain_for)
