"""Who asked, as the API server authenticated them: what admission stamped on the object.

The MutatingAdmissionPolicies in deploy/admission/ write these annotations; a client
cannot: whatever it sends is overwritten at creation and put back on every update. So
the operator reads identity only from here (never from a spec field a client wrote, nor
from field managers, which are the client's own say-so), copies it into
`status.requestedBy` before it changes anything, and names it in events.

Without the admission policies installed nothing is stamped: the requester is then
unknown, and a MaintenanceWindow's approvals do not count (nothing proves who gave them).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .model import ApiModel

__all__ = [
    "CANCELLED_BY",
    "PLAN_REVISION",
    "REQUESTED_BY",
    "REQUESTED_BY_GROUPS",
    "RequestedBy",
    "cancelled_by",
    "plan_revision",
    "requested_by",
    "split_groups",
]

REQUESTED_BY = "ops.mailscore.com/requested-by"
"""The user name that created the object."""
REQUESTED_BY_GROUPS = "ops.mailscore.com/requested-by-groups"
"""Their groups at that moment, comma-separated."""
CANCELLED_BY = "ops.mailscore.com/cancelled-by"
"""The user name that set a MaintenanceWindow's spec.cancel."""
PLAN_REVISION = "ops.mailscore.com/plan-revision"
"""How many versions of what a MaintenanceWindow will do there have been (1 at creation)."""

Obj = dict[str, Any]


class RequestedBy(ApiModel):
    """The requester as the API server authenticated them (stamped by admission)."""

    user: Annotated[str, Field(max_length=1024)]
    """User name, e.g. alice@example.com or system:serviceaccount:ci:deployer."""
    groups: list[Annotated[str, Field(max_length=1024)]] = Field(default_factory=list)
    """Groups, e.g. sre, system:authenticated."""


def split_groups(joined: str | None) -> list[str]:
    """'a,b' -> ['a', 'b'] (as admission joins them); empty parts dropped."""
    return [g for g in (joined or "").split(",") if g]


def _annotations(obj: Obj) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    return dict(meta.get("annotations") or {})


def requested_by(obj: Obj) -> RequestedBy | None:
    """Who created the object; None when admission stamped nothing."""
    notes = _annotations(obj)
    user = notes.get(REQUESTED_BY)
    if not user:
        return None
    return RequestedBy(user=user, groups=split_groups(notes.get(REQUESTED_BY_GROUPS)))


def cancelled_by(obj: Obj) -> str | None:
    return _annotations(obj).get(CANCELLED_BY) or None


def plan_revision(obj: Obj) -> int | None:
    """The stamped plan revision; None when there is none (or it is not a number)."""
    raw = _annotations(obj).get(PLAN_REVISION)
    try:
        return int(raw) if raw else None
    except ValueError:
        return None
