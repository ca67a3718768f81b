"""What a DatabaseRestore does next: which backup, whether it is allowed, which step.

Prepare (resolve the backup, check authorization, record the target and its server)
-> SafetyBackup (when the target exists: wait for a DatabaseBackup of it) -> Restoring
(one transaction, claimed first: core.attempts) -> Completed when every table has the
backup's row count. A restore that is not allowed is Blocked and looked at again when
what it waits for changes (`watching`): it starts when a MaintenanceWindow becomes
Active or `confirm` is set. Pure: each transition returns the new status.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from ....core.attempts import MAX_ATTEMPTS, Verdict, judge
from ....core.conditions import progressing, ready, set_condition, stalled, waiting
from ....core.fields import span
from ....core.postgres import PostgresRef, Table
from ..api import DatabaseRestoreSpec, DatabaseRestoreStatus, RestorePhase, RestoreStep, TableCheck
from .backups import (
    BACKUP_KIND,
    BACKUPS,
    WINDOW_KIND,
    WINDOWS,
    Authorization,
    BackupView,
    Refusal,
    active_windows,
    authorize,
    backup_view,
    resolve_backup,
    safety_backup_name,
    safety_backup_object,
    safety_backup_phase,
)

__all__ = [
    "AUTHORIZED",
    "BACKUPS",
    "WINDOWS",
    "Action",
    "Authorization",
    "BackupView",
    "Refusal",
    "active_windows",
    "authorize",
    "backup_view",
    "blocked",
    "checked",
    "failed",
    "next_action",
    "pending",
    "resolve_backup",
    "restoring",
    "retried",
    "safety_backup_name",
    "safety_backup_object",
    "safety_backup_phase",
    "safety_backup_waiting",
    "started",
    "watching",
]

AUTHORIZED = "Authorized"
"""Kind-specific condition: whether a window or the confirmation allows the restore."""


class Action(StrEnum):
    NONE = "None"
    PREPARE = "Prepare"
    SAFETY_BACKUP = "SafetyBackup"
    RESTORE = "Restore"
    RETRY = "Retry"
    GIVE_UP = "GiveUp"


def next_action(status: DatabaseRestoreStatus, *, instance: str, tried: bool) -> Action:
    if status.is_done():
        return Action.NONE
    if status.phase != RestorePhase.RUNNING or status.step is None:
        return Action.PREPARE
    if status.step == RestoreStep.SAFETY_BACKUP:
        return Action.SAFETY_BACKUP  # waiting for another object: nothing to interrupt
    verdict = judge(status.attempt, status.attempt_by, instance=instance, tried=tried)
    if verdict == Verdict.RETRY:
        return Action.RETRY
    if verdict == Verdict.GIVE_UP:
        return Action.GIVE_UP
    return Action.RESTORE


def watching(
    spec: DatabaseRestoreSpec, status: DatabaseRestoreStatus
) -> frozenset[tuple[str, str]]:
    """The objects whose changes may let this restore go on (nothing once it is done)."""
    if status.is_done():
        return frozenset()
    if status.phase == RestorePhase.RUNNING:
        if status.step == RestoreStep.SAFETY_BACKUP and status.safety_backup:
            return frozenset({(BACKUP_KIND, status.safety_backup)})
        return frozenset()
    ready_ = status.condition("Ready")
    reason = ready_.reason if ready_ is not None else None
    watch = {(BACKUP_KIND, spec.backup)}
    if reason == "NoVerifiedBackup":
        watch.add((BACKUP_KIND, "*"))  # the schedule's children, named as they come
    if reason == "NotAuthorized":
        watch.add((WINDOW_KIND, "*"))
    return frozenset(watch)


# --- transitions ----------------------------------------------------------------


def blocked(
    status: DatabaseRestoreStatus, refusal: Refusal, *, generation: int | None, now: datetime
) -> DatabaseRestoreStatus:
    if refusal.final:
        return failed(status, refusal.reason, refusal.message, generation=generation, now=now)
    conditions = stalled(
        status.conditions, refusal.reason, refusal.message, generation=generation, now=now
    )
    if refusal.reason == "NotAuthorized":
        conditions = set_condition(
            conditions,
            AUTHORIZED,
            False,
            refusal.reason,
            refusal.message,
            generation=generation,
            now=now,
        )
    return status.model_copy(
        update={
            "phase": RestorePhase.BLOCKED,
            "observed_generation": generation,
            "conditions": conditions,
        }
    )


def started(
    status: DatabaseRestoreStatus,
    backup: BackupView,
    *,
    target: PostgresRef,
    target_existed: bool,
    authorization: Authorization,
    safety_backup: str | None,
    instance: str,
    generation: int | None,
    now: datetime,
) -> DatabaseRestoreStatus:
    """Everything the restore will use, recorded before anything changes."""
    step = RestoreStep.SAFETY_BACKUP if safety_backup else RestoreStep.RESTORING
    database = target.database
    message = (
        f"backing up {database} as {safety_backup} before restoring {backup.name}"
        if safety_backup
        else f"restoring {backup.name} into {database}"
    )
    conditions = set_condition(
        status.conditions,
        AUTHORIZED,
        True,
        "Authorized",
        authorization.message,
        generation=generation,
        now=now,
    )
    conditions = progressing(conditions, step.value, message, generation=generation, now=now)
    return status.model_copy(
        update={
            "phase": RestorePhase.RUNNING,
            "step": step,
            "attempt": 1,
            "attempt_by": instance,
            "backup": backup.name,
            "location": backup.location,
            "sha256": backup.sha256,
            "database": database,
            "connection": target,
            "target_existed": target_existed,
            "authorized_by": authorization.by,
            "safety_backup": safety_backup,
            "started_at": now,
            "observed_generation": generation,
            "tables": [
                TableCheck(schema=t.schema_, name=t.name, expected=t.rows) for t in backup.tables
            ],
            "conditions": conditions,
        }
    )


def safety_backup_waiting(
    status: DatabaseRestoreStatus, phase: str | None, *, generation: int | None, now: datetime
) -> DatabaseRestoreStatus:
    message = f"waiting for the safety backup {status.safety_backup} ({phase or 'Pending'})"
    conditions = progressing(
        status.conditions, "SafetyBackup", message, generation=generation, now=now
    )
    return status.model_copy(update={"conditions": conditions})


def restoring(
    status: DatabaseRestoreStatus, *, instance: str, generation: int | None, now: datetime
) -> DatabaseRestoreStatus:
    message = f"restoring {status.backup} into {status.database}"
    conditions = progressing(
        status.conditions, "Restoring", message, generation=generation, now=now
    )
    return status.model_copy(
        update={
            "step": RestoreStep.RESTORING,
            "attempt": 1,
            "attempt_by": instance,
            "conditions": conditions,
        }
    )


def retried(
    status: DatabaseRestoreStatus, *, instance: str, generation: int | None, now: datetime
) -> DatabaseRestoreStatus:
    attempt = (status.attempt or 1) + 1
    message = (
        f"attempt {attempt - 1} was interrupted (the operator restarted; the transaction was "
        f"rolled back); restoring again, attempt {attempt} of {MAX_ATTEMPTS}"
    )
    conditions = progressing(status.conditions, "Retrying", message, generation=generation, now=now)
    return status.model_copy(
        update={"attempt": attempt, "attempt_by": instance, "conditions": conditions}
    )


def checked(
    status: DatabaseRestoreStatus,
    counts: Mapping[Table, int | None],
    *,
    generation: int | None,
    now: datetime,
) -> DatabaseRestoreStatus:
    """Restored: compare every table with the backup; Ready only when all match."""
    tables = [
        t.model_copy(update={"restored": counts.get((t.schema_, t.name))}) for t in status.tables
    ]
    bad = [t for t in tables if t.restored != t.expected]
    recorded = status.model_copy(update={"tables": tables, "mismatched_tables": len(bad)})
    if bad:
        detail = "; ".join(
            f"{t.schema_}.{t.name}: {'missing' if t.restored is None else t.restored} "
            f"rows, backup has {t.expected}"
            for t in bad[:10]
        )
        message = f"{len(bad)} of {len(tables)} tables differ from the backup: {detail}"
        return failed(recorded, "RowCountMismatch", message, generation=generation, now=now)
    rows = sum(t.expected for t in tables)
    message = (
        f"restored {status.backup} into {status.database}: all {len(tables)} tables have the "
        f"backup's row counts ({rows} rows)"
    )
    conditions = ready(recorded.conditions, "Restored", message, generation=generation, now=now)
    return recorded.model_copy(
        update={
            "phase": RestorePhase.COMPLETED,
            "step": None,
            "completed_at": now,
            "duration": _since(status.started_at, now),
            "conditions": conditions,
        }
    )


def failed(
    status: DatabaseRestoreStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> DatabaseRestoreStatus:
    conditions = stalled(status.conditions, reason, message, generation=generation, now=now)
    return status.model_copy(
        update={
            "phase": RestorePhase.FAILED,
            "step": None,
            "completed_at": now,
            "duration": _since(status.started_at, now),
            "observed_generation": generation,
            "conditions": conditions,
        }
    )


def pending(
    status: DatabaseRestoreStatus, message: str, *, generation: int | None, now: datetime
) -> DatabaseRestoreStatus:
    """Waiting for the backup to finish: not stalled, just not yet."""
    conditions = waiting(
        status.conditions, "BackupNotReady", message, generation=generation, now=now
    )
    return status.model_copy(
        update={
            "phase": RestorePhase.PENDING,
            "observed_generation": generation,
            "conditions": conditions,
        }
    )


def _since(start: datetime | None, now: datetime) -> str | None:
    return span(now - start) if start is not None else None
