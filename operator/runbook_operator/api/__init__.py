"""The custom resources' models: the schema's single source.

Every kind lives in its own module and declares one `Resource`; `RESOURCES`
lists them for `crdgen` and the operator.
"""

from __future__ import annotations

from .common import GROUP, VERSION
from .databasebackup import DATABASE_BACKUP
from .databaserestore import DATABASE_RESTORE
from .emergencyscale import EMERGENCY_SCALE
from .maintenancewindow import MAINTENANCE_WINDOW
from .resource import CATEGORY, Resource
from .rollback import ROLLBACK

__all__ = ["CATEGORY", "GROUP", "RESOURCES", "VERSION", "Resource"]

RESOURCES: tuple[Resource, ...] = (
    DATABASE_BACKUP,
    DATABASE_RESTORE,
    EMERGENCY_SCALE,
    MAINTENANCE_WINDOW,
    ROLLBACK,
)
