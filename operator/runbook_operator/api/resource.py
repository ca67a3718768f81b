"""Transitional: Resource lives in runbook_operator.core.resource."""

from __future__ import annotations

from ..core.resource import CATEGORY, Column, Resource

__all__ = ["CATEGORY", "Column", "Resource"]
