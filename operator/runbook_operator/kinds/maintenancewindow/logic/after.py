"""A MaintenanceWindow's decisions on what the handler saw: the checklist, one step's
outcome, a silence extended, stray holds released; and a spec that cannot be used.

Each takes the `Pass` that lifecycle.advance() returned and the handler's observation,
and returns the next Pass: the status to write, the events, and the next work.
"""

from __future__ import annotations

from datetime import datetime

from ....core.conditions import READY, find, set_condition, stalled
from ....core.events import NORMAL, WARNING, Event
from ....core.fields import parse_duration, span
from ..api import EndingReason, MaintenanceWindowStatus, StepRecord, WindowPhase
from .lifecycle import (
    ERROR_GRACE,
    Pass,
    Window,
    Work,
    WorkKind,
    begin_ending,
    block,
    ending,
    set_ready,
    starting,
    step_began,
    when,
    with_events,
)
from .policy import RuleResult, summary
from .steps import WAITING_STEPS, Outcome, Step, start_plan

__all__ = [
    "after_policy",
    "after_release",
    "after_silence_extended",
    "after_step",
    "invalid_spec",
]


def after_policy(
    w: Window, p: Pass, results: list[RuleResult], now: datetime, *, at_start: bool
) -> Pass:
    """Record the checklist; at the start, either block the window or go on: to take the
    holds, or straight to the first step when the window holds nothing."""
    s = p.status
    s.policy_checked_at = now
    events = []
    for r in results:
        old = find(s.conditions, r.type)
        if r.reason != "NotRequired" and (old is None or old.reason != r.reason):
            events.append(Event(NORMAL if r.ok else WARNING, r.reason, r.message))
        s.conditions = set_condition(
            s.conditions, r.type, r.ok, r.reason, r.message, generation=w.generation, now=now
        )
    unmet = [r for r in results if not r.ok]
    if at_start and unmet:
        reason = unmet[0].reason if len(unmet) == 1 else "PolicyNotMet"
        return with_events(block(w, s, now, reason, f"Not started: {summary(unmet)}"), *events)
    if at_start and Step.ACQUIRE_HOLDS in start_plan(w.spec):
        return Pass(s, Work(WorkKind.STEP, Step.ACQUIRE_HOLDS), (*p.events, *events))
    if at_start:
        return with_events(_begin(w, s, now), *p.events, *events)
    assert s.next_start is not None
    starts = f"Starts at {when(w, s.next_start)}"
    # Valid and scheduled: Ready (kstatus Current), so a GitOps sync that waits for health
    # is not held until the start; the checklist is judged at the start.
    if unmet:
        set_ready(w, s, "ready", "PolicyNotMet", f"{starts} only if: {summary(unmet)}", now)
    else:
        set_ready(w, s, "ready", "Scheduled", f"{starts}; the checklist is met so far.", now)
    return Pass(s, None, (*p.events, *events))


def after_step(w: Window, p: Pass, step: Step, outcome: Outcome, now: datetime) -> Pass:
    """Judge one attempt of a step: record it, wait, retry, or give up."""
    s = p.status
    if step == Step.ACQUIRE_HOLDS and s.phase == WindowPhase.PENDING:
        return with_events(_after_holds(w, s, outcome, now), *p.events)
    if outcome.failed is not None:
        return with_events(_step_failed(w, s, step, outcome.failed, now), *p.events)
    if outcome.error is not None:
        return with_events(_step_error(w, s, step, outcome.error, now), *p.events)
    if not outcome.done:
        return with_events(_step_waiting(w, s, step, outcome.waiting or "", now), *p.events)
    return with_events(_step_done(w, s, step, outcome, now), *p.events)


def _after_holds(w: Window, s: MaintenanceWindowStatus, outcome: Outcome, now: datetime) -> Pass:
    old = find(s.conditions, READY)
    deadline = (s.next_start or now) + parse_duration(w.spec.starting_deadline)
    if outcome.held_by is not None or outcome.error is not None:
        reason = "WorkloadHeld" if outcome.held_by else "Retrying"
        why = outcome.held_by or f"cannot take the holds: {outcome.error}"
        message = (
            f"Not started yet: {why}. It starts when that clears, or is Blocked if that "
            f"takes past {when(w, deadline)}."
        )
        s.last_error = outcome.error
        set_ready(w, s, "waiting", reason, message, now)
        changed = old is None or old.reason != reason
        return Pass(s, events=(Event(WARNING, reason, message),) if changed else ())
    s = s.model_copy(update=dict(outcome.updates))
    return _begin(w, s, now, StepRecord(name=Step.ACQUIRE_HOLDS, at=now, message=outcome.message))


