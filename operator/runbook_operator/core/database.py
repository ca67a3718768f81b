"""Database work's I/O for the kinds that run it: the PostgreSQL port, and the login.

`Postgres` is the port: adapters.postgres is its one implementation (`POSTGRES`, the
module itself); unit tests inject tests/support/fake_postgres.py. `server()` reads the
user name and password from the Secret the API names, at the moment they are needed,
with `get` only (the operator may not list or watch Secrets). Neither value is ever
logged or put into a message: errors name the Secret and its keys, nothing else.
Handlers only (this is I/O); the models are core.postgres.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..adapters import postgres as pg
from ..adapters.kube import Forbidden, NotFound
from ..adapters.storage import BackupStore, StorageError
from .fields import parse_duration
from .ports import KubePort
from .postgres import PostgresRef, Table

__all__ = [
    "FAILURES",
    "POSTGRES",
    "CredentialsError",
    "CredentialsForbidden",
    "Failure",
    "Postgres",
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


def server(kube: KubePort, namespace: str, ref: PostgresRef) -> pg.Server:
    """The server of `ref` with the user name and password read from its Secret."""
    secret, keys = ref.credentials.secret_name, ref.credentials
    both = f"{keys.username_key!r} and {keys.password_key!r}"
    user = secret_value(kube, namespace, secret, keys.username_key, both)
    password = secret_value(kube, namespace, secret, keys.password_key, both)
    return pg.Server(
        host=ref.host,
        port=ref.port,
        database=ref.database,
        user=user,
        password=password,
        sslmode=ref.ssl_mode.value,
        lock_timeout=parse_duration(ref.lock_timeout).total_seconds(),
    )


def deadline(ref: PostgresRef, stopped: pg.Cancel) -> pg.Deadline:
    """The stop flag of one dump, verification or restore: `stopped`, or `ref.timeout`."""
    return pg.Deadline(stopped, parse_duration(ref.timeout).total_seconds(), ref.timeout)
