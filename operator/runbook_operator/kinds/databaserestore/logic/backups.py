"""Which backup a restore restores, and whether it may: read from other kinds' objects.

A DatabaseBackup and a MaintenanceWindow are other kinds, so they are read as the API
server's objects, by plural, and only what a restore needs is parsed (with the core's
PostgreSQL models): a backup's schedule, server, phase, artifact, row counts and
Verified condition; a window's phase. A restore never imports those kinds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError

from ....core.conditions import Condition, find, is_true
from ....core.model import GROUP, VERSION, ApiModel
from ....core.names import PRE_RESTORE_LABEL
from ....core.owners import owner_uids
from ....core.postgres import PostgresRef, TableRows
from ..api import DatabaseRestoreSpec

__all__ = [
    "BACKUPS",
    "BACKUP_KIND",
    "WINDOWS",
    "WINDOW_KIND",
    "Authorization",
    "BackupView",
    "Refusal",
    "active_windows",
    "authorize",
    "backup_view",
    "resolve_backup",
    "safety_backup_name",
    "safety_backup_object",
    "safety_backup_phase",
]

Obj = dict[str, Any]
BACKUPS, BACKUP_KIND = "databasebackups", "DatabaseBackup"
WINDOWS, WINDOW_KIND = "maintenancewindows", "MaintenanceWindow"
COMPLETED, FAILED, ACTIVE = "Completed", "Failed", "Active"
"""The phases of those kinds a restore looks at."""
VERIFIED = "Verified"
"""A backup's condition: True once its artifact was proven."""


class _BackupSpec(ApiModel):
    schedule: str | None = None
    postgres: PostgresRef | None = None


class _BackupStatus(ApiModel):
    phase: str | None = None
    completed_at: datetime | None = None
    location: str | None = None
    sha256: str | None = None
    tables: list[TableRows] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)


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
    postgres: PostgresRef | None
    """Its server; None when its spec.postgres cannot be read."""
    tables: tuple[TableRows, ...] = ()
    uid: str = ""
    owners: frozenset[str] = frozenset()
    """The uids of its ownerReferences: a schedule's child is owned by the schedule."""

    @property
    def database(self) -> str | None:
        return self.postgres.database if self.postgres is not None else None


def _status(obj: Obj) -> _BackupStatus:
    try:
        return _BackupStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        return _BackupStatus()


def backup_view(obj: Obj) -> BackupView:
    raw_spec = obj.get("spec") or {}
    try:
        spec = _BackupSpec.model_validate(raw_spec)
    except ValidationError:
        spec = _BackupSpec(schedule=raw_spec.get("schedule") or None)
    status = _status(obj)
    return BackupView(
        name=str((obj.get("metadata") or {}).get("name")),
        scheduled=spec.schedule is not None,
        phase=status.phase,
        verified=is_true(status.conditions, VERIFIED),
        completed_at=status.completed_at,
        location=status.location,
        sha256=status.sha256,
        postgres=spec.postgres,
        tables=tuple(status.tables),
        uid=str((obj.get("metadata") or {}).get("uid") or ""),
        owners=owner_uids(obj),
    )


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
    """The backup to restore: the named one, or a schedule's newest verified child. A child
    is one the schedule owns (ownerReference uid); its label alone does not make it one."""
    if found is None:
        return Refusal("BackupNotFound", f"DatabaseBackup {requested} does not exist here")
    if found.scheduled:
        usable = [
            c
            for c in children
            if found.uid and found.uid in c.owners
            and c.phase == COMPLETED and c.verified and c.location
        ]  # fmt: skip
        if not usable:
            return Refusal(
                "NoVerifiedBackup",
                f"the schedule {requested} has no Completed, verified backup yet; "
                "name one of its children to restore an unverified one",
            )
        found = max(usable, key=lambda c: c.completed_at or datetime.min)
    elif found.phase == FAILED:
        return Refusal("BackupFailed", f"DatabaseBackup {requested} failed; it cannot be restored")
    elif found.phase != COMPLETED or not found.location:
        return Refusal("BackupNotReady", f"DatabaseBackup {requested} has not completed yet")
    if found.postgres is None:
        return Refusal(
            "BackupUnusable",
            f"DatabaseBackup {found.name} has a spec.postgres the operator cannot read",
        )
    return found


# --- may it run? ----------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    by: str
    """MaintenanceWindow/<name>, or confirm."""
    message: str


def active_windows(windows: Iterable[Obj]) -> list[str]:
    """The MaintenanceWindows that are Active now."""
    return [
        str(w["metadata"]["name"])
        for w in windows
        if (w.get("status") or {}).get("phase") == ACTIVE
    ]


def authorize(spec: DatabaseRestoreSpec, target: str, active: list[str]) -> Authorization | Refusal:
    if active:
        window = sorted(active)[0]
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


# --- the safety backup ------------------------------------------------------------


def safety_backup_name(restore: str, uid: str) -> str:
    """Unique per restore object, so a re-created restore never reuses an old one."""
    return f"{restore[:200].rstrip('-.')}-pre-restore-{uid.replace('-', '')[:6]}"


def safety_backup_object(name: str, restore: str, target: PostgresRef) -> Obj:
    """A one-shot DatabaseBackup of the target, not owned by the restore: it outlives it."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": BACKUP_KIND,
        "metadata": {"name": name, "labels": {PRE_RESTORE_LABEL: restore}},
        "spec": {"postgres": target.wire(), "verify": "readable"},
    }


def safety_backup_phase(obj: Obj) -> tuple[str | None, str]:
    """The safety backup's phase, and its Ready message (why it failed)."""
    status = _status(obj)
    ready = find(status.conditions, "Ready")
    return status.phase, ready.message if ready is not None else ""
