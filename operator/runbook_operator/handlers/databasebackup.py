"""DatabaseBackup handlers: observe -> logic -> one step -> status.

Change handlers (create/update/resume) take only quick steps; the timer takes
the long ones (pg_dump, verification), so one object's long step never runs
twice at once and its result is written before the timer's next pass. A long
step is decided on a freshly read status, and Kopf's `stopped` flag (object
deleted, operator stopping) kills the running pg_dump/pg_restore; the step is
then retried by whichever operator process comes next (logic.databasebackup).

A scheduled DatabaseBackup creates one child per run and prunes old children;
the finalizer of a one-shot backup removes its artifact (deletionPolicy Delete).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import BaseModel, ValidationError

from ..adapters import postgres as pg
from ..adapters.kube import Conflict, Forbidden, Kube, KubeError, NotFound
from ..adapters.metrics import observe
from ..adapters.storage import FileStore, StorageError
from ..api.common import Condition
from ..api.databasebackup import (
    DATABASE_BACKUP,
    SCHEDULE_LABEL,
    BackupPhase,
    BackupStep,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
    DeletionPolicy,
    PostgresRef,
    Verification,
    VerifyMethod,
)
from ..api.databaserestore import DATABASE_RESTORE, RestorePhase
from ..conditions import find, ready
from ..logic import backupschedule as sched
from ..logic import databasebackup as logic
from .lifecycle import object_lock

__all__ = [
    "TICK_SECONDS",
    "Ctx",
    "Jobs",
    "credentials",
    "jobs",
    "message_of",
    "on_change",
    "on_delete",
    "on_tick",
    "reconcile",
    "scratch_database",
    "status_patch",
    "write_status",
]

RESOURCE = (DATABASE_BACKUP.group, DATABASE_BACKUP.version, DATABASE_BACKUP.plural)
KIND = DATABASE_BACKUP.kind
TICK_SECONDS = 2.0
DELETE_WAIT_SECONDS = 60.0
STALE_SECONDS = 10.0


# --- shared with the DatabaseRestore handlers --------------------------------------


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


# --- handlers ---------------------------------------------------------------------


def _ticking(spec: Any, status: Any, **_: Any) -> bool:
    """Schedules tick forever; a one-shot backup until it completes or fails."""
    phase = (status or {}).get("phase")
    return bool((spec or {}).get("schedule")) or phase not in ("Completed", "Failed")


@kopf.on.create(*RESOURCE, id="databasebackup-create")
@kopf.on.update(*RESOURCE, id="databasebackup-update", field="spec")
@kopf.on.resume(*RESOURCE, id="databasebackup-resume")
def on_change(body: kopf.Body, memo: Any, logger: kopf.Logger, patch: kopf.Patch, **_: Any) -> None:
    reconcile(Ctx(body, memo, logger, patch, stopped=None))


@kopf.on.timer(*RESOURCE, id="databasebackup-tick", interval=TICK_SECONDS, when=_ticking)
def on_tick(
    body: kopf.Body,
    memo: Any,
    logger: kopf.Logger,
    patch: kopf.Patch,
    stopped: kopf.DaemonStopped | None = None,
    **_: Any,
) -> None:
    reconcile(Ctx(body, memo, logger, patch, stopped=stopped))


def reconcile(ctx: Ctx) -> None:
    lock = object_lock(ctx.memo, ctx.uid)
    if not lock.acquire(blocking=False):
        return  # a long step of this object is running; the timer comes back
    try:
        with observe(KIND):
            status = DatabaseBackupStatus.model_validate(ctx.body.get("status") or {})
            if jobs(ctx.memo).is_stale(ctx.uid, status):
                return  # our last status write has not arrived yet
            try:
                spec = DatabaseBackupSpec.model_validate(ctx.body.get("spec") or {})
            except ValidationError as exc:
                _invalid(ctx, status, str(exc).splitlines()[-1])
                return
            if spec.schedule:
                _schedule(ctx, spec, status)
            else:
                _one_shot(ctx, spec, status)
    finally:
        lock.release()


def _invalid(ctx: Ctx, status: DatabaseBackupStatus, message: str) -> None:
    new = logic.failed(status, "InvalidSpec", message, generation=ctx.generation, now=now_utc())
    if find(status.conditions, "Ready") != find(new.conditions, "Ready"):
        ctx.warn("InvalidSpec", message)
    write_status(ctx, status, new)


# --- one-shot ----------------------------------------------------------------------


def _decide(ctx: Ctx, status: DatabaseBackupStatus) -> logic.Action:
    work = jobs(ctx.memo)
    tried = work.has_tried(ctx.uid, status.attempt, status.step)
    return logic.next_action(status, runner=work.runner, tried=tried)


def _one_shot(ctx: Ctx, spec: DatabaseBackupSpec, status: DatabaseBackupStatus) -> None:
    action = _decide(ctx, status)
    if action in logic.LONG_ACTIONS:
        if ctx.stopped is None or ctx.stopped.is_set():
            return  # only the timer runs long steps
        fresh = ctx.kube.get_custom(DATABASE_BACKUP.plural, ctx.namespace, ctx.name)
        status = DatabaseBackupStatus.model_validate(fresh.get("status") or {})
        action = _decide(ctx, status)
    now, gen, runner = now_utc(), ctx.generation, jobs(ctx.memo).runner
    new: DatabaseBackupStatus | None = None
    if action == logic.Action.START:
        new = logic.started(status, runner=runner, generation=gen, now=now)
        where = f"{spec.postgres.database} on {spec.postgres.host}:{spec.postgres.port}"
        ctx.info("Started", f"backing up {where} with pg_dump")
    elif action == logic.Action.RETRY:
        new = logic.retried(status, runner=runner, generation=gen, now=now)
        ctx.warn("Interrupted", message_of(new.conditions, "Reconciling"))
    elif action == logic.Action.GIVE_UP:
        message = f"interrupted {status.attempt} times; giving up"
        new = logic.failed(status, "Interrupted", message, generation=gen, now=now)
        ctx.warn("Interrupted", message)
        ctx.store.discard_partials(ctx.namespace, ctx.name)
    elif action == logic.Action.DUMP:
        new = _dump(ctx, spec, status)
    elif action == logic.Action.VERIFY:
        new = _verify(ctx, spec, status)
    if new is not None:
        write_status(ctx, status, new)


def _fail(
    ctx: Ctx, status: DatabaseBackupStatus, exc: Exception, *, verification: bool = False
) -> DatabaseBackupStatus:
    reason = str(getattr(exc, "reason", "Failed"))
    message = str(exc)
    ctx.warn(reason, message)
    return logic.failed(
        status,
        reason,
        message,
        generation=ctx.generation,
        now=now_utc(),
        verification_failed=verification,
    )


def _dump(
    ctx: Ctx, spec: DatabaseBackupSpec, status: DatabaseBackupStatus
) -> DatabaseBackupStatus | None:
    assert ctx.stopped is not None and status.started_at is not None
    jobs(ctx.memo).mark(ctx.uid, status.attempt, status.step)
    store = ctx.store
    quiet(ctx.logger, "dumping (attempt %s)", status.attempt)
    try:
        server = credentials(ctx.kube, ctx.namespace, spec.postgres)
        store.discard_partials(ctx.namespace, ctx.name)
        upload = store.begin(ctx.namespace, ctx.name, logic.stamp(status.started_at))
        try:
            info = pg.dump(server, upload.write, ctx.stopped)
            stored = upload.commit()
        except BaseException:
            upload.abort()
            raise
    except pg.Cancelled:
        quiet(ctx.logger, "pg_dump stopped (object deleted or operator stopping)")
        return None
    except FAILURES as exc:
        return _fail(ctx, status, exc)
    result = logic.Dumped(
        location=stored.location,
        size=stored.size,
        sha256=stored.sha256,
        server_version=info.server_version,
        pg_dump_version=info.pg_dump_version,
        tables=info.tables,
    )
    new = logic.dumped(status, result, spec.verify, generation=ctx.generation, now=now_utc())
    rows = sum(info.tables.values())
    ctx.info(
        "Dumped",
        f"{len(info.tables)} tables, {rows} rows, {logic.human_size(stored.size)} "
        f"(sha256 {stored.sha256[:12]}…) written to {stored.location}",
    )
    if new.phase == BackupPhase.COMPLETED:
        ctx.info("Completed", message_of(new.conditions, "Ready"))
    return new


def scratch_database(uid: str) -> str:
    return f"runbook_verify_{uid.replace('-', '')[:12]}"


def _verify(
    ctx: Ctx, spec: DatabaseBackupSpec, status: DatabaseBackupStatus
) -> DatabaseBackupStatus | None:
    assert ctx.stopped is not None and status.location is not None
    jobs(ctx.memo).mark(ctx.uid, status.attempt, status.step)
    quiet(ctx.logger, "verifying %s (%s)", status.location, spec.verify.value)
    try:
        verification = _prove(ctx, spec, status)
    except pg.Cancelled:
        return None
    except FAILURES as exc:
        return _fail(ctx, status, exc, verification=True)
    new = logic.verified(status, verification, generation=ctx.generation, now=now_utc())
    ctx.info("Verified", message_of(new.conditions, logic.VERIFIED))
    ctx.info("Completed", message_of(new.conditions, "Ready"))
    return new


class VerificationFailed(Exception):
    reason = "VerificationFailed"


def _prove(ctx: Ctx, spec: DatabaseBackupSpec, status: DatabaseBackupStatus) -> Verification:
    """Readable: sha256 + pg_restore --list in one read. Restore: then a scratch restore."""
    assert ctx.stopped is not None and status.location is not None
    store, location = ctx.store, status.location
    digest = hashlib.sha256()

    def hashed() -> Iterator[bytes]:
        for chunk in store.read(location):
            digest.update(chunk)
            yield chunk

    entries = pg.list_archive(hashed(), ctx.stopped)
    if digest.hexdigest() != status.sha256:
        raise VerificationFailed(
            f"the artifact's sha256 is {digest.hexdigest()}, but {status.sha256} was written: "
            "it changed on the volume"
        )
    if spec.verify != VerifyMethod.RESTORE:
        return Verification(method=spec.verify, toc_entries=entries)
    server = credentials(ctx.kube, ctx.namespace, spec.postgres)
    scratch = scratch_database(ctx.uid)
    pg.drop_database(server, scratch)  # left over by an interrupted attempt
    pg.create_database(server, scratch)
    try:
        pg.restore(
            server.on(scratch), store.read(location), ctx.stopped, clean=False, keep_owners=False
        )
        tables = [(t.schema_, t.name) for t in status.tables]
        counts = pg.count_rows(server.on(scratch), tables)
    finally:
        _drop_quietly(ctx, server, scratch)
    mismatches = logic.compare_counts(status.tables, counts)
    if mismatches:
        raise VerificationFailed(
            f"restored into scratch database {scratch}, {len(mismatches)} tables differ: "
            + "; ".join(mismatches[:10])
        )
    return Verification(
        method=spec.verify,
        toc_entries=entries,
        tables_compared=len(tables),
        scratch_database=scratch,
    )


def _drop_quietly(ctx: Ctx, server: pg.Server, database: str) -> None:
    try:
        pg.drop_database(server, database)
    except pg.PostgresError as exc:
        ctx.warn("ScratchDatabaseLeft", f"could not drop scratch database {database}: {exc}")


# --- schedule ----------------------------------------------------------------------


def _owned_children(ctx: Ctx) -> list[dict[str, Any]]:
    selector = f"{SCHEDULE_LABEL}={ctx.name}"
    items = ctx.kube.list_custom(DATABASE_BACKUP.plural, ctx.namespace, selector)
    return [
        c
        for c in items
        if any(o.get("uid") == ctx.uid for o in c["metadata"].get("ownerReferences") or [])
    ]


def _child_view(obj: dict[str, Any], in_use: set[str]) -> sched.Child:
    status = obj.get("status") or {}
    completed = status.get("completedAt")
    return sched.Child(
        name=obj["metadata"]["name"],
        phase=status.get("phase"),
        created=datetime.fromisoformat(obj["metadata"]["creationTimestamp"]),
        completed_at=datetime.fromisoformat(completed) if completed else None,
        in_use=obj["metadata"]["name"] in in_use,
    )


def _restores_reading(ctx: Ctx) -> set[str]:
    """Backups that a DatabaseRestore in flight is reading: retention leaves them alone."""
    out: set[str] = set()
    for obj in ctx.kube.list_custom(DATABASE_RESTORE.plural, ctx.namespace):
        status = obj.get("status") or {}
        if status.get("phase") not in (RestorePhase.COMPLETED, RestorePhase.FAILED):
            out.update(filter(None, [status.get("backup"), (obj.get("spec") or {}).get("backup")]))
    return out


def _schedule(ctx: Ctx, spec: DatabaseBackupSpec, status: DatabaseBackupStatus) -> None:
    now = now_utc()
    created = datetime.fromisoformat(ctx.body.metadata["creationTimestamp"])
    objs = _owned_children(ctx)
    try:
        decision = sched.decide(
            spec,
            status.last_schedule_time,
            [_child_view(o, set()) for o in objs],
            created=created,
            now=now,
        )
        if decision.delete:
            in_use = _restores_reading(ctx)
            children = [_child_view(o, in_use) for o in objs]
            decision = sched.decide(
                spec, status.last_schedule_time, children, created=created, now=now
            )
    except sched.InvalidSchedule as exc:
        _invalid(ctx, status, str(exc))
        return
    active = decision.active
    if decision.run is not None:
        active = _create_child(ctx, spec, decision.run)
    if decision.missed is not None:
        ctx.warn(
            "MissedSchedule",
            f"the run due at {decision.missed.isoformat()} did not start within the starting "
            f"deadline ({spec.starting_deadline or '1h'}); the next run is at "
            f"{decision.next_time.isoformat() if decision.next_time else 'never'}",
        )
    for name in decision.delete:
        if ctx.kube.delete_custom(DATABASE_BACKUP.plural, ctx.namespace, name):
            ctx.info("Pruned", f"deleted DatabaseBackup {name} and its artifact (retention)")
    write_status(ctx, status, _schedule_status(ctx, spec, status, decision, active, now))


def _create_child(ctx: Ctx, spec: DatabaseBackupSpec, slot: datetime) -> str:
    body = sched.child_object(ctx.name, ctx.uid, spec, slot)
    name = str(body["metadata"]["name"])
    try:
        ctx.kube.create_custom(DATABASE_BACKUP.plural, ctx.namespace, body)
    except Conflict:
        return name  # created by an earlier pass whose status write was lost
    except KubeError as exc:
        ctx.warn("ScheduleFailed", f"could not create DatabaseBackup {name}: {exc}")
        raise kopf.TemporaryError(str(exc), delay=10) from exc
    ctx.info("Scheduled", f"created DatabaseBackup {name} for the run due at {slot.isoformat()}")
    return name


def _schedule_status(
    ctx: Ctx,
    spec: DatabaseBackupSpec,
    status: DatabaseBackupStatus,
    decision: sched.Decision,
    active: str | None,
    now: datetime,
) -> DatabaseBackupStatus:
    last = decision.run or decision.missed or status.last_schedule_time
    success = decision.last_success
    if spec.suspend:
        message = "suspended: no new runs"
    else:
        nxt = decision.next_time.isoformat() if decision.next_time else "never"
        message = f"next run at {nxt}" + (f"; {active} is running" if active else "")
    if success is not None:
        message += f"; last successful backup {success.name}"
    reason = "Suspended" if spec.suspend else "Scheduled"
    conditions = ready(status.conditions, reason, message, generation=ctx.generation, now=now)
    return status.model_copy(
        update={
            "phase": decision.phase,
            "observed_generation": ctx.generation,
            "last_schedule_time": last,
            "next_schedule_time": decision.next_time,
            "active": active,
            "last_successful_time": success.when if success else status.last_successful_time,
            "last_successful_backup": success.name if success else status.last_successful_backup,
            "conditions": conditions,
        }
    )


# --- deletion ----------------------------------------------------------------------


@kopf.on.delete(*RESOURCE, id="databasebackup-delete")
def on_delete(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Wait for a running step to stop, then remove what the backup left behind."""
    ctx = Ctx(body, memo, logger, kopf.Patch(), stopped=None)
    lock = object_lock(memo, ctx.uid)
    if not lock.acquire(timeout=DELETE_WAIT_SECONDS):
        raise kopf.TemporaryError("waiting for the running pg_dump to stop", delay=5)
    try:
        with observe(KIND):
            _clean_up(ctx)
    finally:
        lock.release()


def _clean_up(ctx: Ctx) -> None:
    spec = DatabaseBackupSpec.model_validate(ctx.body.get("spec") or {})
    status = DatabaseBackupStatus.model_validate(ctx.body.get("status") or {})
    if spec.schedule:
        quiet(ctx.logger, "schedule deleted; its children go with it (owner references)")
        return
    store = ctx.store
    try:
        store.discard_partials(ctx.namespace, ctx.name)
        if status.step == BackupStep.VERIFYING and spec.verify == VerifyMethod.RESTORE:
            server = credentials(ctx.kube, ctx.namespace, spec.postgres)
            _drop_quietly(ctx, server, scratch_database(ctx.uid))
        if status.location and spec.deletion_policy == DeletionPolicy.DELETE:
            if store.delete(status.location):
                ctx.info("ArtifactDeleted", f"deleted {status.location}")
        elif status.location:
            ctx.info("ArtifactRetained", f"kept {status.location} (deletionPolicy Retain)")
    except FAILURES as exc:
        ctx.warn(
            "CleanupIncomplete",
            f"{exc}; remove {status.location or 'the partial files'} by hand if needed",
        )
