"""The custom resources' models: the schema's single source.

Every kind lives in its own module and declares one `Resource`; `RESOURCES`
lists them for `crdgen` and the operator.
"""

from __future__ import annotations

from .common import GROUP, VERSION
from .databasebackup import DATABASE_BACKUP
from .databaserestore import DATABASE_RESTORE
from .resource import CATEGORY, Resource

__all__ = ["CATEGORY", "GROUP", "RESOURCES", "VERSION", "Resource"]

from ..kinds import RESOURCES as _NEW

RESOURCES: tuple[Resource, ...] = (
    *_NEW,
    DATABASE_BACKUP,
    DATABASE_RESTORE,
)
