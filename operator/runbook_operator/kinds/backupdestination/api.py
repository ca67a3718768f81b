"""BackupDestination: a team sets its backups' destination once, per namespace.

The one named `default` is used by every DatabaseBackup (and every run of a schedule, and
every safety backup of a restore) of its namespace whose spec has no destination. Its
spec is exactly a DatabaseBackup's `spec.destination` (the core's model), so the two can
never drift apart. A backup records the destination it used when it starts; changing
or deleting this object later never moves an existing backup's artifact.
"""

from __future__ import annotations

from typing import ClassVar

from ...core.conditions import StatusBase
from ...core.destination import DEFAULT_NAME, Destination
from ...core.model import cel
from ...core.resource import Column, Resource

__all__ = ["BACKUP_DESTINATION", "BackupDestinationSpec", "BackupDestinationStatus"]

BackupDestinationSpec = Destination


class BackupDestinationStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset()

    target: str | None = None
    """Where backups go, e.g. volume or s3://bucket/prefix, for `kubectl get`."""
    default: bool | None = None
    """Whether this is the namespace's default (only the one named `default` is)."""


BACKUP_DESTINATION = Resource(
    kind="BackupDestination",
    plural="backupdestinations",
    short_names=("backupdest", "bdest"),
    spec=BackupDestinationSpec,
    status=BackupDestinationStatus,
    operation=False,
    description=(
        "Where the DatabaseBackups of a namespace go when their spec names no destination: "
        f"the operator's volume or S3-compatible storage. Only the one named {DEFAULT_NAME} "
        "is used. A backup records the destination it used when it starts, so changing "
        "this later never moves an existing backup's artifact."
    ),
    spec_rules=(
        cel(
            "has(self.volume) || has(self.s3)",
            "a BackupDestination needs a destination: set volume: {} or s3",
        ),
    ),
    columns=(
        Column("Target", ".status.target"),
        Column("Default", ".status.default", type="boolean"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
        Column("Message", ".status.conditions[?(@.type=='Ready')].message", priority=1),
    ),
)
