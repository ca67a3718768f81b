"""The object store of one backup: its destination's Secrets read, its key derived.

What a backup object's metadata vouches for (namespace, name, uid, the schedule label
the operator set) fixes the object key (core.destination); the access keys, the CA
and the encryption key are read from Secrets in the backup's namespace when needed,
with `get` only, and never logged (core.database.secret_value). Handlers only: this
is I/O.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..adapters.kube import NotFound
from ..adapters.objectstore import S3Config, S3Store
from . import destination as dest
from .database import CredentialsError, secret_value
from .names import SCHEDULE_LABEL
from .ports import KubePort
from .spec import InvalidSpec

__all__ = ["default_destination", "encryption_key", "is_s3", "s3_store", "s3_store_of"]


def is_s3(location: str | None) -> bool:
    return bool(location and location.startswith(dest.S3_SCHEME))


def _config(kube: KubePort, namespace: str, s3: dest.S3Destination) -> S3Config:
    creds = s3.credentials
    both = f"{creds.access_key_id_key!r} and {creds.secret_access_key_key!r}"
    access = secret_value(kube, namespace, creds.secret_name, creds.access_key_id_key, both)
    secret = secret_value(kube, namespace, creds.secret_name, creds.secret_access_key_key, both)
    ca = None
    if s3.ca is not None:
        ca = secret_value(kube, namespace, s3.ca.name, s3.ca.key).encode()
    assert s3.bucket is not None  # the schema requires it
    return S3Config(
        endpoint=s3.endpoint,
        bucket=s3.bucket,
        region=s3.region,
        path_style=s3.force_path_style,
        access_key_id=access,
        secret_access_key=secret,
        ca_pem=ca,
    )


def encryption_key(kube: KubePort, namespace: str, key_id: str) -> bytes:
    """The 32-byte key a key id (`<secret>/<key>`) names, from that Secret."""
    secret, _, key = key_id.partition("/")
    if not secret or not key:
        raise CredentialsError(f"{key_id!r} is not a key id of the form <secret>/<key>")
    text = secret_value(kube, namespace, secret, key)
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise CredentialsError(
            f"Secret {secret}, key {key!r} must hold 32 random bytes, base64-encoded "
            "(openssl rand -base64 32)"
        )
    return raw


def s3_store(
    kube: KubePort,
    metadata: Mapping[str, Any],
    s3: dest.S3Destination,
    *,
    recorded_key_id: str | None,
    writing: bool,
    started_at: datetime | None = None,
) -> S3Store:
    """The store of the backup whose metadata this is. writing: a new artifact will be
    uploaded (encrypted with the spec's key, locked until started_at + objectLock.retainFor);
    reading uses the key id the backup recorded."""
    namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
    family = (metadata.get("labels") or {}).get(SCHEDULE_LABEL) or name
    key = dest.object_key(s3.prefix, namespace, family, uid)
    seal_with = None
    if writing and (new_id := dest.key_id(s3.encryption)) is not None:
        seal_with = (new_id, encryption_key(kube, namespace, new_id))
    return S3Store(
        _config(kube, namespace, s3),
        key,
        dest.family_prefix(s3.prefix, namespace, family),
        seal_with=seal_with,
        opened_with=recorded_key_id,
        keyring=lambda key_id: encryption_key(kube, namespace, key_id),
        sweep=writing,
        lock=_lock(s3, started_at) if writing else None,
    )


def _lock(s3: dest.S3Destination, started_at: datetime | None) -> tuple[str, datetime] | None:
    until = dest.retain_until(s3, started_at)
    if until is None or s3.object_lock is None:
        return None
    return s3.object_lock.mode.value, until


def default_destination(kube: KubePort, namespace: str) -> dest.Destination | None:
    """The namespace's BackupDestination `default`, None when there is none."""
    try:
        obj = kube.get_custom(dest.DESTINATIONS, namespace, dest.DEFAULT_NAME)
    except NotFound:
        return None
    try:
        return dest.Destination.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        raise InvalidSpec(
            f"BackupDestination {dest.DEFAULT_NAME} in {namespace} cannot be used: "
            f"{exc.errors()[0].get('msg', exc)}"
        ) from None


def s3_store_of(kube: KubePort, backup: Mapping[str, Any]) -> S3Store | None:
    """The store a DatabaseBackup object's artifact is in, read from the object itself
    (its spec's destination, else the one its status recorded when it started; its uid;
    the key id its status recorded); None: the volume."""
    status = backup.get("status") or {}
    raw = (backup.get("spec") or {}).get("destination") or status.get("destination")
    if not raw:
        return None
    destination = dest.Destination.model_validate(raw)
    if destination.s3 is None:
        return None
    recorded = status.get("encryptionKeyId")
    return s3_store(
        kube, backup["metadata"], destination.s3, recorded_key_id=recorded, writing=False
    )
