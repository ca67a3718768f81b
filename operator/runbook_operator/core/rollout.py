"""`kubectl rollout status`, once, for every kind that waits for a rollout.

A rollout is complete when the Deployment controller has seen the latest spec and
every replica is updated and available with no old one left; it has failed when
the controller says the progress deadline was exceeded (`ProgressDeadlineExceeded`).
A deadline exceeded before the caller's change does not count (the controller keeps
that condition until the new template makes progress): then the deadline is counted
from `since`. Also the Deployment's label selector as a selector string, with
matchExpressions, for listing what it owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "Rollout",
    "controller_behind",
    "label_selector",
    "parse_time",
    "progressing_condition",
    "rollout_status",
]

Obj = dict[str, Any]
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
DEFAULT_PROGRESS_DEADLINE = 600


@dataclass(frozen=True)
class Rollout:
    done: bool
    failed: bool
    message: str


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def progressing_condition(deployment: Obj) -> Obj:
    conditions = (deployment.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Progressing"), {})


def controller_behind(deployment: Obj) -> bool:
    """The Deployment controller has not yet seen the latest spec."""
    status = deployment.get("status") or {}
    return bool(
        (_meta(deployment).get("generation") or 0) > (status.get("observedGeneration") or 0)
    )


def rollout_status(deployment: Obj, since: datetime | None, now: datetime) -> Rollout:
    """Where a Deployment's rollout stands, in `kubectl rollout status`'s words."""
    name = _meta(deployment).get("name")
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    if controller_behind(deployment):
        return Rollout(False, False, "waiting for the Deployment controller to see the change")
    if _timed_out(deployment, since, now):
        return Rollout(False, True, f"Deployment {name} exceeded its progress deadline")
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    total = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < wanted:
        return Rollout(False, False, f"{updated} out of {wanted} new replicas have been updated")
    if total > updated:
        return Rollout(False, False, f"{total - updated} old replicas are pending termination")
    if available < updated:
        return Rollout(False, False, f"{available} of {updated} updated replicas are available")
    return Rollout(True, False, f"Deployment {name} successfully rolled out")


def _timed_out(deployment: Obj, since: datetime | None, now: datetime) -> bool:
    condition = progressing_condition(deployment)
    if condition.get("reason") != TIMED_OUT_REASON:
        return False
    updated = parse_time(condition.get("lastUpdateTime"))
    if since is None or updated is None:
        return True
    if updated >= since.replace(microsecond=0):
        return True
    deadline = (deployment.get("spec") or {}).get(
        "progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE
    )
    return now >= since + timedelta(seconds=deadline)


def label_selector(workload: Obj) -> str:
    """A workload's spec.selector as a label-selector string (matchLabels and
    matchExpressions), for listing the ReplicaSets or pods it selects."""
    selector = (workload.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            parts.append(f"{key} {operator.lower()} ({','.join(values or [])})")
    return ",".join(parts)
