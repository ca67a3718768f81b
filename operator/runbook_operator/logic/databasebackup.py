"""What a one-shot DatabaseBackup does next, decided from its status alone.

The steps are Start -> Dump -> Verify -> Completed, each recorded in status
before the next begins. A step is run by one operator process, named in
`status.attemptBy`; when another process (a restarted operator) finds a step
still marked as running, that attempt was interrupted and is tried again, up
to MAX_ATTEMPTS, from the recorded step (a dump is redone from scratch, a
verification re-verifies the recorded artifact).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ..api.common import ConditionStatus
from ..api.databasebackup import (
    BackupPhase,
    BackupStep,
    DatabaseBackupStatus,
    TableRows,
    Verification,
    VerifyMethod,
)
from ..conditions import progressing, ready, set_condition, stalled

__all__ = [
    "MAX_ATTEMPTS",
    "VERIFIED",
    "Action",
    "Dumped",
    "Table",
    "compare_counts",
    "completed",
    "dumped",
    "failed",
    "format_duration",
    "human_size",
    "next_action",
    "retried",
    "stamp",
    "started",
    "verified",
]

MAX_ATTEMPTS = 3
VERIFIED = "Verified"
TERMINAL = (BackupPhase.COMPLETED, BackupPhase.FAILED)
Table = tuple[str, str]


class Action(StrEnum):
    NONE = "None"
    START = "Start"
    DUMP = "Dump"
    VERIFY = "Verify"
    RETRY = "Retry"
    """The recorded attempt was interrupted; record the next one."""
    GIVE_UP = "GiveUp"
    """Interrupted MAX_ATTEMPTS times."""


LONG_ACTIONS = (Action.DUMP, Action.VERIFY)
"""Actions that talk to PostgreSQL and can take minutes: only the timer runs them."""


def next_action(status: DatabaseBackupStatus, *, runner: str, tried: bool) -> Action:
    """The next step of a one-shot backup.

    runner: this operator process's id. tried: whether this process already ran
    the recorded attempt's step (its result was then lost, e.g. a failed status write).
    """
    if status.phase in TERMINAL:
        return Action.NONE
    if status.phase != BackupPhase.RUNNING or status.step is None:
        return Action.START
    if status.attempt_by != runner or tried:
        return Action.RETRY if (status.attempt or 1) < MAX_ATTEMPTS else Action.GIVE_UP
    return Action.DUMP if status.step == BackupStep.DUMPING else Action.VERIFY


# --- transitions: each returns the new status -----------------------------------


def started(
    status: DatabaseBackupStatus, *, runner: str, generation: int | None, now: datetime
) -> DatabaseBackupStatus:
    conditions = progressing(
        status.conditions, "Dumping", "pg_dump is running", generation=generation, now=now
    )
    return status.model_copy(
        update={
            "phase": BackupPhase.RUNNING,
            "step": BackupStep.DUMPING,
            "attempt": 1,
            "attempt_by": runner,
            "started_at": now,
            "observed_generation": generation,
            "conditions": conditions,
        }
    )


def retried(
    status: DatabaseBackupStatus, *, runner: str, generation: int | None, now: datetime
) -> DatabaseBackupStatus:
    attempt = (status.attempt or 1) + 1
    step = status.step or BackupStep.DUMPING
    message = (
        f"attempt {attempt - 1} was interrupted (the operator restarted); "
        f"{step.value.lower()} again, attempt {attempt} of {MAX_ATTEMPTS}"
    )
    conditions = progressing(status.conditions, "Retrying", message, generation=generation, now=now)
    return status.model_copy(
        update={"attempt": attempt, "attempt_by": runner, "conditions": conditions}
    )


@dataclass(frozen=True)
class Dumped:
    """What pg_dump wrote."""

    location: str
    size: int
    sha256: str
    server_version: str
    pg_dump_version: str
    tables: Mapping[Table, int]


def dumped(
    status: DatabaseBackupStatus,
    result: Dumped,
    verify: VerifyMethod,
    *,
    generation: int | None,
    now: datetime,
) -> DatabaseBackupStatus:
    """The dump is stored: record it, then verify (or complete when verify is none)."""
    tables = [
        TableRows(schema=schema, name=name, rows=rows)
        for (schema, name), rows in sorted(result.tables.items())
    ]
    total = sum(t.rows for t in tables)
    summary = (
        f"dumped {len(tables)} tables, {total} rows, {human_size(result.size)} to {result.location}"
    )
    recorded = status.model_copy(
        update={
            "location": result.location,
            "size_bytes": result.size,
            "size": human_size(result.size),
            "sha256": result.sha256,
            "server_version": result.server_version,
            "pg_dump_version": result.pg_dump_version,
            "tables": tables,
            "total_rows": total,
        }
    )
    if verify == VerifyMethod.NONE:
        conditions = set_condition(
            recorded.conditions,
            VERIFIED,
            ConditionStatus.UNKNOWN,
            "NotVerified",
            "verify is none: the artifact was not checked",
            generation=generation,
            now=now,
        )
        recorded = recorded.model_copy(
            update={"conditions": conditions, "verification": Verification(method=verify)}
        )
        return completed(recorded, summary, generation=generation, now=now)
    conditions = progressing(
        recorded.conditions,
        "Verifying",
        f"{summary}; verifying ({verify.value})",
        generation=generation,
        now=now,
    )
    return recorded.model_copy(
        update={
            "step": BackupStep.VERIFYING,
            "attempt": 1,
            "conditions": conditions,
        }
    )


def verified(
    status: DatabaseBackupStatus,
    verification: Verification,
    *,
    generation: int | None,
    now: datetime,
) -> DatabaseBackupStatus:
    if verification.method == VerifyMethod.RESTORE:
        message = (
            f"restored into a scratch database: all {verification.tables_compared} tables have "
            "the recorded row counts"
        )
    else:
        message = f"sha256 matches and pg_restore lists {verification.toc_entries} archive entries"
    conditions = set_condition(
        status.conditions, VERIFIED, True, "Verified", message, generation=generation, now=now
    )
    done = status.model_copy(
        update={
            "conditions": conditions,
            "verification": verification.model_copy(update={"verified_at": now}),
        }
    )
    summary = f"{human_size(status.size_bytes or 0)}, {status.total_rows} rows; {message}"
    return completed(done, summary, generation=generation, now=now)


def completed(
    status: DatabaseBackupStatus, message: str, *, generation: int | None, now: datetime
) -> DatabaseBackupStatus:
    conditions = ready(status.conditions, "Completed", message, generation=generation, now=now)
    return status.model_copy(
        update={
            "phase": BackupPhase.COMPLETED,
            "step": None,
            "completed_at": now,
            "duration": _since(status.started_at, now),
            "conditions": conditions,
        }
    )


def failed(
    status: DatabaseBackupStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
    verification_failed: bool = False,
) -> DatabaseBackupStatus:
    """Terminal failure: the reason in plain words, Stalled (a person has to look)."""
    conditions = stalled(status.conditions, reason, message, generation=generation, now=now)
    if verification_failed:
        conditions = set_condition(
            conditions, VERIFIED, False, reason, message, generation=generation, now=now
        )
    start = status.started_at or now
    return status.model_copy(
        update={
            "phase": BackupPhase.FAILED,
            "step": None,
            "started_at": start,
            "completed_at": now,
            "duration": _since(start, now),
            "observed_generation": generation,
            "conditions": conditions,
        }
    )


# --- pure helpers ---------------------------------------------------------------


def compare_counts(expected: Iterable[TableRows], actual: Mapping[Table, int | None]) -> list[str]:
    """One sentence per table whose count differs (or that is missing)."""
    out = []
    for table in expected:
        got = actual.get((table.schema_, table.name))
        if got is None:
            out.append(f"{table.schema_}.{table.name} is missing")
        elif got != table.rows:
            out.append(f"{table.schema_}.{table.name} has {got} rows, expected {table.rows}")
    return out


def stamp(when: datetime) -> str:
    """The artifact's file name stem, in UTC, e.g. 20250101T020000Z."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def human_size(size: int) -> str:
    """1536 -> '1.5KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_duration(delta: timedelta) -> str:
    """timedelta(seconds=92) -> '1m32s' (Go style)."""
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s"]
    if secs == 0 and (hours or minutes):
        parts[2] = ""
    return "".join(parts)


def _since(start: datetime | None, now: datetime) -> str | None:
    return format_duration(now - start) if start is not None else None
