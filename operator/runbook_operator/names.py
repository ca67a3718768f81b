"""Transitional: names live in runbook_operator.core.names."""

from __future__ import annotations

from .core.names import ANNOTATION_PREFIX, FINALIZER, HOLD_ANNOTATION, MANAGED_BY_LABEL, holder_id

__all__ = ["ANNOTATION_PREFIX", "FINALIZER", "HOLD_ANNOTATION", "MANAGED_BY_LABEL", "holder_id"]
