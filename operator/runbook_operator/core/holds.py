"""When a workload's hold annotation no longer means anything.

The hold annotation (`ops.mailscore.com/held-by: Kind/name/uid`) can outlive its
operation: the Deployment controller copies a Deployment's annotations onto
its ReplicaSets, and `kubectl rollout undo` copies them back, so an old hold
can reappear on a Deployment long after it was released. A hold whose
operation is gone, or has finished, is stale and may be taken over; so is one whose
uid is not that of the object now under that name (it was deleted and created again).
"""

from __future__ import annotations

from typing import Any

from .resource import Resource, by_kind

__all__ = ["hold_is_stale", "parse_holder", "same_holder"]


def parse_holder(holder: str) -> tuple[Resource, str, str] | None:
    """`Kind/name/uid` (or `Kind/name`, uid "") -> (its Resource, name, uid), or None when
    it names no kind of ours."""
    kind, _, rest = holder.partition("/")
    name, _, uid = rest.partition("/")
    resource = by_kind(kind)
    return (resource, name, uid) if resource is not None and name else None


def hold_is_stale(resource: Resource, holder_obj: dict[str, Any] | None, uid: str = "") -> bool:
    """True when the holding operation no longer exists (or another object of the same
    name does: another uid) or has finished."""
    if holder_obj is None:
        return True
    if uid and (holder_obj.get("metadata") or {}).get("uid") != uid:
        return True
    if (holder_obj.get("metadata") or {}).get("deletionTimestamp"):
        return False  # still putting things back; its finalizer releases the hold
    phase = (holder_obj.get("status") or {}).get("phase")
    return phase in resource.status.TERMINAL


def same_holder(value: str | None, holder: str) -> bool:
    """Whether a hold's value names this operation (`holder`, names.holder_id).

    A hold taken before holds carried the uid reads `Kind/name`: it is taken to be the
    operation of that kind and name, as it was then, so an operation in flight while the
    operator is upgraded keeps its holds and still puts back what it changed."""
    if value is None:
        return False
    if value == holder:
        return True
    return value.count("/") == 1 and holder.count("/") == 2 and holder.rsplit("/", 1)[0] == value
