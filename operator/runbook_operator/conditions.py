"""kstatus-compatible conditions, built in one place.

The rules (https://github.com/kubernetes-sigs/cli-utils, kstatus):
- `Ready` is True only when the object reached its goal.
- `Reconciling` is True while work is in flight, and absent (or False) otherwise.
- `Stalled` is True when it cannot progress without a human; then Ready is False.
- Every condition carries the generation it was computed from, and
  `lastTransitionTime` changes only when `status` changes.

Functions here are pure: they take the current list and return a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .api.common import Condition, ConditionStatus

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

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"

Conditions = list[Condition]


def find(conditions: Iterable[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Iterable[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.status == ConditionStatus.TRUE


def set_condition(
    conditions: Iterable[Condition],
    type_: str,
    status: bool | ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Conditions:
    """Set one condition, keeping its transition time unless its status changes."""
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    current = list(conditions)
    old = find(current, type_)
    transition = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    if old is None:
        return [*current, new]
    return [new if c.type == type_ else c for c in current]


def _remove(conditions: Iterable[Condition], type_: str) -> Conditions:
    return [c for c in conditions if c.type != type_]


def progressing(
    conditions: Iterable[Condition],
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Conditions:
    """Work in flight: Reconciling=True, Ready=False, no Stalled."""
    out = set_condition(
        conditions, RECONCILING, True, reason, message, generation=generation, now=now
    )
    out = set_condition(out, READY, False, reason, message, generation=generation, now=now)
    return _remove(out, STALLED)


def waiting(
    conditions: Iterable[Condition],
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Conditions:
    """Nothing to do until a time or a signal: Ready=False, neither Reconciling nor Stalled."""
    out = set_condition(conditions, READY, False, reason, message, generation=generation, now=now)
    return _remove(_remove(out, RECONCILING), STALLED)


def ready(
    conditions: Iterable[Condition],
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Conditions:
    """Goal reached: Ready=True, no Reconciling, no Stalled."""
    out = set_condition(conditions, READY, True, reason, message, generation=generation, now=now)
    return _remove(_remove(out, RECONCILING), STALLED)


def stalled(
    conditions: Iterable[Condition],
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Conditions:
    """Cannot progress without a human: Stalled=True, Ready=False, no Reconciling."""
    out = set_condition(conditions, STALLED, True, reason, message, generation=generation, now=now)
    out = set_condition(out, READY, False, reason, message, generation=generation, now=now)
    return _remove(out, RECONCILING)


def to_wire(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    return [c.wire() for c in conditions]
