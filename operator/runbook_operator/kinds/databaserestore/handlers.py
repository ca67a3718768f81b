"""DatabaseRestore on the operation core: prepare, safety backup, restore, in one pass.

The kind runs in the DATABASE pool, so a long pg_restore never takes a thread other
kinds need. A pass carries the restore as far as it can: what it will use is recorded
before anything changes (the backup, its artifact and checksum, the target, its server,
the safety backup's name), the restore is claimed (attempt, attemptBy) before
pg_restore starts, and its result is recorded when it ends. What it waits for (its
backup, a MaintenanceWindow becoming Active, the safety backup) is watched: a change of
those wakes it, nothing polls. The restore runs in one transaction, so an interrupted
attempt leaves the database as it was and is run again; one whose status write was
lost is recorded, never run twice (core.attempts). `ctx.stopped` kills pg_restore when
the restore is deleted or the operator stops. Deleting a restore never drops a database.

Failpoints (crash tests): `databaserestore-restoring` right after the claim is written,
`databaserestore-restored` after pg_restore committed, before it is recorded.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Any

from ...adapters import postgres as pg
from ...adapters.kube import Conflict, NotFound
from ...adapters.storage import FileStore
from ...apigroup import GROUP
from ...core import database, failpoints, objectstores
from ...core.attempts import Attempts, Key
from ...core.conditions import StatusBase
from ...core.context import Pass
from ...core.database import Failure, Store
from ...core.identity import RequestedBy
from ...core.kind import DATABASE, Kind, Result
from ...core.names import SCHEDULE_LABEL
from ...core.postgres import PostgresRef, Table
from . import logic
from .api import (
    DATABASE_RESTORE,
    DatabaseRestoreSpec,
    DatabaseRestoreStatus,
    RestorePhase,
    RestoreStep,
)

__all__ = ["DatabaseRestoreKind"]

Obj = dict[str, Any]
MAX_STEPS = 8
"""Steps one pass may take: prepare, safety backup, restore, a retry or two."""


Outcome = dict[Table, int | None] | Failure
"""How a pg_restore ended: the row counts after it, or why it failed."""


class ChecksumMismatch(Exception):
    reason = "ChecksumMismatch"


def now_of(ctx: Pass) -> datetime:
    """Whole seconds, as status has always recorded them."""
    return ctx.tick().replace(microsecond=0)


class DatabaseRestoreKind(Kind):
    resource = DATABASE_RESTORE
    pool = DATABASE

    def __init__(
        self, postgres: database.Postgres = database.POSTGRES, store: Store = FileStore
    ) -> None:
        self.postgres = postgres
        self.store = store
        self.attempts: Attempts[Outcome] = Attempts()

    # --- reconcile --------------------------------------------------------------

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(DatabaseRestoreSpec)
        for _ in range(MAX_STEPS):
            status: DatabaseRestoreStatus = ctx.status()
            if status.is_done():
                self.attempts.forget(ctx.uid)
                break
            key: Key = (ctx.uid, status.attempt, status.step)
            known = self.attempts.outcome(key)
            if known is not None and status.attempt_by == ctx.instance:
                self._record(ctx, status, key, known)  # its write was lost
                continue
            action = logic.next_action(
                status, instance=ctx.instance, tried=self.attempts.tried(key)
            )
            if action == logic.Action.RESTORE:
                outcome = self._restore(ctx, status, key)
                if outcome is None:
                    break  # stopped: deleted, or the operator is stopping
                self._record(ctx, status, key, outcome)
            elif not self._step(ctx, spec, status, action):
                break
        return Result(watch=logic.watching(spec, ctx.status()))

    def _step(
        self,
        ctx: Pass,
        spec: DatabaseRestoreSpec,
        status: DatabaseRestoreStatus,
        action: logic.Action,
    ) -> bool:
        """One quick step; whether the next may follow in this pass."""
        now, generation = now_of(ctx), ctx.generation
        if action == logic.Action.PREPARE:
            return self._prepare(ctx, spec, status)
        if action == logic.Action.SAFETY_BACKUP:
            return self._safety_backup(ctx, status)
        if action == logic.Action.RETRY:
            new = logic.retried(status, instance=ctx.instance, generation=generation, now=now)
            ctx.write(new)
            failpoints.hit("databaserestore-restoring")
            ctx.recorder.warn("Interrupted", new.message("Reconciling"))
            return True
        if action == logic.Action.GIVE_UP:
            message = f"interrupted {status.attempt} times; giving up (the database is unchanged)"
            ctx.write(logic.failed(status, "Interrupted", message, generation=generation, now=now))
            ctx.recorder.warn("Interrupted", message)
        return False

    def _fail(self, ctx: Pass, status: DatabaseRestoreStatus, reason: str, message: str) -> None:
        new = logic.failed(status, reason, message, generation=ctx.generation, now=now_of(ctx))
        ctx.write(new)
        ctx.recorder.warn(reason, message)

    def _refuse(
        self,
        ctx: Pass,
        status: DatabaseRestoreStatus,
        refusal: logic.Refusal,
        known: DatabaseRestoreStatus | None = None,
    ) -> None:
        """Blocked (or Failed when final); the event only when the reason or message changes.

        known: the status with what is already known (backup, target) recorded."""
        now = now_of(ctx)
        new = logic.blocked(known or status, refusal, generation=ctx.generation, now=now)
        before, after = status.condition("Ready"), new.condition("Ready")
        ctx.write(new)
        if (
            before is None
            or after is None
            or (before.reason, before.message)
            != (
                after.reason,
                after.message,
            )
        ):
            ctx.recorder.warn(refusal.reason, refusal.message)

    # --- prepare: which backup, allowed?, what the target looks like --------------

    def _get(self, ctx: Pass, name: str) -> Obj | None:
        try:
            return ctx.kube.get_custom(logic.BACKUPS, ctx.namespace, name)
        except NotFound:
            return None

    def _resolve(self, ctx: Pass, spec: DatabaseRestoreSpec) -> logic.BackupView | logic.Refusal:
        found = self._get(ctx, spec.backup)
        view = logic.backup_view(found) if found is not None else None
        children: list[Obj] = []
        if view is not None and view.scheduled:
            selector = f"{SCHEDULE_LABEL}={spec.backup}"
            children = ctx.kube.list_custom(logic.BACKUPS, ctx.namespace, selector)
        return logic.resolve_backup(spec.backup, view, [logic.backup_view(c) for c in children])

    def _active_windows(self, ctx: Pass) -> list[str]:
        try:
            return logic.active_windows(ctx.kube.list_custom(logic.WINDOWS, ctx.namespace))
        except NotFound:
            return []  # MaintenanceWindow is not installed: only confirm can allow a restore

    def _prepare(self, ctx: Pass, spec: DatabaseRestoreSpec, status: DatabaseRestoreStatus) -> bool:
        backup = self._resolve(ctx, spec)
        if isinstance(backup, logic.Refusal):
            if backup.reason == "BackupNotReady":
                now = now_of(ctx)
                ctx.write(logic.pending(status, backup.message, generation=ctx.generation, now=now))
            else:
                self._refuse(ctx, status, backup)
            return False
        assert backup.postgres is not None
        target = backup.postgres.on(spec.target_database or backup.postgres.database)
        authorization = logic.authorize(spec, target.database, self._active_windows(ctx))
        if isinstance(authorization, logic.Refusal):
            known = status.model_copy(update={"backup": backup.name, "database": target.database})
            self._refuse(ctx, status, authorization, known)
            return False
        try:
            server = database.server(ctx.kube, ctx.namespace, backup.postgres)
            existed = self.postgres.database_exists(server, target.database)
        except database.FAILURES as exc:
            self._fail(ctx, status, database.reason_of(exc), str(exc))
            return False
        safety = (
            logic.safety_backup_name(ctx.name, ctx.uid) if existed and spec.safety_backup else None
        )
        new = logic.started(
            status,
            backup,
            target=target,
            target_existed=existed,
            authorization=authorization,
            safety_backup=safety,
            instance=ctx.instance,
            generation=ctx.generation,
            now=now_of(ctx),
        )
        ctx.write(new)
        if new.step == RestoreStep.RESTORING:
            failpoints.hit("databaserestore-restoring")
        ctx.recorder.info("Authorized", f"restore allowed: {authorization.message}")
        what = "exists" if existed else "does not exist and will be created"
        ctx.recorder.info(
            "Started", f"restoring {backup.name} into {target.database} (the database {what})"
        )
        return True

    def _target(self, ctx: Pass, status: DatabaseRestoreStatus, source: Obj) -> PostgresRef | None:
        """The target's server: as recorded, or (a restore an older operator started) the
        source backup's spec.postgres with the target database."""
        if status.connection is not None:
            return status.connection
        postgres = logic.backup_view(source).postgres
        return postgres.on(status.database or postgres.database) if postgres else None

    # --- safety backup --------------------------------------------------------------

    def _safety_backup(self, ctx: Pass, status: DatabaseRestoreStatus) -> bool:
        assert status.safety_backup is not None and status.database is not None
        name, now = status.safety_backup, now_of(ctx)
        obj = self._get(ctx, name)
        if obj is None:
            source = self._get(ctx, status.backup or "")
            target = self._target(ctx, status, source) if source is not None else None
            if target is None:
                message = f"DatabaseBackup {status.backup} was deleted before the restore started"
                self._fail(ctx, status, "BackupNotFound", message)
                return False
            body = logic.safety_backup_object(name, ctx.name, target)
            with suppress(Conflict):  # created by an earlier pass
                ctx.kube.create_custom(logic.BACKUPS, ctx.namespace, body)
            ctx.recorder.info(
                "SafetyBackup", f"backing up {status.database} as {name} before restoring"
            )
            waiting = logic.safety_backup_waiting(
                status, "Pending", generation=ctx.generation, now=now
            )
            ctx.write(waiting)
            return False
        phase, why = logic.safety_backup_phase(obj)
        if phase == "Completed":
            new = logic.restoring(status, instance=ctx.instance, generation=ctx.generation, now=now)
            ctx.write(new)
            failpoints.hit("databaserestore-restoring")
            ctx.recorder.info("SafetyBackupCompleted", f"{name} holds {status.database} as it was")
            return True
        if phase == "Failed":
            message = (
                f"the safety backup {name} failed ({why}); nothing was restored. Fix the cause "
                "and create the restore again, or create it with safetyBackup: false"
            )
            self._fail(ctx, status, "SafetyBackupFailed", message)
            return False
        ctx.write(logic.safety_backup_waiting(status, phase, generation=ctx.generation, now=now))
        return False

    # --- restore --------------------------------------------------------------------

    def _restore(self, ctx: Pass, status: DatabaseRestoreStatus, key: Key) -> Outcome | None:
        assert status.location is not None and status.database is not None
        source = self._get(ctx, status.backup or "")
        target = self._target(ctx, status, source) if source is not None else None
        if source is None or target is None:
            message = f"DatabaseBackup {status.backup} was deleted; nothing was restored"
            return Failure("BackupNotFound", message)
        ctx.recorder.log(f"restoring {status.location} into {status.database}")
        outcome: Outcome
        try:
            # the backup's own bucket and key (from the backup object), or the volume
            store = objectstores.s3_store_of(ctx.kube, source) or self.store(
                ctx.settings.backup_root
            )
            server = database.server(ctx.kube, ctx.namespace, target)
            stored = store.checksum(status.location)
            if stored.sha256 != status.sha256:
                raise ChecksumMismatch(
                    f"{status.location} has sha256 {stored.sha256}, but the backup recorded "
                    f"{status.sha256}: the artifact changed; nothing was restored"
                )
            refusal = self._still_allowed(ctx, status)
            if refusal is not None:
                return refusal
            self.attempts.begin(key)
            if self.postgres.create_database(server, status.database):
                ctx.recorder.info("DatabaseCreated", f"created database {status.database}")
            limit = database.deadline(target, ctx.stopped)
            self.postgres.restore(server, store.read(status.location), limit, clean=True)
            outcome = self.postgres.count_rows(server, [(t.schema_, t.name) for t in status.tables])
        except pg.Cancelled:
            ctx.recorder.log("pg_restore stopped; its transaction was rolled back")
            return None
        except (*database.FAILURES, ChecksumMismatch) as exc:
            outcome = Failure(database.reason_of(exc), str(exc))
        else:
            failpoints.hit("databaserestore-restored")
        self.attempts.finished(key, outcome)
        return outcome

    def _still_allowed(self, ctx: Pass, status: DatabaseRestoreStatus) -> Failure | None:
        """Right before anything is overwritten: may the requester (status.requestedBy, as
        admission stamped them) still restore this backup? Admission checked it when the
        restore was created; a permission taken away since then stops it here."""
        who = RequestedBy.model_validate(
            ctx.obj.get("status", {}).get("requestedBy") or {"user": ""}
        )
        if not who.user:
            return None  # nothing was stamped (admission policies not installed)
        backup = status.backup or ""
        if ctx.kube.allowed(
            who.user, who.groups, "restore", GROUP, logic.BACKUPS, ctx.namespace, backup
        ):
            return None
        return Failure(
            "NotAuthorized",
            f"{who.user} may no longer restore DatabaseBackup {backup} (verb restore on "
            "databasebackups was taken away after the restore was created); nothing was "
            "overwritten",
        )

    def _record(self, ctx: Pass, status: DatabaseRestoreStatus, key: Key, outcome: Outcome) -> None:
        now, generation = now_of(ctx), ctx.generation
        if isinstance(outcome, Failure):
            new = logic.failed(
                status, outcome.reason, outcome.message, generation=generation, now=now
            )
        else:
            new = logic.checked(status, outcome, generation=generation, now=now)
        ctx.write(new)
        self.attempts.recorded(key)
        if isinstance(outcome, Failure):
            ctx.recorder.warn(outcome.reason, outcome.message)
        elif new.phase == RestorePhase.COMPLETED:
            ctx.recorder.info("Restored", new.message())
        else:
            ctx.recorder.warn("RowCountMismatch", new.message())

    # --- invalid, finalize ------------------------------------------------------------

    def invalid(self, ctx: Pass, status: StatusBase, message: str) -> StatusBase:
        """Failed with reason InvalidSpec, as a restore always said; a finished restore
        stays as it is."""
        assert isinstance(status, DatabaseRestoreStatus)
        if status.is_done():
            return status
        text = f"The spec cannot be used: {message}"
        return logic.failed(status, "InvalidSpec", text, generation=ctx.generation, now=now_of(ctx))

    def finalize(self, ctx: Pass) -> Result | None:
        """Nothing to undo (the pass that ran pg_restore was stopped first): say where the
        database stands."""
        status: DatabaseRestoreStatus = ctx.status()
        key: Key = (ctx.uid, status.attempt, status.step)
        unrecorded = self.attempts.outcome(key)
        self.attempts.forget(ctx.uid)
        if status.phase != RestorePhase.RUNNING or status.step != RestoreStep.RESTORING:
            return None
        if unrecorded is not None and not isinstance(unrecorded, Failure):
            ctx.recorder.info(
                "Cancelled",
                f"deleted after the restore finished: database {status.database} holds "
                f"{status.backup} (its row counts were not compared)",
            )
            return None
        state = (
            "is as it was before"
            if status.target_existed
            else "was created by this restore and is left in place, empty"
        )
        ctx.recorder.info(
            "Cancelled",
            f"restore stopped, its transaction rolled back: database {status.database} {state}",
        )
        return None
