"""Every kind, one package each; kinds never import each other (import-linter keeps it so).

Only the operator's entry points import this package: `KINDS` are the handlers the
runtime registers, `RESOURCES` the CRDs `crdgen` renders.
"""

from __future__ import annotations

from ..core.kind import Kind
from ..core.resource import Resource
from .backupdestination.handlers import BackupDestinationKind
from .cacheflush.handlers import CacheFlushKind
from .databasebackup.handlers import DatabaseBackupKind
from .databaserestore.handlers import DatabaseRestoreKind
from .emergencyscale.handlers import EmergencyScaleKind
from .healthreport.handlers import HealthReportKind
from .imageupdate.handlers import ImageUpdateKind
from .maintenancewindow.handlers import MaintenanceWindowKind
from .notifier.handlers import NotifierKind
from .restart.handlers import RestartKind
from .rollback.handlers import RollbackKind

__all__ = ["KINDS", "RESOURCES"]


def kinds() -> list[Kind]:
    """A fresh set of every kind's handlers, with their real adapters."""
    return [
        BackupDestinationKind(),
        CacheFlushKind(),
        DatabaseBackupKind(),
        DatabaseRestoreKind(),
        EmergencyScaleKind(),
        HealthReportKind(),
        ImageUpdateKind(),
        MaintenanceWindowKind(),
        NotifierKind(),
        RestartKind(),
        RollbackKind(),
    ]


KINDS = kinds
RESOURCES: tuple[Resource, ...] = tuple(r for k in kinds() for r in (k.resource, *k.policies))
