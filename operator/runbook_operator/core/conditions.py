"""Status conditions in the metav1.Condition shape, kstatus-compatible, built in one place.

The rules (https://github.com/kubernetes-sigs/cli-utils, kstatus):
- `Ready` is True only when the object reached its goal.
- `Reconciling` is True while work is in flight, and absent (or False) otherwise.
- `Stalled` is True when it cannot progress without a human; then Ready is False.
- `Degraded` is True when a recurring operation goes on but its last run failed; Argo
  CD's health checks read it, kstatus and Flux do not (Ready and Stalled decide those).
- Every condition carries the generation it was computed from, and
  `lastTransitionTime` changes only when `status` changes.

`StatusBase` is what every kind's status starts from; its predicates (`is_done`,
`is_ready`) are asked here, never spelled out as phase tuples in handlers. The
functions are pure: they take the current list and return a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import Field

from .model import ApiModel

__all__ = [
    "DEGRADED",
    "READY",
    "RECONCILING",
    "STALLED",
    "Condition",
    "ConditionStatus",
    "StatusBase",
    "find",
    "is_true",
    "progressing",
    "ready",
    "set_condition",
    "stalled",
    "waiting",
    "with_degraded",
    "with_state",
]

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
DEGRADED = "Degraded"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """The fields of metav1.Condition, so kstatus, Flux and `kubectl wait` read them."""

    type: Annotated[str, Field(max_length=316)]
    """Type of condition in CamelCase, e.g. Ready, Reconciling, Stalled."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, Field(max_length=1024)]
    """A CamelCase word for programs."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """A sentence for people."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: int | None = None
    """The .metadata.generation the condition was computed from."""


class StatusBase(ApiModel):
    """Status fields every resource has, and the questions every handler asks of them."""

    TERMINAL: ClassVar[frozenset[str]] = frozenset()
    """Phases after which the operation does nothing more (set by each kind)."""

    phase: str | None = None
    """Where the operation stands; see the kind's description for the values."""
    observed_generation: int | None = None
    """The .metadata.generation the operator last acted on."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, Reconciling and Stalled (kstatus), and kind-specific ones."""

    def is_done(self) -> bool:
        """Finished for good: nothing more will happen to this operation."""
        return self.phase is not None and self.phase in self.TERMINAL

    def is_ready(self) -> bool:
        return is_true(self.conditions, READY)

    def condition(self, type_: str) -> Condition | None:
        return find(self.conditions, type_)

    def message(self, type_: str = READY) -> str:
        found = find(self.conditions, type_)
        return found.message if found is not None else ""


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


def _remove(conditions: Iterable[Condition], *types: str) -> Conditions:
    return [c for c in conditions if c.type not in types]


class StateSetter(Protocol):
    """Conditions of one kstatus state, with the reason and message of the moment."""

    def __call__(
        self,
        conditions: Iterable[Condition],
        reason: str,
        message: str,
        *,
        generation: int | None,
        now: datetime,
    ) -> Conditions: ...


def _state(sets: tuple[tuple[str, bool], ...], removes: tuple[str, ...]) -> StateSetter:
    def apply(
        conditions: Iterable[Condition],
        reason: str,
        message: str,
        *,
        generation: int | None,
        now: datetime,
    ) -> Conditions:
        out = list(conditions)
        for type_, value in sets:
            out = set_condition(out, type_, value, reason, message, generation=generation, now=now)
        return _remove(out, *removes)

    return apply


progressing = _state(((RECONCILING, True), (READY, False)), (STALLED,))
"""Work in flight: Reconciling=True, Ready=False, no Stalled."""
waiting = _state(((READY, False),), (RECONCILING, STALLED))
"""Nothing to do until a time or a signal: Ready=False, neither Reconciling nor Stalled."""
ready = _state(((READY, True),), (RECONCILING, STALLED))
"""Goal reached: Ready=True, no Reconciling, no Stalled."""
stalled = _state(((STALLED, True), (READY, False)), (RECONCILING,))
"""Cannot progress without a human: Stalled=True, Ready=False, no Reconciling."""

_STATES = {"progressing": progressing, "waiting": waiting, "ready": ready, "stalled": stalled}


def with_state(
    conditions: Iterable[Condition],
    state: str,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Conditions:
    """One of the four kstatus states by name: progressing, waiting, ready or stalled."""
    return _STATES[state](conditions, reason, message, generation=generation, now=now)


def with_degraded(
    conditions: Iterable[Condition],
    reason: str | None,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Conditions:
    """Degraded=True with `reason`, or no Degraded condition at all when `reason` is None."""
    if reason is None:
        return _remove(conditions, DEGRADED)
    return set_condition(
        conditions, DEGRADED, True, reason, message, generation=generation, now=now
    )


def to_wire(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    return [c.wire() for c in conditions]
