"""What a one-shot DatabaseBackup does next, decided from its status alone.

The steps are Start -> Dump -> Verify -> Completed, each recorded in status before
the next begins; the dump and the verification are long and are claimed first
(attempt number, `attemptBy`: core.attempts). An attempt found unfinished was
interrupted and is tried again from its step, up to MAX_ATTEMPTS (a dump is redone
from scratch, a verification re-verifies the recorded artifact). Each transition
returns the new status; the handler writes it and carries it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from ....core.attempts import MAX_ATTEMPTS, Verdict, judge
from ....core.conditions import ConditionStatus, progressing, ready, set_condition, stalled
from ....core.destination import Chosen, Destination, describe
from ....core.fields import span
from ....core.postgres import Table, TableRows
from ..api import (
    BackupPhase,
    BackupStep,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
    Verification,
    VerifyMethod,
)

__all__ = [
    "VERIFIED",
    "Action",
    "Dumped",
    "compare_counts",
    "completed",
    "destination_of",
    "dumped",
    "failed",
    "human_size",
    "next_action",
    "recorded",
    "retried",
    "scratch_database",
    "stamp",
    "started",
    "verified",
]

VERIFIED = "Verified"
"""Kind-specific condition: True once the artifact is proven, Unknown with verify: none."""


class Action(StrEnum):
    NONE = "None"
    START = "Start"
    DUMP = "Dump"
    VERIFY = "Verify"
    RETRY = "Retry"
    """The recorded attempt was interrupted; record the next one."""
    GIVE_UP = "GiveUp"
    """Interrupted MAX_ATTEMPTS times."""


def next_action(status: DatabaseBackupStatus, *, instance: str, tried: bool) -> Action:
    """The next step of a one-shot backup.

    instance: this operator process's id. tried: whether this process already ran the
    recorded attempt's step (and its result was lost)."""
    if status.is_done():
        return Action.NONE
    if status.phase != BackupPhase.RUNNING or status.step is None:
        return Action.START
    verdict = judge(status.attempt, status.attempt_by, instance=instance, tried=tried)
    if verdict == Verdict.RETRY:
        return Action.RETRY
    if verdict == Verdict.GIVE_UP:
        return Action.GIVE_UP
    return Action.DUMP if status.step == BackupStep.DUMPING else Action.VERIFY


def recorded(status: DatabaseBackupStatus, spec: DatabaseBackupSpec) -> DatabaseBackupStatus:
    """The status with what deletion needs taken from the spec (a one-shot's never changes)."""
    return status.model_copy(
        update={
            "scheduled": False,
            "deletion_policy": spec.deletion_policy,
            "connection": spec.postgres,
        }
    )


def destination_of(
    spec: DatabaseBackupSpec | None, status: DatabaseBackupStatus
) -> Destination | None:
    """Where this backup's artifact is (None: the volume). A spec.destination always wins
    (it is immutable and admission checked its Secrets); otherwise what the backup recorded
    when it started, so a later change of the namespace's default never redirects it."""
    own = spec.destination if spec is not None else None
    if own is not None and (own.s3 is not None or own.volume is not None):
        return own
    return status.destination


def scratch_database(uid: str) -> str:
    """The scratch database of a restore-verification: stable per object, at most 63."""
    return f"runbook_verify_{uid.replace('-', '')[:12]}"


# --- transitions: each returns the new status -----------------------------------


def started(
    status: DatabaseBackupStatus,
    *,
    instance: str,
    generation: int | None,
    now: datetime,
    destination: Chosen | None = None,
) -> DatabaseBackupStatus:
    """Running, Dumping, attempt 1; with the destination chosen for it, recorded before the
    first byte is written."""
    where = ""
    if destination is not None:
        where = f" to {describe(destination.destination)} ({destination.source})"
    conditions = progressing(
        status.conditions, "Dumping", f"pg_dump is running{where}", generation=generation, now=now
    )
    recorded: dict[str, object] = {}
    if destination is not None:
        recorded = {
            "destination": destination.destination,
            "destination_from": destination.source,
        }
    return status.model_copy(
        update={
            "phase": BackupPhase.RUNNING,
            "step": BackupStep.DUMPING,
            "attempt": 1,
            "attempt_by": instance,
            "started_at": now,
            "observed_generation": generation,
            "conditions": conditions,
            **recorded,
        }
    )


def retried(
    status: DatabaseBackupStatus, *, instance: str, generation: int | None, now: datetime
) -> DatabaseBackupStatus:
    attempt = (status.attempt or 1) + 1
    step = status.step or BackupStep.DUMPING
    message = (
        f"attempt {attempt - 1} was interrupted (the operator restarted); "
        f"{step.value.lower()} again, attempt {attempt} of {MAX_ATTEMPTS}"
    )
    conditions = progressing(status.conditions, "Retrying", message, generation=generation, now=now)
    return status.model_copy(
        update={"attempt": attempt, "attempt_by": instance, "conditions": conditions}
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
    scratch: str,
    generation: int | None,
    now: datetime,
) -> DatabaseBackupStatus:
    """The dump is stored: record it, then verify (or complete when verify is none).

    scratch: the scratch database a restore-verification will use, recorded now."""
    tables = [
        TableRows(schema=schema, name=name, rows=rows)
        for (schema, name), rows in sorted(result.tables.items())
    ]
    total = sum(t.rows for t in tables)
    summary = (
        f"dumped {len(tables)} tables, {total} rows, {human_size(result.size)} to {result.location}"
    )
    done = status.model_copy(
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
            done.conditions,
            VERIFIED,
            ConditionStatus.UNKNOWN,
            "NotVerified",
            "verify is none: the artifact was not checked",
            generation=generation,
            now=now,
        )
        done = done.model_copy(
            update={"conditions": conditions, "verification": Verification(method=verify)}
        )
        return completed(done, summary, generation=generation, now=now)
    conditions = progressing(
        done.conditions,
        "Verifying",
        f"{summary}; verifying ({verify.value})",
        generation=generation,
        now=now,
    )
    planned = Verification(
        method=verify, scratch_database=scratch if verify == VerifyMethod.RESTORE else None
    )
    return done.model_copy(
        update={
            "step": BackupStep.VERIFYING,
            "attempt": 1,
            "verification": planned,
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
    """Terminal failure: the reason in plain words, Stalled (a person has to look).

    A failed verification proved nothing: `verification` keeps only the method tried (the
    Verified condition says what went wrong, naming the scratch database if one was used)."""
    conditions = stalled(status.conditions, reason, message, generation=generation, now=now)
    verification = status.verification
    if verification_failed:
        conditions = set_condition(
            conditions, VERIFIED, False, reason, message, generation=generation, now=now
        )
        if verification is not None:
            verification = Verification(method=verification.method)
    start = status.started_at or now
    return status.model_copy(
        update={
            "phase": BackupPhase.FAILED,
            "step": None,
            "started_at": start,
            "completed_at": now,
            "duration": _since(start, now),
            "observed_generation": generation,
            "verification": verification,
            "conditions": conditions,
        }
    )


# --- pure helpers ---------------------------------------------------------------


def compare_counts(expected: Iterable[TableRows], actual: Mapping[Table, int | None]) -> list[str]:
    """One sentence per table whose count differs (or that is missing)."""
    out = []
    for table in expected:
        got = actual.get(table.table)
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


def _since(start: datetime | None, now: datetime) -> str | None:
    return span(now - start) if start is not None else None
