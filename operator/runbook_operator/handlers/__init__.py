"""Thin Kopf glue: observe -> logic -> act -> status. Importing registers the handlers."""

from __future__ import annotations

from . import lifecycle, maintenancewindow, rollback

__all__ = ["lifecycle", "maintenancewindow", "rollback"]
