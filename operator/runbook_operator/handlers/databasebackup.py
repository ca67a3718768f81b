"""DatabaseBackup handlers: observe -> logic -> one step -> status.

Change handlers (create/update/resume) take only quick steps; the timer takes
the long ones (pg_dump, verification), so one object's long step never runs
twice at once and its result is written before the timer's next pass. A long
step is decided on a freshly read status, and Kopf's `stopped` flag (object
deleted, operator stopping) kills the running pg_dump/pg_restore; the step is
then retried by whichever operator process comes next (logic.databasebackup).

A scheduled DatabaseBackup's pass is in databasebackup_schedule; the finalizer
of a one-shot backup removes its artifact (deletionPolicy Delete).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import kopf
from pydantic import ValidationError

from ..adapters import postgres as pg
from ..adapters.metrics import observe
from ..api.databasebackup import (
    DATABASE_BACKUP,
    BackupPhase,
    BackupStep,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
    DeletionPolicy,
    Verification,
    VerifyMethod,
)
from ..conditions import find
from ..logic import backupschedule as sched
from ..logic import databasebackup as logic
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
from .databasebackup_schedule import run_schedule
from .lifecycle import object_lock

__all__ = ["on_change", "on_delete", "on_tick", "reconcile", "scratch_database"]

RESOURCE = (DATABASE_BACKUP.group, DATABASE_BACKUP.version, DATABASE_BACKUP.plural)
KIND = DATABASE_BACKUP.kind


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
                try:
                    run_schedule(ctx, spec, status)
                except sched.InvalidSchedule as exc:
                    _invalid(ctx, status, str(exc))
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
