"""Pure decisions of a Rollback: (spec, recorded status, observed, now) -> the next step.

Phases: Pending -> RollingBack -> Completed | Failed, or Refused before any
change; with a trigger, Armed first. The decision (which ReplicaSet each
Deployment goes back to, from which revision and images) is recorded in status
before anything changes, and never recomputed: after a crash the recorded
ReplicaSet's template is restored, or found already restored, so a restart
never applies a second rollback (which would undo the undo). One template is
restored per pass; everything else is re-derived from status and the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ....core.events import Event
from ....core.undo import GITOPS_MANAGED, Observed
from ..api import RollbackPhase, RollbackSpec, RollbackStatus
from .armed import after_trigger, arm, watch
from .common import (
    TERMINAL_PHASES,
    Pass_,
    Plan,
    held,
    marked,
    summary,
)
from .pending import hold_with_restore, start
from .rolling import roll

__all__ = [
    "GITOPS_MANAGED",
    "TERMINAL_PHASES",
    "Event",
    "Observed",
    "Plan",
    "after_trigger",
    "held",
    "hold_with_restore",
    "marked",
    "reconcile",
    "summary",
]


def reconcile(
    spec: RollbackSpec,
    status: RollbackStatus,
    observed: Mapping[str, Observed],
    *,
    holder: str,
    generation: int | None,
    now: datetime,
    instance: str = "",
) -> Plan:
    """The next step of a Rollback, from its spec, its recorded status and what was observed."""
    p = Pass_(spec, status, observed, holder, generation, now, instance=instance)
    if status.phase in TERMINAL_PHASES:
        if status.observed_generation != generation:
            return Plan(p.write())
        return Plan(None)
    if status.phase == RollbackPhase.ARMED:
        return watch(p)
    if status.phase == RollbackPhase.ROLLING_BACK:
        return roll(p)
    if status.phase is None and spec.trigger is not None:
        return arm(p)
    return start(p)
