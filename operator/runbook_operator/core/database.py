"""Database work's I/O for the kinds that run it: the PostgreSQL port, and the login.

`Postgres` is the port: adapters.postgres is its one implementation (`POSTGRES`, the
module itself); unit tests inject tests/support/fake_postgres.py. `server()` reads the
user name and password from the Secret the API names, at the moment they are needed,
with `get` only (the operator may not list or watch Secrets). Neither value is ever
logged or put into a message: errors name the Secret and its keys, nothing else.
Handlers only (this is I/O); the models are core.postgres.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..adapters import postgres as pg
from ..adapters.kube import Forbidden, NotFound
from ..adapters.storage import BackupStore, StorageError
from . import pglogin
from .fields import parse_duration
from .ports import KubePort
from .postgres import HostResolution, PostgresRef, Table

__all__ = [
    "FAILURES",
    "POSTGRES",
    "CredentialsError",
    "CredentialsForbidden",
    "Failure",
    "Postgres",
    "SecretNotOptedIn",
    "Store",
    "deadline",
    "reason_of",
    "secret_value",
    "server",
]


Store = Callable[[Path], BackupStore]
"""The artifact store of a backup root (adapters.storage.FileStore)."""


@dataclass(frozen=True)
class Failure:
    """Long work that ended with a reason: the operation fails with it."""

    reason: str
    message: str
    verification: bool = False
    """The dump was fine; proving it restorable failed (a backup's verification)."""


class Postgres(Protocol):
    """What the database kinds ask of PostgreSQL (adapters.postgres says how)."""

    def dump(
        self, server: pg.Server, write: Callable[[bytes], None], cancel: pg.Cancel
    ) -> pg.DumpInfo: ...

    def list_archive(self, chunks: Iterable[bytes], cancel: pg.Cancel) -> int: ...

    def restore(
        self,
        server: pg.Server,
        chunks: Iterable[bytes],
        cancel: pg.Cancel,
        *,
        clean: bool,
        keep_owners: bool = True,
    ) -> None: ...

    def count_rows(self, server: pg.Server, tables: Iterable[Table]) -> dict[Table, int | None]: ...

    def database_exists(self, server: pg.Server, name: str) -> bool: ...

    def create_database(self, server: pg.Server, name: str) -> bool: ...

    def drop_database(self, server: pg.Server, name: str) -> bool: ...


POSTGRES: Postgres = pg
"""The real one."""


class CredentialsError(Exception):
    """The Secret or one of its keys is missing (or unreadable)."""

    reason = "CredentialsNotFound"


class CredentialsForbidden(CredentialsError):
    reason = "CredentialsForbidden"


class SecretNotOptedIn(CredentialsError):
    """The Secret is neither of type kubernetes.io/basic-auth nor labelled for this use."""

    reason = "SecretNotOptedIn"


FAILURES = (pg.PostgresError, StorageError, CredentialsError)
"""What ends database work with a reason (each has `.reason`); anything else is retried."""


def reason_of(exc: Exception) -> str:
    return str(getattr(exc, "reason", "Failed"))


def secret_value(kube: KubePort, namespace: str, secret: str, key: str, keys: str = "") -> str:
    """One key of a Secret, as text; CredentialsError names the Secret and the `keys` it
    needs, never a value (CredentialsForbidden when the operator may not read it)."""
    try:
        return kube.read_secret_key(namespace, secret, key).decode()
    except NotFound as exc:
        needs = f"Secret {secret}, keys {keys}" if keys else f"Secret {secret}, key {key!r}"
        raise CredentialsError(f"cannot read the credentials: {exc} ({needs})") from None
    except Forbidden as exc:
        raise CredentialsForbidden(f"the operator may not read Secret {secret}: {exc}") from None
    except UnicodeDecodeError:
        raise CredentialsError(f"Secret {secret} holds a value that is not UTF-8") from None


def _read_secret(kube: KubePort, namespace: str, secret: str, needs: str) -> dict[str, object]:
    try:
        return kube.read_secret(namespace, secret)
    except NotFound as exc:
        raise CredentialsError(f"cannot read the credentials: {exc} ({needs})") from None
    except Forbidden as exc:
        raise CredentialsForbidden(f"the operator may not read Secret {secret}: {exc}") from None


def _key(obj: dict[str, object], secret: str, key: str, needs: str) -> str:
    data = obj.get("data")
    raw = data.get(key) if isinstance(data, dict) else None
    if not isinstance(raw, str):
        raise CredentialsError(
            f"cannot read the credentials: Secret {secret} has no key {key!r} ({needs})"
        )
    try:
        return base64.b64decode(raw).decode()
    except (ValueError, UnicodeDecodeError):
        raise CredentialsError(f"Secret {secret} holds a value that is not UTF-8") from None


def _ca(kube: KubePort, namespace: str, ref: PostgresRef) -> str | None:
    """The CA certificate the spec names (public: no opt-in needed), or None."""
    if ref.ca is None:
        return None
    return secret_value(kube, namespace, ref.ca.name, ref.ca.key)


def server(kube: KubePort, namespace: str, ref: PostgresRef) -> pg.Server:
    """The server of `ref` with the user name and password read from its Secret, which
    must have opted in (core.pglogin); a short host is a Service in `namespace`."""
    secret, keys = ref.credentials.secret_name, ref.credentials
    needs = f"Secret {secret}, keys {keys.username_key!r} and {keys.password_key!r}"
    obj = _read_secret(kube, namespace, secret, needs)
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    kind = obj.get("type")
    refusal = pglogin.not_opted_in(
        secret,
        kind if isinstance(kind, str) else None,
        labels if isinstance(labels, dict) else None,
        keys.username_key,
        keys.password_key,
    )
    if refusal is not None:
        raise SecretNotOptedIn(refusal)
    as_written = ref.host_resolution == HostResolution.AS_WRITTEN
    return pg.Server(
        host=pglogin.resolve_host(ref.host, namespace, as_written=as_written),
        port=ref.port,
        database=ref.database,
        user=_key(obj, secret, keys.username_key, needs),
        password=_key(obj, secret, keys.password_key, needs),
        sslmode=ref.sslmode,
        ca_pem=_ca(kube, namespace, ref),
        require_auth=pglogin.require_auth(ref.require_auth),
        lock_timeout=parse_duration(ref.lock_timeout).total_seconds(),
    )


def deadline(ref: PostgresRef, stopped: pg.Cancel) -> pg.Deadline:
    """The stop flag of one dump, verification or restore: `stopped`, or `ref.timeout`."""
    return pg.Deadline(stopped, parse_duration(ref.timeout).total_seconds(), ref.timeout)
