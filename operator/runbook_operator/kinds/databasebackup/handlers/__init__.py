"""DatabaseBackup on the operation core: one-shot passes, schedule passes, the finalizer.

The kind runs in the DATABASE pool (its own bounded threads), so a long pg_dump never
takes a thread other kinds' passes need. A one-shot backup's pass is handlers.oneshot
(claim, dump, verify, record, all in one pass); a schedule's is handlers.schedule. A
finished one-shot backup costs nothing: its pass writes nothing and asks for no wake-up.

The finalizer works from status (logic.deletion): the partial files of an interrupted
dump, the scratch database of an interrupted verification, then the artifact as the
recorded deletion policy says. A schedule's children go with it (owner references).
"""

from __future__ import annotations

from datetime import datetime

from ....adapters.storage import BackupStore, FileStore, StorageError
from ....core import database, objectstores
from ....core.conditions import StatusBase
from ....core.context import Pass
from ....core.kind import DATABASE, Kind, Result
from ....core.postgres import PostgresRef
from ....core.spec import InvalidSpec
from .. import logic
from ..api import DATABASE_BACKUP, DatabaseBackupSpec, DatabaseBackupStatus
from ..logic import retention
from ..logic.schedule import InvalidSchedule
from . import safety, schedule
from .oneshot import OneShot, Store, now_of

__all__ = ["DatabaseBackupKind"]


class DatabaseBackupKind(Kind):
    resource = DATABASE_BACKUP
    pool = DATABASE

    def __init__(
        self, postgres: database.Postgres = database.POSTGRES, store: Store = FileStore
    ) -> None:
        self.postgres = postgres
        self.store = store
        self.oneshot = OneShot(postgres, store)

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(DatabaseBackupSpec)
        if spec.schedule is None:
            result = self.oneshot.run(ctx, spec)
            if safety.is_safety_backup(ctx):
                return safety.prune(ctx) or result
            return result
        problem = retention.max_age_problem(spec, now_of(ctx))
        if problem is not None:
            raise InvalidSpec(f"spec.keep.maxAge: {problem}")
        try:
            return schedule.run(ctx, spec)
        except InvalidSchedule as exc:
            raise InvalidSpec(f"spec.schedule: {exc}") from None

    def invalid(self, ctx: Pass, status: StatusBase, message: str) -> StatusBase:
        """Failed with reason InvalidSpec, as a backup always said; a finished one-shot
        backup stays as it is (what it recorded is still true)."""
        assert isinstance(status, DatabaseBackupStatus)
        if status.is_done():
            return status
        text = f"The spec cannot be used: {message}"
        new = logic.failed(status, "InvalidSpec", text, generation=ctx.generation, now=now_of(ctx))
        if status.scheduled is None:
            new = new.model_copy(
                update={"scheduled": bool((ctx.obj.get("spec") or {}).get("schedule"))}
            )
        return new

    def finalize(self, ctx: Pass) -> Result | None:
        status: DatabaseBackupStatus = ctx.status()
        try:
            spec: DatabaseBackupSpec | None = ctx.spec(DatabaseBackupSpec)
        except InvalidSpec:
            spec = None  # what deletion needs is in status
        plan = logic.cleanup(status, spec, ctx.uid)
        self.oneshot.attempts.forget(ctx.uid)
        if plan.scheduled:
            ctx.recorder.log("schedule deleted; its children go with it (owner references)")
            return None
        store: BackupStore | None = None
        try:
            store = self._store(ctx, spec, status)
            store.discard_partials(ctx.namespace, ctx.name)
        except (StorageError, database.CredentialsError) as exc:
            ctx.recorder.warn("CleanupIncomplete", f"{exc}; remove the partial files by hand")
        if plan.scratch is not None:
            self._drop_scratch(ctx, *plan.scratch)
        if store is not None:
            self._artifacts(ctx, store, plan, status.retain_until)
        return None

    def _store(
        self, ctx: Pass, spec: DatabaseBackupSpec | None, status: DatabaseBackupStatus
    ) -> BackupStore:
        """The volume, or the bucket of the backup's destination (spec.destination, else the
        one it recorded when it started; a one-shot spec never changes)."""
        where = logic.destination_of(spec, status)
        if not (where and where.s3):
            return self.store(ctx.settings.backup_root)
        return objectstores.s3_store(
            ctx.kube, ctx.meta, where.s3, recorded_key_id=status.encryption_key_id, writing=False
        )

    def _drop_scratch(self, ctx: Pass, ref: PostgresRef, scratch: str) -> None:
        try:
            server = database.server(ctx.kube, ctx.namespace, ref)
        except database.CredentialsError as exc:
            ctx.recorder.warn(
                "ScratchDatabaseLeft", f"could not drop scratch database {scratch}: {exc}"
            )
            return
        self.oneshot.drop_quietly(ctx, server, scratch)

    def _artifacts(
        self, ctx: Pass, store: BackupStore, plan: logic.Cleanup, locked: datetime | None
    ) -> None:
        """The recorded artifact (and one stored but not yet recorded) as the policy says;
        one under an Object Lock retention is left to the bucket, which deletes nothing
        before its date (a request would only be refused)."""
        artifacts = [plan.location] if plan.location else []
        if plan.unrecorded is not None:
            artifacts.append(store.location(ctx.namespace, ctx.name, plan.unrecorded))
        for location in dict.fromkeys(artifacts):
            if plan.deletes and locked is not None and now_of(ctx) < locked:
                ctx.recorder.warn(
                    "ArtifactLocked",
                    f"kept {location}: Object Lock retains it until {locked.isoformat()}; "
                    "the bucket refuses to delete it earlier (a lifecycle rule can expire it "
                    "after that date)",
                )
            elif plan.deletes:
                self._delete(ctx, store, location)
            elif location == plan.location:
                why = "deletionPolicy Retain" if plan.policy else "its deletion policy is unknown"
                ctx.recorder.info("ArtifactRetained", f"kept {location} ({why})")

    @staticmethod
    def _delete(ctx: Pass, store: BackupStore, location: str) -> None:
        try:
            if store.delete(location):
                ctx.recorder.info("ArtifactDeleted", f"deleted {location}")
        except StorageError as exc:
            ctx.recorder.warn("CleanupIncomplete", f"{exc}; remove {location} by hand if needed")
