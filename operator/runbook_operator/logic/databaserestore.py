"""What a DatabaseRestore does next: which backup, whether it is allowed, which step.

Prepare (resolve the backup, check authorization, record the target) ->
SafetyBackup (when the target exists: wait for a DatabaseBackup of it) ->
Restoring (one transaction) -> Completed when every table has the backup's
row count. A restore that is not allowed is Blocked and re-checked: it starts
when a MaintenanceWindow becomes Active or `confirm` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..api.databasebackup import (
    DATABASE_BACKUP,
    BackupPhase,
    DatabaseBackupSpec,
    PostgresRef,
    TableRows,
    VerifyMethod,
)
from ..api.databaserestore import (
    PRE_RESTORE_LABEL,
    DatabaseRestoreSpec,
    DatabaseRestoreStatus,
    RestorePhase,
    RestoreStep,
    TableCheck,
)
from ..conditions import progressing, ready, set_condition, stalled, waiting
from .databasebackup import MAX_ATTEMPTS, Table, format_duration

__all__ = [
    "AUTHORIZED",
    "Action",
    "Authorization",
    "BackupView",
    "Refusal",
    "authorize",
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
    "safety_backup_waiting",
    "started",
]

AUTHORIZED = "Authorized"
TERMINAL = (RestorePhase.COMPLETED, RestorePhase.FAILED)


class Action(StrEnum):
    NONE = "None"
    PREPARE = "Prepare"
    SAFETY_BACKUP = "SafetyBackup"
    RESTORE = "Restore"
    RETRY = "Retry"
    GIVE_UP = "GiveUp"


def next_action(status: DatabaseRestoreStatus, *, runner: str, tried: bool) -> Action:
    if status.phase in TERMINAL:
        return Action.NONE
    if status.phase != RestorePhase.RUNNING or status.step is None:
        return Action.PREPARE
    if status.step == RestoreStep.SAFETY_BACKUP:
        return Action.SAFETY_BACKUP  # waiting for another object: nothing to interrupt
    if status.attempt_by != runner or tried:
        return Action.RETRY if (status.attempt or 1) < MAX_ATTEMPTS else Action.GIVE_UP
    return Action.RESTORE


# --- which backup ---------------------------------------------------------------


@dataclass(frozen=True)
class BackupView:
    """What a restore needs from one DatabaseBackup object."""

    name: str
    scheduled: bool
    phase: str | None
    verified: bool
    completed_at: datetime | None
    location: str | None
    sha256: str | None
    database: str
    tables: tuple[TableRows, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """Why the restore cannot start (yet)."""

    reason: str
    message: str
    final: bool = False
    """True when waiting cannot help (the restore fails instead of staying Blocked)."""


def resolve_backup(
    requested: str, found: BackupView | None, children: list[BackupView]
) -> BackupView | Refusal:
    """The backup to restore: the named one, or a schedule's newest verified child."""
    if found is None:
        return Refusal("BackupNotFound", f"DatabaseBackup {requested} does not exist here")
    if found.scheduled:
        usable = [
            c for c in children if c.phase == BackupPhase.COMPLETED and c.verified and c.location
        ]
        if not usable:
            return Refusal(
                "NoVerifiedBackup",
                f"the schedule {requested} has no Completed, verified backup yet; "
                "name one of its children to restore an unverified one",
            )
        return max(usable, key=lambda c: c.completed_at or datetime.min)
    if found.phase == BackupPhase.FAILED:
        return Refusal("BackupFailed", f"DatabaseBackup {requested} failed; it cannot be restored")
    if found.phase != BackupPhase.COMPLETED or not found.location:
        return Refusal("BackupNotReady", f"DatabaseBackup {requested} has not completed yet")
    return found


# --- may it run? ----------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    by: str
    """MaintenanceWindow/<name>, or confirm."""
    message: str


def authorize(
    spec: DatabaseRestoreSpec, target: str, active_windows: list[str]
) -> Authorization | Refusal:
    if active_windows:
        window = sorted(active_windows)[0]
        return Authorization(f"MaintenanceWindow/{window}", f"MaintenanceWindow {window} is Active")
    if spec.confirm == target:
        return Authorization("confirm", f"confirm names the target database {target}")
    if spec.confirm:
        detail = f"spec.confirm is {spec.confirm!r}, but the target database is {target!r}"
    else:
        detail = "spec.confirm is not set"
    return Refusal(
        "NotAuthorized",
        f"a restore overwrites database {target}: it runs only while a MaintenanceWindow is "
        f"Active in this namespace, or with spec.confirm set to {target!r}; no window is "
        f"Active and {detail}",
    )


def safety_backup_name(restore: str, uid: str) -> str:
    """Unique per restore object, so a re-created restore never reuses an old one."""
    return f"{restore[:200].rstrip('-.')}-pre-restore-{uid.replace('-', '')[:6]}"


def safety_backup_object(
    name: str, restore: str, postgres: PostgresRef, database: str
) -> dict[str, Any]:
    """A one-shot DatabaseBackup of the target, not owned by the restore: it outlives it."""
    spec = DatabaseBackupSpec(
        postgres=postgres.model_copy(update={"database": database}),
        verify=VerifyMethod.READABLE,
    )
    return {
        "apiVersion": DATABASE_BACKUP.api_version,
        "kind": DATABASE_BACKUP.kind,
        "metadata": {"name": name, "labels": {PRE_RESTORE_LABEL: restore}},
        "spec": spec.wire(),
    }


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
    target: str,
    target_existed: bool,
    authorization: Authorization,
    safety_backup: str | None,
    runner: str,
    generation: int | None,
    now: datetime,
) -> DatabaseRestoreStatus:
    """Everything the restore will use, recorded before anything changes."""
    step = RestoreStep.SAFETY_BACKUP if safety_backup else RestoreStep.RESTORING
    message = (
        f"backing up {target} as {safety_backup} before restoring {backup.name}"
        if safety_backup
        else f"restoring {backup.name} into {target}"
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
            "attempt_by": runner,
            "backup": backup.name,
            "location": backup.location,
            "sha256": backup.sha256,
            "database": target,
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
    status: DatabaseRestoreStatus, *, runner: str, generation: int | None, now: datetime
) -> DatabaseRestoreStatus:
    message = f"restoring {status.backup} into {status.database}"
    conditions = progressing(
        status.conditions, "Restoring", message, generation=generation, now=now
    )
    return status.model_copy(
        update={
            "step": RestoreStep.RESTORING,
            "attempt": 1,
            "attempt_by": runner,
            "conditions": conditions,
        }
    )


def retried(
    status: DatabaseRestoreStatus, *, runner: str, generation: int | None, now: datetime
) -> DatabaseRestoreStatus:
    attempt = (status.attempt or 1) + 1
    message = (
        f"attempt {attempt - 1} was interrupted (the operator restarted; the transaction was "
        f"rolled back); restoring again, attempt {attempt} of {MAX_ATTEMPTS}"
    )
    conditions = progressing(status.conditions, "Retrying", message, generation=generation, now=now)
    return status.model_copy(
        update={"attempt": attempt, "attempt_by": runner, "conditions": conditions}
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
    return format_duration(now - start) if start is not None else None
