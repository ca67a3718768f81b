"""Safety backups are pruned by their own rule (pure).

A DatabaseRestore backs the database up before it overwrites it: a one-shot
DatabaseBackup labelled `ops.mailscore.com/pre-restore: <restore>`, not owned by the
restore, so it outlives it. Nothing else would ever delete those, so they have a rule of
their own, an operator setting: the newest `keep` Completed ones per database (host,
port, database), none older than `max_age` except the newest Completed one, and a Failed
one only while no newer safety backup of its database completed. A backup a
DatabaseRestore in flight reads is never pruned. Deleting the object deletes its
artifact, on the volume or in the bucket it recorded (the one-shot finalizer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ....core.names import PRE_RESTORE_LABEL
from .schedule import RESTORE_FINISHED

__all__ = ["SafetyBackup", "SafetyRule", "awaited", "next_expiry", "prune", "safety_backups"]

Database = tuple[str, int, str]
"""host, port, database."""


@dataclass(frozen=True)
class SafetyRule:
    keep: int
    """Completed safety backups kept per database, newest first (at least 1)."""
    max_age: timedelta | None = None
    """Older ones go, except the newest Completed one of each database. None: no limit."""


@dataclass(frozen=True)
class SafetyBackup:
    name: str
    database: Database
    phase: str | None
    completed_at: datetime | None

    @property
    def done(self) -> bool:
        return self.phase in ("Completed", "Failed") and self.completed_at is not None


def _database(spec: Mapping[str, Any]) -> Database:
    pg = spec.get("postgres") or {}
    return (str(pg.get("host") or ""), int(pg.get("port") or 5432), str(pg.get("database") or ""))


def safety_backups(objs: Iterable[Mapping[str, Any]]) -> list[SafetyBackup]:
    """The safety backups among DatabaseBackup objects (those with the pre-restore label),
    skipping any already being deleted."""
    out = []
    for obj in objs:
        meta = obj.get("metadata") or {}
        if PRE_RESTORE_LABEL not in (meta.get("labels") or {}) or meta.get("deletionTimestamp"):
            continue
        status = obj.get("status") or {}
        completed = status.get("completedAt")
        out.append(
            SafetyBackup(
                name=str(meta.get("name")),
                database=_database(obj.get("spec") or {}),
                phase=status.get("phase"),
                completed_at=datetime.fromisoformat(completed) if completed else None,
            )
        )
    return out


def awaited(restores: Iterable[Mapping[str, Any]]) -> set[str]:
    """The safety backups DatabaseRestores in flight are taking or have just taken: never
    pruned under them, whatever their age."""
    out: set[str] = set()
    for obj in restores:
        status = obj.get("status") or {}
        if status.get("phase") not in RESTORE_FINISHED and status.get("safetyBackup"):
            out.add(str(status["safetyBackup"]))
    return out


def _by_database(backups: Iterable[SafetyBackup]) -> dict[Database, list[SafetyBackup]]:
    groups: dict[Database, list[SafetyBackup]] = {}
    for b in backups:
        if b.done:
            groups.setdefault(b.database, []).append(b)
    for group in groups.values():
        group.sort(key=lambda b: (b.completed_at, b.name), reverse=True)
    return groups


def prune(
    backups: Iterable[SafetyBackup], rule: SafetyRule, now: datetime, in_use: set[str]
) -> list[str]:
    """The names to delete, oldest first. Running ones are never touched."""
    out: list[SafetyBackup] = []
    keep = max(rule.keep, 1)
    for group in _by_database(backups).values():  # done ones only: completed_at is set
        completed = [b for b in group if b.phase == "Completed"]
        newest_at = completed[0].completed_at if completed else None
        out += completed[keep:]
        for b in group:
            assert b.completed_at is not None
            aged = rule.max_age is not None and now - b.completed_at > rule.max_age
            superseded = newest_at is not None and b.completed_at < newest_at
            expired = aged and b is not completed[0] if b.phase == "Completed" else aged
            if expired or (b.phase == "Failed" and superseded):
                out.append(b)
    out = [b for b in out if b.name not in in_use]
    out.sort(key=lambda b: (b.completed_at, b.name))
    return list(dict.fromkeys(b.name for b in out))


def next_expiry(
    backups: Iterable[SafetyBackup], rule: SafetyRule, now: datetime
) -> datetime | None:
    """When the next kept safety backup ages out under max_age (None: never)."""
    if rule.max_age is None:
        return None
    pruned = set(prune(backups, rule, now, set()))
    due: list[datetime] = []
    for group in _by_database(backups).values():
        completed = [b for b in group if b.phase == "Completed"]
        for b in group:
            if b.name in pruned or b.completed_at is None or (completed and b is completed[0]):
                continue  # gone already, or the newest Completed one (it never ages out)
            due.append(b.completed_at + rule.max_age)
    later = [d for d in due if d > now]
    return min(later) if later else None
