"""Thin Kopf glue: observe -> logic -> act -> status. Importing registers the handlers."""

from __future__ import annotations

from . import emergencyscale, lifecycle, maintenancewindow, rollback

__all__ = ["emergencyscale", "lifecycle", "maintenancewindow", "rollback"]
