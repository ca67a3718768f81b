"""What the DatabaseBackup and DatabaseRestore handlers share.

`Jobs` is this operator process's memory of database work: its id (recorded as
status.attemptBy, so a restarted operator recognises interrupted attempts), the
steps it has run, and the status it last wrote (a pass that would act on an older
one waits until Kopf's patch shows up). `Ctx` is one handler pass over one object.
Credentials are read from the named Secret at the moment they are needed (the
operator may `get` Secrets, never list or watch them) and never logged.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import BaseModel

from ..adapters import postgres as pg
from ..adapters.kube import Forbidden, Kube, NotFound
from ..adapters.storage import FileStore, StorageError
from ..api.common import Condition
from ..api.databasebackup import PostgresRef
from ..conditions import find

__all__ = [
    "DELETE_WAIT_SECONDS",
    "FAILURES",
    "STALE_SECONDS",
    "TICK_SECONDS",
    "CredentialsError",
    "CredentialsForbidden",
    "Ctx",
    "Jobs",
    "credentials",
    "jobs",
    "message_of",
    "now_utc",
    "quiet",
    "status_patch",
    "write_status",
]

TICK_SECONDS = 2.0
"""How often the timers look at unfinished backups, schedules and restores."""
DELETE_WAIT_SECONDS = 60.0
"""How long a finalizer waits for a running step to stop before retrying."""
STALE_SECONDS = 10.0
"""How long a pass waits for its own status write to arrive before trusting the object."""


@dataclass
class Jobs:
    """Database work of this operator process."""

    runner: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    """This process's id, recorded as status.attemptBy."""
    tried: set[tuple[str, int | None, str | None]] = field(default_factory=set)
    """(uid, attempt, step) this process has run: finding one still pending means its
    result was lost, so the attempt counts as interrupted."""
    expected: dict[str, tuple[str, float]] = field(default_factory=dict)
    """uid -> (digest of the status last written, when): until Kopf's patch shows up in
    the object, a pass would act on a stale status, so it waits (at most STALE_SECONDS)."""
    guard: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, uid: str, status: BaseModel) -> None:
        with self.guard:
            self.expected[uid] = (_digest(status), time.monotonic())

    def is_stale(self, uid: str, status: BaseModel) -> bool:
        with self.guard:
            entry = self.expected.get(uid)
            if entry is None:
                return False
            digest, when = entry
            if digest == _digest(status) or time.monotonic() - when > STALE_SECONDS:
                del self.expected[uid]
                return False
            return True

    def has_tried(self, uid: str, attempt: int | None, step: str | None) -> bool:
        with self.guard:
            return (uid, attempt, step) in self.tried

    def mark(self, uid: str, attempt: int | None, step: str | None) -> None:
        with self.guard:
            self.tried.add((uid, attempt, step))


def _digest(status: BaseModel) -> str:
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return hashlib.sha256(json.dumps(wire, sort_keys=True).encode()).hexdigest()


def jobs(memo: Any) -> Jobs:
    with memo.locks_guard:
        if "db_jobs" not in memo:
            memo.db_jobs = Jobs()
        return memo.db_jobs  # type: ignore[no-any-return]


class CredentialsError(Exception):
    """The Secret or one of its keys is missing (or unreadable)."""

    reason = "CredentialsNotFound"


class CredentialsForbidden(CredentialsError):
    reason = "CredentialsForbidden"


def credentials(kube: Kube, namespace: str, ref: PostgresRef) -> pg.Server:
    """The server with the user name and password read from the Secret (`get` only)."""
    secret, keys = ref.credentials.secret_name, ref.credentials
    try:
        user = kube.read_secret_key(namespace, secret, keys.username_key).decode()
        password = kube.read_secret_key(namespace, secret, keys.password_key).decode()
    except NotFound as exc:
        raise CredentialsError(
            f"cannot read the credentials: {exc} (Secret {secret}, keys "
            f"{keys.username_key!r} and {keys.password_key!r})"
        ) from None
    except Forbidden as exc:
        raise CredentialsForbidden(f"the operator may not read Secret {secret}: {exc}") from None
    except UnicodeDecodeError:
        raise CredentialsError(
            f"Secret {secret} holds a user name or password that is not UTF-8"
        ) from None
    return pg.Server(
        host=ref.host,
        port=ref.port,
        database=ref.database,
        user=user,
        password=password,
        sslmode=ref.ssl_mode.value,
    )


FAILURES = (pg.PostgresError, StorageError, CredentialsError)


def status_patch(old: BaseModel, new: BaseModel) -> dict[str, Any]:
    """The merge patch from `old` to `new` status: changed fields, removed ones as null."""
    before = old.model_dump(mode="json", by_alias=True, exclude_none=True)
    after = new.model_dump(mode="json", by_alias=True, exclude_none=True)
    out: dict[str, Any] = {k: v for k, v in after.items() if before.get(k) != v}
    out.update({k: None for k in before if k not in after})
    return out


def write_status(ctx: Ctx, old: BaseModel, new: BaseModel) -> None:
    """Into Kopf's patch (applied when the handler returns), remembering what to expect."""
    changes = status_patch(old, new)
    for key, value in changes.items():
        ctx.patch.status[key] = value
    if changes:
        jobs(ctx.memo).expect(ctx.uid, new)


def quiet(logger: Any, message: str, *args: Any) -> None:
    """Log without Kopf also posting the line as an event (we post our own)."""
    logger.info(message, *args, extra={"k8s_skip": True})


def message_of(conditions: list[Condition], type_: str) -> str:
    found = find(conditions, type_)
    return found.message if found is not None else ""


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Ctx:
    """One pass over one object."""

    body: kopf.Body
    memo: Any
    logger: Any
    patch: kopf.Patch
    stopped: pg.Cancel | None

    @property
    def kube(self) -> Kube:
        return self.memo.kube  # type: ignore[no-any-return]

    @property
    def namespace(self) -> str:
        return str(self.body.metadata.namespace)

    @property
    def name(self) -> str:
        return str(self.body.metadata.name)

    @property
    def uid(self) -> str:
        return str(self.body.metadata.uid)

    @property
    def generation(self) -> int | None:
        gen = self.body.metadata.get("generation")
        return int(gen) if gen is not None else None

    @property
    def store(self) -> FileStore:
        return FileStore(self.memo.settings.backup_root)

    def info(self, reason: str, message: str) -> None:
        kopf.info(self.body, reason=reason, message=message)
        quiet(self.logger, "%s: %s", reason, message)

    def warn(self, reason: str, message: str) -> None:
        kopf.warn(self.body, reason=reason, message=message)
        self.logger.warning("%s: %s", reason, message, extra={"k8s_skip": True})
