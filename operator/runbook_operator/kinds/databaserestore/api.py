"""DatabaseRestore: the runbook's disaster recovery, refused unless clearly intended.

It restores a DatabaseBackup (or a schedule's newest verified child) into the
backup's database or a new one, only while a MaintenanceWindow is Active in
the namespace or with `confirm` set to the target database's name. Before
overwriting a database that exists it backs that database up (a DatabaseBackup
named `<restore>-pre-restore-<uid>`), so the restore itself can be undone. The
restore runs in one transaction, and is Ready only when every table has the
row count the backup recorded.

Life of a restore (Failed ends it at any step, with the reason):

    [Pending | Blocked] -> Running (SafetyBackup -> Restoring) -> Completed

Blocked (not allowed, or no usable backup) and Pending (its backup is still running)
are looked at again whenever what they wait for changes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from ...core.conditions import StatusBase
from ...core.fields import ObjectName
from ...core.model import ApiModel, immutable
from ...core.postgres import DatabaseName, PostgresRef
from ...core.resource import Column, Resource

__all__ = [
    "DATABASE_RESTORE",
    "DatabaseRestoreSpec",
    "DatabaseRestoreStatus",
    "RestorePhase",
    "RestoreStep",
    "TableCheck",
]


class DatabaseRestoreSpec(ApiModel):
    """Restore a backup into a database."""

    backup: Annotated[
        ObjectName, Field(json_schema_extra={"x-kubernetes-validations": [immutable("backup")]})
    ]
    """A DatabaseBackup in this namespace. For a scheduled one, its newest Completed child
    whose artifact was verified."""
    target_database: (
        Annotated[
            DatabaseName,
            Field(json_schema_extra={"x-kubernetes-validations": [immutable("targetDatabase")]}),
        ]
        | None
    ) = None
    """The database to restore into, on the backup's server. Default: the backup's own
    database. Created when it does not exist; objects in the backup are replaced when it does."""
    confirm: Annotated[str, Field(max_length=63)] | None = None
    """The target database's name, typed out, to restore outside an Active MaintenanceWindow."""
    safety_backup: bool = True
    """Back up the target database first when it exists (DatabaseBackup <name>-pre-restore)."""


class RestorePhase(StrEnum):
    PENDING = "Pending"
    BLOCKED = "Blocked"
    """Not allowed or not possible yet; the Ready condition says why."""
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    """Not run: the same run (spec.runId, or the spec of an object Git manages) ran
    already under this name; created again, most likely by Git."""


class RestoreStep(StrEnum):
    SAFETY_BACKUP = "SafetyBackup"
    RESTORING = "Restoring"


class TableCheck(ApiModel):
    """One table: rows in the backup and after the restore."""

    schema_: Annotated[str, Field(alias="schema")]
    """Schema, e.g. public."""
    name: str
    """Table."""
    expected: int
    """Rows the backup recorded."""
    restored: int | None = None
    """Rows after the restore; unset when the table is missing."""


class DatabaseRestoreStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset(
        {RestorePhase.COMPLETED, RestorePhase.FAILED, RestorePhase.SKIPPED}
    )

    phase: RestorePhase | None = None
    """Pending, Blocked, Running, Completed or Failed."""
    step: RestoreStep | None = None
    """While Running: SafetyBackup or Restoring."""
    attempt: int | None = None
    """Attempt number; a restore interrupted by an operator restart is attempted again."""
    attempt_by: str | None = None
    """The operator process running the current attempt."""
    backup: str | None = None
    """The DatabaseBackup restored (a schedule's child when spec.backup is a schedule), once
    known."""
    location: str | None = None
    """Its artifact."""
    sha256: str | None = None
    """The artifact's recorded SHA-256, checked before restoring."""
    database: str | None = None
    """The target database, once known."""
    connection: PostgresRef | None = None
    """The target's server and login (the backup's spec.postgres with the target database;
    the Secret's name, never its values), recorded before any change: the safety backup and
    the restore use it."""
    target_existed: bool | None = None
    """Whether the target database existed before the restore (recorded before any change)."""
    authorized_by: str | None = None
    """What allowed the restore: MaintenanceWindow/<name>, or confirm."""
    safety_backup: str | None = None
    """The DatabaseBackup of the target taken before the restore."""
    started_at: datetime | None = None
    """When the restore started."""
    completed_at: datetime | None = None
    """When it completed or failed."""
    duration: str | None = None
    """From start to completion, e.g. 45s."""
    tables: list[TableCheck] = Field(default_factory=list)
    """Every table of the backup: expected and restored row counts."""
    mismatched_tables: int | None = None
    """Tables whose restored row count differs from the backup's."""


DATABASE_RESTORE = Resource(
    kind="DatabaseRestore",
    plural="databaserestores",
    short_names=("dbrestore", "dbr"),
    spec=DatabaseRestoreSpec,
    status=DatabaseRestoreStatus,
    one_shot=True,
    description=(
        "Restore a DatabaseBackup into its database or a new one, only inside an Active "
        "MaintenanceWindow or with a typed confirmation, after a safety backup, in one "
        "transaction, checked table by table against the backup's row counts."
    ),
    columns=(
        Column("Phase", ".status.phase"),
        Column("Backup", ".spec.backup"),
        Column("Database", ".status.database"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
        Column("Restoring", ".status.backup", priority=1),
        Column("Authorized", ".status.authorizedBy", priority=1),
        Column("Safety Backup", ".status.safetyBackup", priority=1),
    ),
)