def _begin(
    w: Window, s: MaintenanceWindowStatus, now: datetime, holds: StepRecord | None = None
) -> Pass:
    """Starting: the plan, and the holds' step when the window took some."""
    s.phase, s.started_at, s.last_error = WindowPhase.STARTING, now, None
    s.plan = [str(st) for st in start_plan(w.spec)]
    s.steps = [holds] if holds is not None else []
    events = [Event(NORMAL, "Starting", "The checklist is met: starting the window.")]
    if holds is not None:
        events.append(Event(NORMAL, holds.name, holds.message))
    return with_events(starting(w, s, now), *events)


def _step_done(
    w: Window, s: MaintenanceWindowStatus, step: Step, outcome: Outcome, now: datetime
) -> Pass:
    s = s.model_copy(update=dict(outcome.updates))
    s.steps = [*s.steps, StepRecord(name=step, at=now, message=outcome.message)]
    s.last_error = None
    events = [Event(NORMAL, step, outcome.message)]
    events += [Event(WARNING, "Drift", d) for d in outcome.drift]
    nxt = starting(w, s, now) if s.phase == WindowPhase.STARTING else ending(w, s, now)
    if nxt.work is not None and nxt.work.step is not None and s.phase == nxt.status.phase:
        message = f"{step} done: {outcome.message}"
        set_ready(w, nxt.status, "progressing", nxt.work.step, message, now)
    return with_events(nxt, *events)


def _step_waiting(
    w: Window, s: MaintenanceWindowStatus, step: Step, why: str, now: datetime
) -> Pass:
    began = step_began(s) or now
    limit = w.spec.rollout_timeout
    if step == Step.HEALTH_CHECK and w.spec.health_check is not None:
        limit = w.spec.health_check.timeout
    if step in WAITING_STEPS and now - began > parse_duration(limit):
        return _step_failed(w, s, step, f"{step} timed out after {limit}: {why}", now)
    set_ready(w, s, "progressing", step, why, now)
    return Pass(s)


def _step_error(
    w: Window, s: MaintenanceWindowStatus, step: Step, error: str, now: datetime
) -> Pass:
    began = step_began(s) or now
    events = (Event(WARNING, "StepFailed", f"{step}: {error}"),) if error != s.last_error else ()
    s.last_error = error
    if now - began <= ERROR_GRACE:
        set_ready(w, s, "progressing", step, f"{step} failed, retrying: {error}", now)
        return Pass(s, events=events)
    if s.phase == WindowPhase.STARTING:
        failure = f"{step} kept failing for {span(now - began)}: {error}"
        return with_events(begin_ending(w, s, now, EndingReason.FAILED, failure), *events)
    message = f"Cannot {step} for {span(now - began)}: {error}. Retrying; a human may be needed."
    set_ready(w, s, "stalled", step, message, now)
    return Pass(s, events=events)


def _step_failed(
    w: Window, s: MaintenanceWindowStatus, step: Step, failure: str, now: datetime
) -> Pass:
    """A start step that cannot succeed ends the window; an end step is recorded as failed."""
    s.last_error = None
    if s.phase == WindowPhase.STARTING:
        return begin_ending(w, s, now, EndingReason.FAILED, failure)
    s.failure = f"{s.failure} {failure}".strip() if s.failure else failure
    s.steps = [*s.steps, StepRecord(name=step, at=now, message=f"failed: {failure}")]
    return with_events(ending(w, s, now), Event(WARNING, f"{step}Failed", failure))


def after_silence_extended(w: Window, p: Pass, outcome: Outcome, now: datetime) -> Pass:
    s = p.status
    if outcome.error is not None:
        changed = outcome.error != s.last_error
        s.last_error = outcome.error
        text = f"Cannot extend the silence: {outcome.error}"
        return Pass(s, events=(Event(WARNING, "SilenceNotExtended", text),) if changed else ())
    s = s.model_copy(update=dict(outcome.updates))
    s.last_error = None
    return Pass(s, events=(*p.events, Event(NORMAL, "SilenceExtended", outcome.message)))


def after_release(w: Window, p: Pass, outcome: Outcome) -> Pass:
    """Stray holds must be gone before the window leaves Pending; if not, try again next pass."""
    if outcome.error is None:
        return p
    s = w.status.model_copy(deep=True)
    s.last_error = f"cannot release holds: {outcome.error}"
    return Pass(s, events=(Event(WARNING, "StepFailed", s.last_error),))


def invalid_spec(
    status: MaintenanceWindowStatus, generation: int, message: str, now: datetime
) -> Pass:
    """A spec the API server accepted but the operator cannot use (e.g. an unknown time zone).

    Nothing is started; a window already under way keeps its phase, and its
    end steps (which work from status alone) still run on deletion.
    """
    s = status.model_copy(deep=True)
    s.observed_generation = generation
    if s.phase in (None, WindowPhase.PENDING):
        s.phase = WindowPhase.BLOCKED
    text = f"The spec cannot be used: {message}"
    changed = s.last_error != text
    s.last_error = text
    s.conditions = stalled(s.conditions, "InvalidSpec", text, generation=generation, now=now)
    return Pass(s, events=(Event(WARNING, "InvalidSpec", text),) if changed else ())
