"""DatabaseRestore handlers: observe -> logic -> one step -> status.

Everything that talks to PostgreSQL runs in the timer (one pass at a time per
object, Kopf's `stopped` flag kills pg_restore on deletion or shutdown); the
change handlers only make the object visible at once. The restore runs in one
transaction, so an interrupted attempt leaves the database as it was and is
simply run again. Deleting a restore stops it; it never drops a database.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from ..adapters import postgres as pg
from ..adapters.kube import Conflict, KubeError, NotFound
from ..adapters.metrics import observe
from ..api.databasebackup import (
    DATABASE_BACKUP,
    SCHEDULE_LABEL,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
)
from ..api.databaserestore import (
    DATABASE_RESTORE,
    DatabaseRestoreSpec,
    DatabaseRestoreStatus,
    RestorePhase,
    RestoreStep,
)
from ..conditions import find, is_true
from ..logic import databaserestore as logic
from ..logic.databasebackup import VERIFIED
from .databasebackup_common import (
    DELETE_WAIT_SECONDS,
    FAILURES,
    TICK_SECONDS,
    Ctx,
    credentials,
    jobs,
    message_of,
    now_utc,
    quiet,
    write_status,
)
from .lifecycle import object_lock

__all__ = ["on_change", "on_delete", "on_tick", "reconcile"]

RESOURCE = (DATABASE_RESTORE.group, DATABASE_RESTORE.version, DATABASE_RESTORE.plural)
KIND = DATABASE_RESTORE.kind
MAINTENANCE_WINDOWS = "maintenancewindows"
Obj = dict[str, Any]


def _ticking(status: Any, **_: Any) -> bool:
    return (status or {}).get("phase") not in ("Completed", "Failed")


@kopf.on.create(*RESOURCE, id="databaserestore-create")
@kopf.on.update(*RESOURCE, id="databaserestore-update", field="spec")
@kopf.on.resume(*RESOURCE, id="databaserestore-resume")
def on_change(body: kopf.Body, memo: Any, logger: kopf.Logger, patch: kopf.Patch, **_: Any) -> None:
    reconcile(Ctx(body, memo, logger, patch, stopped=None))


@kopf.on.timer(*RESOURCE, id="databaserestore-tick", interval=TICK_SECONDS, when=_ticking)
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
        return
    try:
        with observe(KIND):
            _step(ctx)
    finally:
        lock.release()


def _decide(ctx: Ctx, status: DatabaseRestoreStatus) -> logic.Action:
    work = jobs(ctx.memo)
    tried = work.has_tried(ctx.uid, status.attempt, status.step)
    return logic.next_action(status, runner=work.runner, tried=tried)


def _step(ctx: Ctx) -> None:
    status = DatabaseRestoreStatus.model_validate(ctx.body.get("status") or {})
    if jobs(ctx.memo).is_stale(ctx.uid, status):
        return  # our last status write has not arrived yet
    try:
        spec = DatabaseRestoreSpec.model_validate(ctx.body.get("spec") or {})
    except ValidationError as exc:
        refusal = logic.Refusal("InvalidSpec", str(exc).splitlines()[-1], final=True)
        _refuse(ctx, status, refusal)
        return
    action = _decide(ctx, status)
    if action == logic.Action.NONE:
        return
    if ctx.stopped is None:
        if status.phase is None:  # visible at once; the timer does the rest
            _write(ctx, status, logic.pending(status, "starting", **_stamp(ctx)))
        return
    if action == logic.Action.RESTORE:
        fresh = ctx.kube.get_custom(DATABASE_RESTORE.plural, ctx.namespace, ctx.name)
        status = DatabaseRestoreStatus.model_validate(fresh.get("status") or {})
        action = _decide(ctx, status)
    new = _act(ctx, spec, status, action)
    if new is not None:
        _write(ctx, status, new)


def _act(
    ctx: Ctx, spec: DatabaseRestoreSpec, status: DatabaseRestoreStatus, action: logic.Action
) -> DatabaseRestoreStatus | None:
    runner = jobs(ctx.memo).runner
    if action == logic.Action.PREPARE:
        return _prepare(ctx, spec, status)
    if action == logic.Action.SAFETY_BACKUP:
        return _safety_backup(ctx, status)
    if action == logic.Action.RETRY:
        new = logic.retried(status, runner=runner, **_stamp(ctx))
        ctx.warn("Interrupted", message_of(new.conditions, "Reconciling"))
        return new
    if action == logic.Action.GIVE_UP:
        message = f"interrupted {status.attempt} times; giving up (the database is unchanged)"
        ctx.warn("Interrupted", message)
        return logic.failed(status, "Interrupted", message, **_stamp(ctx))
    if action == logic.Action.RESTORE:
        return _restore(ctx, status)
    return None


def _stamp(ctx: Ctx) -> dict[str, Any]:
    return {"generation": ctx.generation, "now": now_utc()}


def _write(ctx: Ctx, old: DatabaseRestoreStatus, new: DatabaseRestoreStatus) -> None:
    write_status(ctx, old, new)


def _refuse(
    ctx: Ctx,
    status: DatabaseRestoreStatus,
    refusal: logic.Refusal,
    known: DatabaseRestoreStatus | None = None,
) -> None:
    """Blocked (or Failed when final); the event only when the reason changes.

    known: the status with what is already known (backup, target) recorded."""
    new = logic.blocked(known or status, refusal, **_stamp(ctx))
    before, after = find(status.conditions, "Ready"), find(new.conditions, "Ready")
    if (
        before is None
        or after is None
        or (before.reason, before.message)
        != (
            after.reason,
            after.message,
        )
    ):
        ctx.warn(refusal.reason, refusal.message)
    _write(ctx, status, new)


# --- prepare: which backup, allowed?, what the target looks like ------------------


def _view(obj: Obj) -> logic.BackupView:
    spec = DatabaseBackupSpec.model_validate(obj.get("spec") or {})
    status = DatabaseBackupStatus.model_validate(obj.get("status") or {})
    return logic.BackupView(
        name=obj["metadata"]["name"],
        scheduled=spec.schedule is not None,
        phase=status.phase,
        verified=is_true(status.conditions, VERIFIED),
        completed_at=status.completed_at,
        location=status.location,
        sha256=status.sha256,
        database=spec.postgres.database,
        tables=tuple(status.tables),
    )


def _get_backup(ctx: Ctx, name: str) -> Obj | None:
    try:
        return ctx.kube.get_custom(DATABASE_BACKUP.plural, ctx.namespace, name)
    except NotFound:
        return None


def _resolve(ctx: Ctx, spec: DatabaseRestoreSpec) -> tuple[logic.BackupView, Obj] | logic.Refusal:
    found = _get_backup(ctx, spec.backup)
    children: list[Obj] = []
    if found is not None and (found.get("spec") or {}).get("schedule"):
        selector = f"{SCHEDULE_LABEL}={spec.backup}"
        children = ctx.kube.list_custom(DATABASE_BACKUP.plural, ctx.namespace, selector)
    views = {c["metadata"]["name"]: c for c in children}
    chosen = logic.resolve_backup(
        spec.backup,
        _view(found) if found is not None else None,
        [_view(c) for c in children],
    )
    if isinstance(chosen, logic.Refusal):
        return chosen
    return chosen, views.get(chosen.name, found or {})


def _active_windows(ctx: Ctx) -> list[str]:
    try:
        windows = ctx.kube.list_custom(MAINTENANCE_WINDOWS, ctx.namespace)
    except NotFound:
        return []  # MaintenanceWindow is not installed: only confirm can allow a restore
    return [
        w["metadata"]["name"] for w in windows if (w.get("status") or {}).get("phase") == "Active"
    ]


def _prepare(
    ctx: Ctx, spec: DatabaseRestoreSpec, status: DatabaseRestoreStatus
) -> DatabaseRestoreStatus | None:
    resolved = _resolve(ctx, spec)
    if isinstance(resolved, logic.Refusal):
        if resolved.reason == "BackupNotReady":
            return logic.pending(status, resolved.message, **_stamp(ctx))
        _refuse(ctx, status, resolved)
        return None
    backup, backup_obj = resolved
    target = spec.target_database or backup.database
    authorization = logic.authorize(spec, target, _active_windows(ctx))
    if isinstance(authorization, logic.Refusal):
        known = status.model_copy(update={"backup": backup.name, "database": target})
        _refuse(ctx, status, authorization, known)
        return None
    backup_spec = DatabaseBackupSpec.model_validate(backup_obj.get("spec") or {})
    try:
        server = credentials(ctx.kube, ctx.namespace, backup_spec.postgres)
        existed = pg.database_exists(server, target)
    except FAILURES as exc:
        reason = str(getattr(exc, "reason", "Failed"))
        ctx.warn(reason, str(exc))
        return logic.failed(status, reason, str(exc), **_stamp(ctx))
    safety = logic.safety_backup_name(ctx.name, ctx.uid) if existed and spec.safety_backup else None
    new = logic.started(
        status,
        backup,
        target=target,
        target_existed=existed,
        authorization=authorization,
        safety_backup=safety,
        runner=jobs(ctx.memo).runner,
        **_stamp(ctx),
    )
    ctx.info("Authorized", f"restore allowed: {authorization.message}")
    what = "exists" if existed else "does not exist and will be created"
    ctx.info("Started", f"restoring {backup.name} into {target} (the database {what})")
    return new


# --- safety backup ---------------------------------------------------------------


def _safety_backup(ctx: Ctx, status: DatabaseRestoreStatus) -> DatabaseRestoreStatus | None:
    assert status.safety_backup is not None and status.database is not None
    name = status.safety_backup
    obj = _get_backup(ctx, name)
    if obj is None:
        source = _get_backup(ctx, status.backup or "")
        if source is None:
            message = f"DatabaseBackup {status.backup} was deleted before the restore started"
            ctx.warn("BackupNotFound", message)
            return logic.failed(status, "BackupNotFound", message, **_stamp(ctx))
        postgres = DatabaseBackupSpec.model_validate(source["spec"]).postgres
        body = logic.safety_backup_object(name, ctx.name, postgres, status.database)
        try:
            ctx.kube.create_custom(DATABASE_BACKUP.plural, ctx.namespace, body)
        except Conflict:
            pass  # created by an earlier pass
        except KubeError as exc:
            raise kopf.TemporaryError(
                f"cannot create DatabaseBackup {name}: {exc}", delay=10
            ) from exc
        ctx.info("SafetyBackup", f"backing up {status.database} as {name} before restoring")
        return logic.safety_backup_waiting(status, "Pending", **_stamp(ctx))
    backup = DatabaseBackupStatus.model_validate(obj.get("status") or {})
    if backup.phase == "Completed":
        ctx.info("SafetyBackupCompleted", f"{name} holds {status.database} as it was")
        return logic.restoring(status, runner=jobs(ctx.memo).runner, **_stamp(ctx))
    if backup.phase == "Failed":
        why = message_of(backup.conditions, "Ready")
        message = (
            f"the safety backup {name} failed ({why}); nothing was restored. Fix the cause and "
            "create the restore again, or create it with safetyBackup: false"
        )
        ctx.warn("SafetyBackupFailed", message)
        return logic.failed(status, "SafetyBackupFailed", message, **_stamp(ctx))
    new = logic.safety_backup_waiting(status, backup.phase, **_stamp(ctx))
    return new if new.conditions != status.conditions else None


# --- restore ---------------------------------------------------------------------


def _restore(ctx: Ctx, status: DatabaseRestoreStatus) -> DatabaseRestoreStatus | None:
    assert ctx.stopped is not None
    assert status.location is not None and status.database is not None
    jobs(ctx.memo).mark(ctx.uid, status.attempt, status.step)
    source = _get_backup(ctx, status.backup or "")
    if source is None:
        message = f"DatabaseBackup {status.backup} was deleted; its connection is unknown"
        ctx.warn("BackupNotFound", message)
        return logic.failed(status, "BackupNotFound", message, **_stamp(ctx))
    postgres = DatabaseBackupSpec.model_validate(source["spec"]).postgres
    store = ctx.store
    quiet(ctx.logger, "restoring %s into %s", status.location, status.database)
    try:
        server = credentials(ctx.kube, ctx.namespace, postgres).on(status.database)
        stored = store.checksum(status.location)
        if stored.sha256 != status.sha256:
            raise ChecksumMismatch(
                f"{status.location} has sha256 {stored.sha256}, but the backup recorded "
                f"{status.sha256}: the artifact changed; nothing was restored"
            )
        if pg.create_database(server, status.database):
            ctx.info("DatabaseCreated", f"created database {status.database}")
        pg.restore(server, store.read(status.location), ctx.stopped, clean=True)
        tables = [(t.schema_, t.name) for t in status.tables]
        counts = pg.count_rows(server, tables)
    except pg.Cancelled:
        quiet(ctx.logger, "pg_restore stopped; its transaction was rolled back")
        return None
    except (*FAILURES, ChecksumMismatch) as exc:
        reason = str(getattr(exc, "reason", "Failed"))
        ctx.warn(reason, f"{exc}")
        return logic.failed(status, reason, str(exc), **_stamp(ctx))
    new = logic.checked(status, counts, **_stamp(ctx))
    if new.phase == RestorePhase.COMPLETED:
        ctx.info("Restored", message_of(new.conditions, "Ready"))
    else:
        ctx.warn("RowCountMismatch", message_of(new.conditions, "Ready"))
    return new


class ChecksumMismatch(Exception):
    reason = "ChecksumMismatch"


# --- deletion ----------------------------------------------------------------------


@kopf.on.delete(*RESOURCE, id="databaserestore-delete")
def on_delete(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Wait until a running pg_restore has stopped (its transaction rolled back)."""
    ctx = Ctx(body, memo, logger, kopf.Patch(), stopped=None)
    lock = object_lock(memo, ctx.uid)
    if not lock.acquire(timeout=DELETE_WAIT_SECONDS):
        raise kopf.TemporaryError("waiting for the running pg_restore to stop", delay=5)
    try:
        status = DatabaseRestoreStatus.model_validate(body.get("status") or {})
        if status.phase == RestorePhase.RUNNING and status.step == RestoreStep.RESTORING:
            state = (
                "is as it was before"
                if status.target_existed
                else "was created by this restore and is left in place, empty"
            )
            ctx.info(
                "Cancelled",
                f"restore stopped, its transaction rolled back: database {status.database} {state}",
            )
    finally:
        lock.release()
