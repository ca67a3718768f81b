"""Thin Kopf glue: observe -> logic -> act -> status. Importing registers the handlers."""

from __future__ import annotations

from . import (
    databasebackup,
    databaserestore,
    lifecycle,
)

__all__ = [
    "databasebackup",
    "databaserestore",
    "lifecycle",
]
