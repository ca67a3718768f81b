"""Deleting a MaintenanceWindow: undo what it did, from status alone.

The spec may be one the operator can no longer read (edited into something invalid);
the originals, the plan and the steps done are in status, and so is everything the
undo needs. The undo steps are the end steps for what may have begun (steps.end_plan),
without the waits (rollouts, health check): nobody is left to read their verdict.
Each is recorded as it is done, so a crash repeats at most the one in flight.
"""

from __future__ import annotations

from datetime import datetime

from ....core.conditions import progressing
from ....core.events import NORMAL, WARNING, Event
from ..api import EndingReason, MaintenanceWindowStatus, StepRecord, WindowPhase
from .lifecycle import FINAL, UNDER_WAY, Pass, Work, WorkKind
from .steps import Outcome, Step, end_plan

__all__ = ["after_undo", "deletion"]


def _undo_steps(s: MaintenanceWindowStatus) -> list[Step]:
    done = {r.name for r in s.steps}
    return end_plan(s.plan, done, deleting=True, health_check=False, was_active=False)


def deletion(status: MaintenanceWindowStatus, generation: int | None, now: datetime) -> Pass:
    """The next undo step of a window being deleted (finished=True: nothing is left)."""
    s = status.model_copy(deep=True)
    phase = s.phase or WindowPhase.PENDING
    if phase not in UNDER_WAY:
        work = Work(WorkKind.RELEASE_STRAY_HOLDS) if phase not in FINAL else None
        return Pass(s, work, finished=True)
    events: tuple[Event, ...] = ()
    if phase != WindowPhase.ENDING or s.ending_reason != EndingReason.DELETED:
        s.phase, s.ending_at, s.ending_reason = WindowPhase.ENDING, now, EndingReason.DELETED
        events = (Event(NORMAL, "Ending", "Deleted; putting every original back."),)
    done = {r.name for r in s.steps}
    step = next((st for st in _undo_steps(s) if st not in done), None)
    if step is None:
        s.ended_at, s.last_error = now, None
        message = "Every original is back; the window can be deleted."
        return Pass(s, events=(*events, Event(NORMAL, "Restored", message)), finished=True)
    text = f"Ending (Deleted): next {step}."
    s.conditions = progressing(s.conditions, step, text, generation=generation, now=now)
    return Pass(s, Work(WorkKind.STEP, step), events)


def after_undo(p: Pass, step: Step, outcome: Outcome, now: datetime) -> Pass:
    """Record one undo step: done (with drift), failed for good (recorded, go on), or an
    error (kept in lastError; the finalizer tries again)."""
    s = p.status
    if outcome.error is not None:
        repeat = outcome.error == s.last_error
        s.last_error = outcome.error
        failed = [] if repeat else [Event(WARNING, "StepFailed", f"{step}: {outcome.error}")]
        return Pass(s, events=(*p.events, *failed))
    s.last_error = None
    if outcome.failed is not None:
        s.failure = f"{s.failure} {outcome.failed}".strip() if s.failure else outcome.failed
        s.steps = [*s.steps, StepRecord(name=step, at=now, message=f"failed: {outcome.failed}")]
        return Pass(s, events=(*p.events, Event(WARNING, f"{step}Failed", outcome.failed)))
    s = s.model_copy(update=dict(outcome.updates))
    s.steps = [*s.steps, StepRecord(name=step, at=now, message=outcome.message)]
    done = [Event(NORMAL, step, outcome.message)]
    done += [Event(WARNING, "Drift", d) for d in outcome.drift]
    return Pass(s, events=(*p.events, *done))
