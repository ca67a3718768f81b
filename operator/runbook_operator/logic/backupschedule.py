"""A scheduled DatabaseBackup: when to create the next child, and which to prune.

Semantics follow a CronJob with `concurrencyPolicy: Forbid`: the most recent
slot of the cron schedule (in `timeZone`) that is later than the last one
handled is due; it runs if no child is running and it is not older than the
starting deadline; a slot that comes while a child runs waits for it (still
within the deadline), so runs never overlap; older slots are recorded as
missed. Everything is re-derived from status + children + the clock, so an
operator that was down runs a missed slot once on start-up, within the deadline.

Retention keeps the newest `keep.last` Completed children and the newest
`keep.failed` Failed ones, drops those older than `keep.maxAge` except the
newest Completed one, and never deletes a child a restore is reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from ..api.common import parse_duration
from ..api.databasebackup import (
    DATABASE_BACKUP,
    SCHEDULE_LABEL,
    SCHEDULED_AT_ANNOTATION,
    BackupPhase,
    DatabaseBackupSpec,
    Retention,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "Child",
    "Decision",
    "InvalidSchedule",
    "child_name",
    "child_object",
    "decide",
    "prune",
    "slots",
]

DEFAULT_DEADLINE = timedelta(hours=1)
DEFAULT_RETENTION = Retention()
_NAME_ROOM = 253 - len("-202501010200")


class InvalidSchedule(ValueError):
    """The schedule or time zone cannot be computed (e.g. an unknown time zone)."""


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


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(f"unknown time zone {name!r}; use an IANA name") from exc


def slots(schedule: str, zone_name: str | None, now: datetime) -> tuple[datetime, datetime]:
    """The latest slot at or before `now` and the next one after it, in UTC."""
    zone = _zone(zone_name)
    local = now.astimezone(zone)
    try:
        prev = croniter(schedule, local).get_prev(datetime)
        following = croniter(schedule, prev).get_next(datetime)
    except (ValueError, KeyError) as exc:
        raise InvalidSchedule(f"cannot compute the schedule {schedule!r}: {exc}") from exc
    if following <= local:  # `now` is exactly on a slot: croniter's get_prev excludes it
        prev, following = following, croniter(schedule, following).get_next(datetime)
    return prev.astimezone(UTC), following.astimezone(UTC)


def decide(
    spec: DatabaseBackupSpec,
    last_schedule_time: datetime | None,
    children: list[Child],
    *,
    created: datetime,
    now: datetime,
) -> Decision:
    assert spec.schedule is not None
    prev, following = slots(spec.schedule, spec.time_zone, now)
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
    return Decision(
        phase=phase,
        run=run,
        missed=missed,
        next_time=None if spec.suspend else following,
        active=active,
        last_success=max(done, key=lambda c: c.when) if done else None,
        delete=tuple(prune(children, spec.keep or DEFAULT_RETENTION, now)),
    )


def prune(children: list[Child], keep: Retention, now: datetime) -> list[str]:
    """Names of the finished children retention deletes, oldest first."""
    max_age = parse_duration(keep.max_age) if keep.max_age else None

    def newest_first(phase: BackupPhase) -> list[Child]:
        found = [c for c in children if c.phase == phase]
        return sorted(found, key=lambda c: c.when, reverse=True)

    done = newest_first(BackupPhase.COMPLETED)
    failures = newest_first(BackupPhase.FAILED)
    doomed = done[keep.last :] + failures[keep.failed :]
    if max_age is not None:
        doomed += [c for c in done[1 : keep.last] if now - c.when > max_age]
        doomed += [c for c in failures[: keep.failed] if now - c.when > max_age]
    return [c.name for c in sorted(doomed, key=lambda c: c.when) if not c.in_use]


def child_name(parent: str, slot: datetime) -> str:
    """Deterministic per slot, so creating it twice is harmless: `<parent>-YYYYMMDDhhmm`."""
    stem = parent[:_NAME_ROOM].rstrip("-.")
    return f"{stem}-{slot.astimezone(UTC):%Y%m%d%H%M}"


def child_object(
    parent: str, parent_uid: str, spec: DatabaseBackupSpec, slot: datetime
) -> dict[str, Any]:
    """The one-shot DatabaseBackup for one slot: the parent's database, owned by the parent."""
    child_spec = DatabaseBackupSpec(
        postgres=spec.postgres, verify=spec.verify, deletion_policy=spec.deletion_policy
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
