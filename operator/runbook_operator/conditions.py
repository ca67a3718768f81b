"""Transitional: conditions live in runbook_operator.core.conditions."""

from __future__ import annotations

from .core.conditions import (
    READY,
    RECONCILING,
    STALLED,
    find,
    is_true,
    progressing,
    ready,
    set_condition,
    stalled,
    to_wire,
    waiting,
)

__all__ = [
    "READY",
    "RECONCILING",
    "STALLED",
    "find",
    "is_true",
    "progressing",
    "ready",
    "set_condition",
    "stalled",
    "to_wire",
    "waiting",
]
