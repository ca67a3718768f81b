"""A scheduled DatabaseBackup: when to create the next child, and which to prune.

Semantics follow a CronJob with `concurrencyPolicy: Forbid`: the most recent slot of
the cron schedule (in `timeZone`, by core.schedule, the one cron engine) that is later
than the last one handled is due; it runs if no child is running and it is not older
than the starting deadline; a slot that comes while a child runs waits for it (still
within the deadline), so runs never overlap; older slots are recorded as missed.
Everything is re-derived from status + children + the clock, so an operator that was
down runs a missed slot once on start-up, within the deadline.

Runs that failed in a row are counted from the children, newest first: one or more make
the schedule Degraded (still Ready: it goes on), `failureThreshold` (default 3) make it
Stalled, so kstatus, Flux and Argo CD report it Failed / Degraded until a run completes.

Retention keeps the newest `keep.last` Completed children and the newest `keep.failed`
Failed ones, drops those older than `keep.maxAge` except the newest Completed one, and
never deletes a child a restore in flight is reading. Children and restores are read
as the API server's objects (a restore is another kind: only its phase and the backup
it names are looked at).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ....core import schedule as cron
from ....core.conditions import ready, stalled, with_degraded
from ....core.fields import parse_duration
from ....core.names import SCHEDULE_LABEL, SCHEDULED_AT_ANNOTATION
from ....core.rollout import parse_time
from ..api import (
    DATABASE_BACKUP,
    BackupPhase,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
    Retention,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "RESTORES",
    "Child",
    "Decision",
    "InvalidSchedule",
    "child_name",
    "child_object",
    "child_of",
    "decide",
    "prune",
    "reading",
    "scheduled",
]

Obj = dict[str, Any]
DEFAULT_DEADLINE = timedelta(hours=1)
DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_RETENTION = Retention()
RESTORES = "databaserestores"
"""DatabaseRestores are read by their plural: the restore kind is not imported."""
RESTORE_FINISHED = frozenset({"Completed", "Failed"})
_NAME_ROOM = 253 - len("-202501010200")


class InvalidSchedule(ValueError):
    """The schedule has no start to compute (e.g. a day that never comes, Feb 30)."""


@dataclass(frozen=True)
class Child:
    """What the schedule needs to know about one of its children."""

    name: str
    phase: str | None
    created: datetime
    completed_at: datetime | None = None
    in_use: bool = False
    """A DatabaseRestore in flight reads this child's artifact."""

    @property
    def finished(self) -> bool:
        return self.phase in (BackupPhase.COMPLETED, BackupPhase.FAILED)

    @property
    def when(self) -> datetime:
        return self.completed_at or self.created

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Newer sorts later. completedAt has whole seconds, so two runs that end in the
        same second are told apart by creation, then by name (which carries the slot)."""
        return (self.when, self.created, self.name)


def child_of(obj: Obj, in_use: set[str]) -> Child:
    """A child as listed (the API server's JSON)."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    created = parse_time(meta.get("creationTimestamp")) or datetime.now(UTC)
    return Child(
        name=str(meta.get("name")),
        phase=status.get("phase"),
        created=created,
        completed_at=parse_time(status.get("completedAt")),
        in_use=meta.get("name") in in_use,
    )


def reading(restores: Iterable[Obj]) -> set[str]:
    """The backups that DatabaseRestores in flight read (named, or resolved to a child)."""
    out: set[str] = set()
    for obj in restores:
        status = obj.get("status") or {}
        if status.get("phase") not in RESTORE_FINISHED:
            names = (status.get("backup"), (obj.get("spec") or {}).get("backup"))
            out.update(str(n) for n in names if n)
    return out


@dataclass(frozen=True)
class Decision:
    phase: BackupPhase
    run: datetime | None
    """A slot to create a child for now."""
    missed: datetime | None
    """A slot given up because it is older than the starting deadline."""
    next_time: datetime | None
    active: str | None
    """The child running now."""
    last_success: Child | None
    delete: tuple[str, ...]
    """Children retention deletes (with their artifacts)."""
    held: bool = False
    """Retention would delete a child a restore is reading: look again when it ends."""
    failures: tuple[str, ...] = ()
    """The newest finished children that failed in a row, newest first."""


def decide(
    spec: DatabaseBackupSpec,
    last_schedule_time: datetime | None,
    children: list[Child],
    *,
    created: datetime,
    now: datetime,
) -> Decision:
    """Raises InvalidSchedule when the schedule has no start around `now`."""
    assert spec.schedule is not None
    tz = cron.zone(spec.time_zone)
    try:
        prev = cron.previous_start(spec.schedule, tz, now)
        following = cron.next_start(spec.schedule, tz, now)
    except (ValueError, StopIteration) as exc:
        raise InvalidSchedule(f"the schedule {spec.schedule!r} has no runs: {exc}") from None
    deadline = (
        parse_duration(spec.starting_deadline) if spec.starting_deadline else DEFAULT_DEADLINE
    )
    running = sorted((c for c in children if not c.finished), key=lambda c: c.created)
    active = running[-1].name if running else None
    due = prev if prev > max(last_schedule_time or created, created) else None
    run = missed = None
    if due is not None and not spec.suspend and not running:
        if now - due > deadline:
            missed = due
        else:
            run = due
    if spec.suspend:
        phase = BackupPhase.SUSPENDED
    elif running or run is not None:
        phase = BackupPhase.RUNNING
    else:
        phase = BackupPhase.SCHEDULED
    done = [c for c in children if c.phase == BackupPhase.COMPLETED]
    keep = spec.keep or DEFAULT_RETENTION
    return Decision(
        phase=phase,
        run=run,
        missed=missed,
        next_time=None if spec.suspend else following,
        active=active,
        last_success=max(done, key=lambda c: c.order) if done else None,
        delete=tuple(prune(children, keep, now)),
        held=any(c.in_use for c in _doomed(children, keep, now)),
        failures=tuple(c.name for c in failed_in_a_row(children)),
    )


def failed_in_a_row(children: list[Child]) -> list[Child]:
    """The newest finished children that failed, newest first, up to a Completed one."""
    finished = sorted((c for c in children if c.finished), key=lambda c: c.order, reverse=True)
    out: list[Child] = []
    for child in finished:
        if child.phase != BackupPhase.FAILED:
            break
        out.append(child)
    return out


def prune(children: list[Child], keep: Retention, now: datetime) -> list[str]:
    """Names of the finished children retention deletes, oldest first (never one in use)."""
    return [c.name for c in _doomed(children, keep, now) if not c.in_use]


def _doomed(children: list[Child], keep: Retention, now: datetime) -> list[Child]:
    max_age = parse_duration(keep.max_age) if keep.max_age else None

    def newest_first(phase: BackupPhase) -> list[Child]:
        found = [c for c in children if c.phase == phase]
        return sorted(found, key=lambda c: c.order, reverse=True)

    done = newest_first(BackupPhase.COMPLETED)
    failures = newest_first(BackupPhase.FAILED)
    doomed = done[keep.last :] + failures[keep.failed :]
    if max_age is not None:
        doomed += [c for c in done[1 : keep.last] if now - c.when > max_age]
        doomed += [c for c in failures[: keep.failed] if now - c.when > max_age]
    return sorted(doomed, key=lambda c: c.order)


def scheduled(
    spec: DatabaseBackupSpec,
    status: DatabaseBackupStatus,
    decision: Decision,
    active: str | None,
    *,
    generation: int | None,
    now: datetime,
) -> DatabaseBackupStatus:
    """The schedule's status after this pass (Ready: a valid schedule is Current)."""
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
    conditions = _health(spec, status, decision.failures, reason, message, generation, now)
    return status.model_copy(
        update={
            "phase": decision.phase,
            "observed_generation": generation,
            "scheduled": True,
            "last_schedule_time": last,
            "next_schedule_time": decision.next_time,
            "active": active,
            "consecutive_failures": len(decision.failures),
            "last_failed_backup": decision.failures[0] if decision.failures else None,
            "last_successful_time": success.when if success else status.last_successful_time,
            "last_successful_backup": success.name if success else status.last_successful_backup,
            # what a one-shot records, left by an earlier spec the operator could not use
            "started_at": None,
            "completed_at": None,
            "duration": None,
            "conditions": conditions,
        }
    )


def _health(
    spec: DatabaseBackupSpec,
    status: DatabaseBackupStatus,
    failures: tuple[str, ...],
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Any]:
    """Ready while it runs on time; Degraded after a failed run; Stalled after
    failureThreshold of them in a row."""
    threshold = spec.failure_threshold or DEFAULT_FAILURE_THRESHOLD
    if not failures:
        conditions = ready(status.conditions, reason, message, generation=generation, now=now)
        return with_degraded(conditions, None, "", generation=generation, now=now)
    count = len(failures)
    runs = "the last run" if count == 1 else f"the last {count} runs"
    why = f"{runs} failed (newest: {failures[0]}; Stalled at {threshold} in a row): {message}"
    if count >= threshold:
        conditions = stalled(status.conditions, "RunsFailing", why, generation=generation, now=now)
        degraded = "RunsFailing"
    else:
        degraded = "LastRunFailed"
        conditions = ready(status.conditions, degraded, why, generation=generation, now=now)
    return with_degraded(conditions, degraded, why, generation=generation, now=now)


def child_name(parent: str, slot: datetime) -> str:
    """Deterministic per slot, so creating it twice is harmless: `<parent>-YYYYMMDDhhmm`."""
    stem = parent[:_NAME_ROOM].rstrip("-.")
    return f"{stem}-{slot.astimezone(UTC):%Y%m%d%H%M}"


def child_object(parent: str, parent_uid: str, spec: DatabaseBackupSpec, slot: datetime) -> Obj:
    """The one-shot DatabaseBackup for one slot: the parent's database, owned by the parent."""
    child_spec = DatabaseBackupSpec(
        postgres=spec.postgres,
        verify=spec.verify,
        deletion_policy=spec.deletion_policy,
        destination=spec.destination,
    )
    return {
        "apiVersion": DATABASE_BACKUP.api_version,
        "kind": DATABASE_BACKUP.kind,
        "metadata": {
            "name": child_name(parent, slot),
            "labels": {SCHEDULE_LABEL: parent},
            "annotations": {SCHEDULED_AT_ANNOTATION: slot.astimezone(UTC).isoformat()},
            "ownerReferences": [
                {
                    "apiVersion": DATABASE_BACKUP.api_version,
                    "kind": DATABASE_BACKUP.kind,
                    "name": parent,
                    "uid": parent_uid,
                    "controller": True,
                }
            ],
        },
        "spec": child_spec.wire(),
    }
