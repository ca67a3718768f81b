"""When a workload's hold annotation no longer means anything.

The hold annotation (`ops.mailscore.com/held-by: Kind/name`) can outlive its
operation: the Deployment controller copies a Deployment's annotations onto
its ReplicaSets, and `kubectl rollout undo` copies them back, so an old hold
can reappear on a Deployment long after it was released. A hold whose
operation is gone, or has finished, is stale and may be taken over.
"""

from __future__ import annotations

from typing import Any

from ..api import RESOURCES

__all__ = ["FINISHED_PHASES", "hold_is_stale", "parse_holder"]

FINISHED_PHASES = frozenset({"Completed", "Failed", "Cancelled", "Refused"})
"""Phases after which an operation holds nothing any more."""

_PLURALS = {r.kind: r.plural for r in RESOURCES}


def parse_holder(holder: str) -> tuple[str, str] | None:
    """`Kind/name` -> (plural, name), or None when it names no kind of ours."""
    kind, _, name = holder.partition("/")
    plural = _PLURALS.get(kind)
    return (plural, name) if plural and name else None


def hold_is_stale(holder_obj: dict[str, Any] | None) -> bool:
    """True when the holding operation no longer exists or has finished."""
    if holder_obj is None:
        return True
    if (holder_obj.get("metadata") or {}).get("deletionTimestamp"):
        return False  # still putting things back; its finalizer releases the hold
    phase = (holder_obj.get("status") or {}).get("phase")
    return phase in FINISHED_PHASES
