"""A one-shot DatabaseBackup's pass: claim, dump, verify, record; all in one pass.

Each step is written to status before the next begins, and the long ones are claimed
first (attempt, attemptBy = this process), so a process that finds an unfinished
attempt of another knows it was interrupted (core.attempts). pg_dump and pg_restore get
`ctx.stopped`, which the core sets when the object is deleted or the operator stops:
they are killed at once and the pass ends without writing (the finalizer, or the next
process, takes it from there). An outcome whose status write was lost (a Conflict) is
recorded on the next pass instead of dumping again.

Failpoints (crash tests): `databasebackup-dumping` right after the claim is written,
`databasebackup-dumped` after the artifact is stored but before it is recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime

from ....adapters import postgres as pg
from ....adapters import volumeusage
from ....adapters.storage import BackupStore
from ....core import database, failpoints, objectstores, quota
from ....core.attempts import Attempts, Key
from ....core.context import Pass
from ....core.database import Failure, Store
from ....core.destination import choose, key_id, retain_until
from ....core.events import NORMAL, WARNING, Event
from ....core.kind import Result
from .. import logic
from ..api import BackupStep, DatabaseBackupSpec, DatabaseBackupStatus, Verification, VerifyMethod

__all__ = ["Failure", "OneShot", "Outcome", "Store"]

MAX_STEPS = 8
"""Steps one pass may take: start, dump, verify, and a retry or two."""


Outcome = logic.Dumped | Verification | Failure


class VerificationFailed(Exception):
    reason = "VerificationFailed"


def now_of(ctx: Pass) -> datetime:
    """Whole seconds, as status has always recorded them."""
    return ctx.tick().replace(microsecond=0)


class OneShot:
    def __init__(self, postgres: database.Postgres, store: Store) -> None:
        self.postgres = postgres
        self.store = store
        self.attempts: Attempts[Outcome] = Attempts()

    def run(self, ctx: Pass, spec: DatabaseBackupSpec) -> Result:
        for _ in range(MAX_STEPS):
            status: DatabaseBackupStatus = ctx.status()
            base = logic.recorded(status, spec)
            if status.is_done():
                ctx.write(base)  # an older operator's object: record what deletion needs
                self.attempts.forget(ctx.uid)
                break
            key: Key = (ctx.uid, status.attempt, status.step)
            known = self.attempts.outcome(key)
            if known is not None and status.attempt_by == ctx.instance:
                self._record(ctx, spec, base, key, known)  # its write was lost
                continue
            tried = self.attempts.tried(key)
            action = logic.next_action(status, instance=ctx.instance, tried=tried)
            if action in (logic.Action.DUMP, logic.Action.VERIFY):
                outcome = (self._dump if action == logic.Action.DUMP else self._verify)(
                    ctx, spec, base, key
                )
                if outcome is None:
                    break  # stopped: deleted, or the operator is stopping
                self._record(ctx, spec, base, key, outcome)
            else:
                self._step(ctx, spec, base, action)
        return Result()

    def _step(
        self,
        ctx: Pass,
        spec: DatabaseBackupSpec,
        status: DatabaseBackupStatus,
        action: logic.Action,
    ) -> None:
        now, generation = now_of(ctx), ctx.generation
        if action == logic.Action.START:
            chosen = choose(
                spec.destination, objectstores.default_destination(ctx.kube, ctx.namespace)
            )
            ctx.write(
                logic.started(
                    status,
                    instance=ctx.instance,
                    generation=generation,
                    now=now,
                    destination=chosen,
                )
            )
            failpoints.hit("databasebackup-dumping")
            ctx.recorder.info("Started", f"backing up {spec.postgres.where} with pg_dump")
        elif action == logic.Action.RETRY:
            new = logic.retried(status, instance=ctx.instance, generation=generation, now=now)
            ctx.write(new)
            failpoints.hit(f"databasebackup-{(new.step or BackupStep.DUMPING).lower()}")
            ctx.recorder.warn("Interrupted", new.message("Reconciling"))
        elif action == logic.Action.GIVE_UP:
            message = f"interrupted {status.attempt} times; giving up"
            ctx.write(logic.failed(status, "Interrupted", message, generation=generation, now=now))
            ctx.recorder.warn("Interrupted", message)
            self.store(ctx.settings.backup_root).discard_partials(ctx.namespace, ctx.name)

    def _record(
        self,
        ctx: Pass,
        spec: DatabaseBackupSpec,
        status: DatabaseBackupStatus,
        key: Key,
        outcome: Outcome,
    ) -> None:
        """Write the outcome of a long step, then tell."""
        now, generation = now_of(ctx), ctx.generation
        events: list[Event] = []
        if isinstance(outcome, Failure):
            new = logic.failed(
                status,
                outcome.reason,
                outcome.message,
                generation=generation,
                now=now,
                verification_failed=outcome.verification,
            )
            events.append(Event(WARNING, outcome.reason, outcome.message))
        elif isinstance(outcome, logic.Dumped):
            scratch = logic.scratch_database(ctx.uid)
            new = logic.dumped(
                status, outcome, spec.verify, scratch=scratch, generation=generation, now=now
            )
            rows = sum(outcome.tables.values())
            events.append(
                Event(
                    NORMAL,
                    "Dumped",
                    f"{len(outcome.tables)} tables, {rows} rows, "
                    f"{logic.human_size(outcome.size)} (sha256 {outcome.sha256[:12]}…) "
                    f"written to {outcome.location}",
                )
            )
            where = logic.destination_of(spec, status)
            if where and where.s3:
                new = new.model_copy(
                    update={
                        "encryption_key_id": key_id(where.s3.encryption),
                        "retain_until": retain_until(where.s3, status.started_at),
                    }
                )
        else:
            new = logic.verified(status, outcome, generation=generation, now=now)
            events.append(Event(NORMAL, "Verified", new.message(logic.VERIFIED)))
        if new.is_done() and new.is_ready():
            events.append(Event(NORMAL, "Completed", new.message()))
        ctx.write(new)
        self.attempts.recorded(key)
        ctx.recorder.events(events)

    def store_for(
        self,
        ctx: Pass,
        spec: DatabaseBackupSpec,
        status: DatabaseBackupStatus,
        *,
        writing: bool = False,
    ) -> BackupStore:
        """The volume, or this backup's own object in the bucket its destination names
        (logic.destination_of; the key from the object's namespace, schedule and uid, never
        from status)."""
        where = logic.destination_of(spec, status)
        s3 = where.s3 if where else None
        if s3 is None:
            return self.store(ctx.settings.backup_root)
        return objectstores.s3_store(
            ctx.kube,
            ctx.meta,
            s3,
            recorded_key_id=status.encryption_key_id,
            writing=writing,
            started_at=status.started_at,
        )

    @staticmethod
    def _within_quota(ctx: Pass) -> None:
        """The namespace's share of the shared volume, checked before pg_dump starts."""
        limits = quota.Quota(ctx.settings.volume_quota_bytes, ctx.settings.volume_quota_count)
        if not (limits.bytes or limits.artifacts):
            return
        used = quota.Usage(*volumeusage.usage(ctx.settings.backup_root, ctx.namespace))
        why = quota.refusal(ctx.namespace, used, limits)
        if why is not None:
            raise volumeusage.QuotaExceeded(why)

    # --- the long steps ---------------------------------------------------------

    def _dump(
        self, ctx: Pass, spec: DatabaseBackupSpec, status: DatabaseBackupStatus, key: Key
    ) -> Outcome | None:
        assert status.started_at is not None
        ctx.recorder.log(f"dumping (attempt {status.attempt})")
        outcome: Outcome
        try:
            store = self.store_for(ctx, spec, status, writing=True)
            where = logic.destination_of(spec, status)
            if not (where and where.s3):
                self._within_quota(ctx)
            server = database.server(ctx.kube, ctx.namespace, spec.postgres)
            store.discard_partials(ctx.namespace, ctx.name)
            stamp = logic.stamp(status.started_at)
            upload = store.begin(ctx.namespace, ctx.name, stamp, owner=ctx.instance)
            self.attempts.begin(key)
            try:
                limit = database.deadline(spec.postgres, ctx.stopped)
                info = self.postgres.dump(server, upload.write, limit)
                if ctx.fenced():  # deposed while dumping: the new leader's attempt counts
                    raise pg.Cancelled("not the leader any more")
                stored = upload.commit()
            except BaseException:
                upload.abort()
                raise
        except pg.Cancelled:
            ctx.recorder.log("pg_dump stopped (object deleted or operator stopping)")
            return None
        except database.FAILURES as exc:
            outcome = Failure(database.reason_of(exc), str(exc))
        else:
            failpoints.hit("databasebackup-dumped")
            outcome = logic.Dumped(
                location=stored.location,
                size=stored.size,
                sha256=stored.sha256,
                server_version=info.server_version,
                pg_dump_version=info.pg_dump_version,
                tables=info.tables,
            )
        self.attempts.finished(key, outcome)
        return outcome

    def _verify(
        self, ctx: Pass, spec: DatabaseBackupSpec, status: DatabaseBackupStatus, key: Key
    ) -> Outcome | None:
        ctx.recorder.log(f"verifying {status.location} ({spec.verify.value})")
        self.attempts.begin(key)
        outcome: Outcome
        try:
            outcome = self._prove(ctx, spec, status)
        except pg.Cancelled:
            ctx.recorder.log("verification stopped (object deleted or operator stopping)")
            return None
        except (*database.FAILURES, VerificationFailed) as exc:
            outcome = Failure(database.reason_of(exc), str(exc), verification=True)
        self.attempts.finished(key, outcome)
        return outcome

    def _prove(
        self, ctx: Pass, spec: DatabaseBackupSpec, status: DatabaseBackupStatus
    ) -> Verification:
        """Readable: sha256 + pg_restore --list in one read. Restore: then a scratch restore."""
        assert status.location is not None
        store, location = self.store_for(ctx, spec, status), status.location
        digest = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for chunk in store.read(location):
                digest.update(chunk)
                yield chunk

        limit = database.deadline(spec.postgres, ctx.stopped)  # for the whole verification
        entries = self.postgres.list_archive(hashed(), limit)
        if digest.hexdigest() != status.sha256:
            raise VerificationFailed(
                f"the artifact's sha256 is {digest.hexdigest()}, but {status.sha256} was written: "
                "it changed on the volume"
            )
        if spec.verify != VerifyMethod.RESTORE:
            return Verification(method=spec.verify, toc_entries=entries)
        server = database.server(ctx.kube, ctx.namespace, spec.postgres)
        planned = status.verification.scratch_database if status.verification else None
        scratch = planned or logic.scratch_database(ctx.uid)
        self.postgres.drop_database(server, scratch)  # left over by an interrupted attempt
        self.postgres.create_database(server, scratch)
        try:
            self.postgres.restore(
                server.on(scratch),
                store.read(location),
                limit,
                clean=False,
                keep_owners=False,
            )
            tables = [t.table for t in status.tables]
            counts = self.postgres.count_rows(server.on(scratch), tables)
        finally:
            self.drop_quietly(ctx, server, scratch)
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

    def drop_quietly(self, ctx: Pass, server: pg.Server, name: str) -> None:
        try:
            self.postgres.drop_database(server, name)
        except pg.PostgresError as exc:
            ctx.recorder.warn(
                "ScratchDatabaseLeft", f"could not drop scratch database {name}: {exc}"
            )
