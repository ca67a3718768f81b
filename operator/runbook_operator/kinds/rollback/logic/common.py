"""What every step of a Rollback shares: what was observed, the plan, one pass."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ....core.conditions import Condition, waiting
from ....core.events import Event
from ....core.holds import same_holder
from ....core.names import HOLD_ANNOTATION
from ....core.undo import (
    Observed,
    annotations_of,
    owned_replica_sets,
)
from ..api import (
    RollbackPhase,
    RollbackSpec,
    RollbackStatus,
    TargetState,
    TargetStatus,
)

Obj = dict[str, Any]


# --- the operation's steps ----------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One step: the I/O to do (at most one kind), then the status to write and the events.

    hold:     take the hold on these Deployments (all or none), then write `status`;
              if one is held by another operation, write `held(...)` instead.
    apply:    send this JSON patch to this Deployment, then write `status`.
    release:  release our hold on these Deployments and their ReplicaSets, then write `status`.
    evaluate: ask Prometheus, then write what `after_trigger(...)` returns.
    Otherwise just write `status` (None: nothing to write).
    """

    status: RollbackStatus | None
    events: tuple[Event, ...] = ()
    hold: tuple[str, ...] = ()
    apply: tuple[str, list[Obj]] | None = None
    release: tuple[str, ...] = ()
    evaluate: tuple[str, ...] = ()
    """The targets whose window is open."""


TERMINAL_PHASES = frozenset({RollbackPhase.COMPLETED, RollbackPhase.FAILED, RollbackPhase.REFUSED})
DONE_STATES = frozenset(
    {
        TargetState.COMPLETE,
        TargetState.ALREADY_AT_REVISION,
        TargetState.NOT_RECENT,
        TargetState.FAILED,
    }
)


@dataclass(frozen=True)
class Pass_:
    """The inputs of one pass, so helpers take one argument instead of six."""

    spec: RollbackSpec
    status: RollbackStatus
    observed: Mapping[str, Observed]
    holder: str
    generation: int | None
    now: datetime
    events: list[Event] = field(default_factory=list)
    instance: str = ""
    """The replica this pass runs in: beside a hold that the restore's own patch takes."""

    def seen(self, name: str) -> Observed:
        return self.observed.get(name) or Observed(None)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def conditions(self, helper: Any, reason: str, message: str) -> list[Condition]:
        result: list[Condition] = helper(
            self.status.conditions, reason, message, generation=self.generation, now=self.now
        )
        return result

    def write(self, **changes: Any) -> RollbackStatus:
        changes.setdefault("observed_generation", self.generation)
        changes.setdefault("targets_summary", summary(changes.get("targets", self.status.targets)))
        return self.status.model_copy(update=changes)


def summary(targets: Iterable[TargetStatus]) -> str:
    """One line for `kubectl get`: `backend 3→2, frontend 5→4` (or the state when undecided)."""
    parts = []
    for t in targets:
        if t.to_revision is not None and t.state != TargetState.NOT_RECENT:
            parts.append(f"{t.name} {t.from_revision}→{t.to_revision}")
        elif t.watched_revision is not None:
            parts.append(f"{t.name} watching {t.watched_revision}")
        else:
            parts.append(t.name)
    return ", ".join(parts)


def recorded_targets(p: Pass_) -> list[TargetStatus]:
    """The recorded targets, one per spec target, in spec order."""
    recorded = {t.name: t for t in p.status.targets}
    return [recorded.get(t.name) or TargetStatus(name=t.name) for t in p.spec.targets]


def waiting_plan(
    status: RollbackStatus,
    reason: str,
    message: str,
    *,
    warning: bool,
    generation: int | None,
    now: datetime,
) -> Plan:
    """Pending until someone else is done; an event only when the reason or message is new."""
    previous = next((c for c in status.conditions if c.type == "Ready"), None)
    events: tuple[Event, ...] = ()
    if previous is None or previous.reason != reason or previous.message != message:
        events = (Event("Warning" if warning else "Normal", reason, message),)
    update = {
        "phase": RollbackPhase.PENDING,
        "observed_generation": generation,
        "conditions": waiting(status.conditions, reason, message, generation=generation, now=now),
    }
    return Plan(status.model_copy(update=update), events)


def held(
    status: RollbackStatus, name: str, holder: str, *, generation: int | None, now: datetime
) -> Plan:
    """The plan when `name` turned out to be held by `holder`, another operation."""
    message = f"Deployment {name} is held by {holder}; the rollback starts when it is released"
    return waiting_plan(
        status, "WorkloadHeld", message, warning=True, generation=generation, now=now
    )


def holder_of(seen: Observed) -> str | None:
    return annotations_of(seen.deployment or {}).get(HOLD_ANNOTATION)


def marked(seen: Observed, holder: str) -> bool:
    """Whether our hold is still on the Deployment or one of its ReplicaSets.

    The Deployment controller copies the Deployment's annotations onto its
    ReplicaSets, so the hold lands there too; left behind, a later
    `kubectl rollout undo` would copy it back onto the Deployment."""
    if seen.deployment is None:
        return False
    if same_holder(holder_of(seen), holder):
        return True
    owned = owned_replica_sets(seen.deployment, seen.replica_sets)
    return any(same_holder(annotations_of(rs).get(HOLD_ANNOTATION), holder) for rs in owned)
