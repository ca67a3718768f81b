"""DatabaseBackup: the runbook's "Database Backup", as objects you can `kubectl get`.

A one-shot DatabaseBackup dumps one PostgreSQL database once, records what it
wrote (size, sha256, location, exact per-table row counts) and proves the
artifact (readable, or restored into a scratch database). One with `schedule`
never dumps itself: it creates a one-shot child per run, labelled
`ops.mailscore.com/schedule: <parent>` and owned by it, and prunes old
children (objects and artifacts together).

Life of a one-shot backup (Failed ends it at any step, with the reason):

    Pending -> Running (Dumping -> Verifying) -> Completed

A schedule is Scheduled, Running (a child is running) or Suspended. What deletion
needs (the artifact, its deletion policy, an interrupted verification's scratch
database and the server it is on, whether this is a schedule) is recorded in
status, so even a spec the operator can no longer read is cleaned up as asked.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from ...core.conditions import StatusBase
from ...core.destination import Destination
from ...core.fields import CronSchedule, GoDuration, TimeZone
from ...core.model import ApiModel, cel
from ...core.postgres import PostgresRef, TableRows
from ...core.resource import Column, Resource

__all__ = [
    "DATABASE_BACKUP",
    "BackupPhase",
    "BackupStep",
    "DatabaseBackupSpec",
    "DatabaseBackupStatus",
    "DeletionPolicy",
    "Retention",
    "Verification",
    "VerifyMethod",
]


class VerifyMethod(StrEnum):
    NONE = "none"
    """Trust the dump."""
    READABLE = "readable"
    """Check the artifact's sha256 and list its contents with `pg_restore --list`."""
    RESTORE = "restore"
    """Also restore it into a scratch database, compare every table's row count, drop it."""


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    """Deleting the object deletes its artifact."""
    RETAIN = "Retain"
    """The artifact stays on the volume after the object is deleted."""


class Retention(ApiModel):
    """Which children of a schedule are kept; the others are deleted with their artifacts."""

    last: Annotated[int, Field(ge=1, le=1000)] = 7
    """How many Completed backups to keep, newest first."""
    max_age: GoDuration | None = None
    """Delete backups older than this, e.g. 720h. The newest Completed one is always kept."""
    failed: Annotated[int, Field(ge=0, le=100)] = 3
    """How many Failed runs to keep for inspection, newest first (counted apart)."""


class DatabaseBackupSpec(ApiModel):
    """Back up one PostgreSQL database now, or on a schedule."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.schedule) || !has(self.keep)",
                    "keep applies only to a scheduled backup; set schedule or remove keep",
                ),
                cel(
                    "has(self.schedule) || !has(self.timeZone)",
                    "timeZone applies only to a scheduled backup; set schedule or remove it",
                ),
                cel(
                    "has(self.schedule) || !has(self.startingDeadline)",
                    "startingDeadline applies only to a scheduled backup",
                ),
                cel(
                    "has(self.schedule) || !has(self.suspend) || !self.suspend",
                    "suspend applies only to a scheduled backup",
                ),
                cel(
                    "has(self.schedule) || !has(self.failureThreshold)",
                    "failureThreshold applies only to a scheduled backup",
                ),
                cel(
                    "!has(self.failureThreshold) || "
                    "self.failureThreshold <= (has(self.keep) ? self.keep.failed : 3)",
                    "failureThreshold counts the Failed runs retention keeps: raise keep.failed "
                    "to at least failureThreshold",
                ),
                cel(
                    "has(self.schedule) == has(oldSelf.schedule)",
                    "a backup cannot switch between one-shot and scheduled; create a new one",
                ),
                cel(
                    "has(oldSelf.schedule) || self == oldSelf",
                    "a one-shot backup cannot be changed once created; create a new "
                    "DatabaseBackup instead",
                ),
            ]
        }
    }

    postgres: PostgresRef
    """The database to back up."""
    verify: VerifyMethod = VerifyMethod.READABLE
    """How the artifact is proven: none, readable (sha256 + pg_restore --list) or restore."""
    schedule: CronSchedule | None = None
    """Cron schedule, e.g. '0 2 * * *'. Each run is a child DatabaseBackup. Unset: once, now."""
    time_zone: TimeZone | None = None
    """IANA time zone of the schedule, e.g. Europe/Paris. Default UTC."""
    suspend: bool = False
    """Stop creating runs (a run in flight finishes)."""
    starting_deadline: GoDuration | None = None
    """A run missed (operator down, previous run still going) starts late only within this,
    e.g. 30m. Default 1h."""
    keep: Retention | None = None
    """Retention of the children. Default: the last 7 Completed and 3 Failed."""
    failure_threshold: Annotated[int, Field(ge=1, le=100)] | None = None
    """Schedule: this many runs failed in a row make it Stalled (kstatus Failed, Argo CD
    Degraded) until a run completes; fewer make it Degraded (reason LastRunFailed) but Ready.
    Default 3, and at most keep.failed (the Failed runs it can count)."""
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    """Delete (default) removes the artifact with the object; Retain leaves it on the volume."""
    destination: Destination | None = None
    """Where the artifact goes: the operator's volume (default) or S3-compatible storage."""


class BackupPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    SCHEDULED = "Scheduled"
    """A schedule waiting for its next run."""
    SUSPENDED = "Suspended"
    """A schedule with suspend: true."""


class BackupStep(StrEnum):
    DUMPING = "Dumping"
    VERIFYING = "Verifying"


class Verification(ApiModel):
    """How the artifact was proven."""

    method: VerifyMethod
    """none, readable or restore."""
    verified_at: datetime | None = None
    """When the proof finished."""
    toc_entries: int | None = None
    """Entries `pg_restore --list` found in the archive."""
    tables_compared: int | None = None
    """Tables whose row counts matched after restoring into the scratch database."""
    scratch_database: str | None = None
    """The scratch database used (dropped afterwards); recorded before it is created, so a
    deletion during the verification drops it too."""


class DatabaseBackupStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset({BackupPhase.COMPLETED, BackupPhase.FAILED})

    phase: BackupPhase | None = None
    """One-shot: Pending, Running, Completed or Failed. Schedule: Scheduled, Running or
    Suspended (Failed while its spec cannot be used)."""
    step: BackupStep | None = None
    """While Running: Dumping or Verifying."""
    attempt: int | None = None
    """Attempt number; a run interrupted by an operator restart is attempted again (up to 3)."""
    attempt_by: str | None = None
    """The operator process running the current attempt."""
    started_at: datetime | None = None
    """When the first attempt started."""
    completed_at: datetime | None = None
    """When it completed or failed."""
    duration: str | None = None
    """From start to completion, e.g. 1m32s."""
    location: str | None = None
    """Where the artifact is, e.g. file:///var/lib/runbook/backups/ns/name/20250101T020000Z.dump."""
    size_bytes: int | None = None
    """Size of the artifact in bytes."""
    size: str | None = None
    """Size for people, e.g. 1.2GiB."""
    sha256: str | None = None
    """SHA-256 of the dump, computed while it was written (before any encryption)."""
    retain_until: datetime | None = None
    """S3 Object Lock: the artifact cannot be deleted before this (the bucket refuses)."""
    encryption_key_id: str | None = None
    """The key (`<secret>/<key>`) that encrypted the artifact; restores decrypt with it."""
    server_version: str | None = None
    """PostgreSQL server version."""
    pg_dump_version: str | None = None
    """pg_dump version."""
    tables: list[TableRows] = Field(default_factory=list)
    """Rows per table, exact (counted in the dump's own snapshot)."""
    total_rows: int | None = None
    """Sum of tables[].rows."""
    verification: Verification | None = None
    """How the artifact was proven (see the Verified condition)."""
    last_schedule_time: datetime | None = None
    """Schedule: the last slot a run was created for (or skipped)."""
    next_schedule_time: datetime | None = None
    """Schedule: the next slot."""
    last_successful_time: datetime | None = None
    """Schedule: when the newest Completed child completed."""
    last_successful_backup: str | None = None
    """Schedule: the newest Completed child."""
    active: str | None = None
    """Schedule: the child running now."""
    consecutive_failures: int | None = None
    """Schedule: the newest runs that failed in a row (0 once one completes)."""
    last_failed_backup: str | None = None
    """Schedule: the newest Failed child while consecutiveFailures > 0."""
    scheduled: bool | None = None
    """Whether this is a schedule (spec.schedule set), as recorded by the operator: deleting
    a schedule leaves its children to Kubernetes' garbage collector."""
    deletion_policy: DeletionPolicy | None = None
    """spec.deletionPolicy as recorded when the backup started: whether deleting the object
    deletes the artifact (read from here, never from a spec that may no longer parse)."""
    destination: Destination | None = None
    """Where the artifact went, decided when the backup started: spec.destination, else the
    namespace's BackupDestination `default`, else the operator's volume. Restores, verification
    and deletion read it from here, so a later change of the default never moves it (a
    spec.destination, when set, always wins over this record)."""
    destination_from: str | None = None
    """Where that choice came from: spec.destination, BackupDestination default, or the
    operator's volume."""
    connection: PostgresRef | None = None
    """spec.postgres as recorded when the backup started (the Secret's name, never its
    values): the finalizer drops an interrupted verification's scratch database there."""

    def is_done(self) -> bool:
        """A one-shot backup that completed or failed; a schedule is never done."""
        return super().is_done() and not self.scheduled


DATABASE_BACKUP = Resource(
    kind="DatabaseBackup",
    plural="databasebackups",
    short_names=("dbbackup", "dbb"),
    spec=DatabaseBackupSpec,
    status=DatabaseBackupStatus,
    description=(
        "Back up a PostgreSQL database with pg_dump (custom format) to the operator's backup "
        "volume or S3-compatible object storage (optionally encrypted), with exact per-table "
        "row counts and a verified artifact; with a schedule, "
        "one child DatabaseBackup per run, pruned by retention."
    ),
    columns=(
        Column("Phase", ".status.phase"),
        Column("Database", ".spec.postgres.database"),
        Column("Schedule", ".spec.schedule"),
        Column("Size", ".status.size"),
        Column("Verified", ".status.conditions[?(@.type=='Verified')].status"),
        Column("Completed", ".status.completedAt", type="date"),
        Column("Next", ".status.nextScheduleTime", priority=1),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason", priority=1),
        Column("Location", ".status.location", priority=1),
    ),
)
