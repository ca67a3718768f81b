"""The draft of one step's status, for the kinds that decide one step at a time (pure).

Restart and ImageUpdate (and any kind shaped like them) decide each step from (spec,
status, what they saw, now): the status to write before the change it records. Their
logic builds that next status with a `Draft`: conditions by kstatus state, the
observedGeneration, and the kind's one-line summary column, always brought up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from .conditions import Conditions, StatusBase, with_state
from .events import WARNING, Event

__all__ = ["HELD", "Draft", "State", "held"]

S = TypeVar("S", bound=StatusBase)
State = Literal["progressing", "waiting", "ready", "stalled"]
HELD = "WorkloadHeld"
"""The reason while another operation holds a workload this one changes."""


@dataclass
class Draft(Generic[S]):
    """The status as this step found it, and the means to write the next one."""

    status: S
    generation: int | None
    now: datetime

    def conditions(self, state: State, reason: str, message: str) -> Conditions:
        """The conditions of a kstatus state (core.conditions), with this reason and words."""
        return with_state(
            self.status.conditions, state, reason, message, generation=self.generation, now=self.now
        )

    def write(self, **changes: Any) -> S:
        """The status with these changes, at this generation, summed up again."""
        changes.setdefault("observed_generation", self.generation)
        return self.summed(self.status.model_copy(update=changes))

    def summed(self, status: S) -> S:
        """The kind's one-line summary column brought up to date (a subclass's)."""
        return status


def held(draft: Draft[S], phase: StrEnum, message: str) -> tuple[S, list[Event]]:
    """Waiting while another operation holds a workload: the status, and an event only
    when the message is news (a pass that finds it still held says nothing again)."""
    old = draft.status.condition("Ready")
    status = draft.write(phase=phase, conditions=draft.conditions("waiting", HELD, message))
    news = old is None or (old.reason, old.message) != (HELD, message)
    return status, [Event(WARNING, HELD, message)] if news else []
