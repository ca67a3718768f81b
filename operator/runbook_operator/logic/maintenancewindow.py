"""A MaintenanceWindow's life, as pure decisions: (spec, status, clock) -> next status + work.

Phases: Pending -> Starting -> Active -> Ending -> Completed, or Blocked (the
checklist was unmet at the start, or it could not start in time), Failed (a
step or the verification failed; the rest was still restored) and Cancelled.
A recurring window goes back to Pending with its next occurrence when one
ends.

One handler pass is: `advance()` (transitions that need no I/O), then at most
one piece of `Work` for the handler (evaluate the checklist, or one step),
then `after_policy()` / `after_step()` judge what the handler saw. Everything
is derived from status and the clock, so a pass can run at any time, twice,
or after a crash, and reach the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..api.common import parse_duration
from ..api.maintenancewindow import (
    EndingReason,
    MaintenanceWindowSpec,
    MaintenanceWindowStatus,
    OccurrenceRecord,
    StepRecord,
    WindowPhase,
)
from ..conditions import READY, find, progressing, ready, set_condition, stalled, waiting
from .events import NORMAL, WARNING, Event
from .maintenancewindow_policy import POLICY_CONDITIONS, RuleResult, instant, span, summary
from .maintenancewindow_schedule import (
    first_occurrence,
    local_time,
    next_occurrence,
    occurrence_at,
    zone,
)
from .maintenancewindow_steps import WAITING_STEPS, Outcome, Step, end_plan, start_plan

__all__ = [
    "ERROR_GRACE",
    "POLICY_INTERVAL",
    "SILENCE_MARGIN",
    "Event",
    "Pass",
    "Window",
    "Work",
    "WorkKind",
    "advance",
    "after_policy",
    "after_release",
    "after_silence_extended",
    "after_step",
    "invalid_spec",
]

POLICY_INTERVAL = timedelta(seconds=15)
"""How often the checklist is re-evaluated before the start (and at once after a spec change)."""
ERROR_GRACE = timedelta(minutes=2)
"""How long a failing step is retried before a start gives up (an undo never gives up)."""
SILENCE_MARGIN = timedelta(minutes=15)
"""The silence outlives the window by this much, in case the end steps are slow or nobody
is left to expire it."""
FINAL = frozenset({WindowPhase.COMPLETED, WindowPhase.FAILED, WindowPhase.CANCELLED})
UNDER_WAY = frozenset({WindowPhase.STARTING, WindowPhase.ACTIVE, WindowPhase.ENDING})
SPEC_CHANGED = (
    "The spec changed while the window is under way: duration and cancel apply now; what "
    "it changes (flag, restarts, scale-down, silence) stays as recorded until this "
    "occurrence ends."
)


@dataclass(frozen=True)
class Window:
    """The object as the logic needs it."""

    spec: MaintenanceWindowSpec
    status: MaintenanceWindowStatus
    created: datetime
    generation: int
    deleting: bool = False


class WorkKind(StrEnum):
    POLICY = "Policy"
    STEP = "Step"
    EXTEND_SILENCE = "ExtendSilence"
    RELEASE_STRAY_HOLDS = "ReleaseStrayHolds"


@dataclass(frozen=True)
class Work:
    kind: WorkKind
    step: Step | None = None
    at_start: bool = False
    """POLICY: this evaluation decides whether the window starts now."""


@dataclass(frozen=True)
class Pass:
    status: MaintenanceWindowStatus
    work: Work | None = None
    events: tuple[Event, ...] = ()
    finished: bool = False
    """Being deleted and nothing is left to undo (after `work`, if any, succeeds)."""


# --- helpers -------------------------------------------------------------------------


def _with(p: Pass, *events: Event) -> Pass:
    return Pass(p.status, p.work, (*events, *p.events), p.finished)


def _when(w: Window, at: datetime) -> str:
    """An instant, with the wall-clock reading for windows in a time zone."""
    if w.spec.time_zone is None:
        return instant(at)
    return f"{instant(at)} ({local_time(at, zone(w.spec.time_zone))})"


def _recurring(w: Window) -> bool:
    return w.spec.schedule is not None


def _done(s: MaintenanceWindowStatus) -> set[str]:
    return {r.name for r in s.steps}


def _step_began(s: MaintenanceWindowStatus) -> datetime | None:
    times = [t for t in (s.started_at, s.ending_at) if t is not None]
    times += [r.at for r in s.steps[-1:]]
    return max(times) if times else None


def _set_ready(
    w: Window, s: MaintenanceWindowStatus, kind: str, reason: str, message: str, now: datetime
) -> None:
    helper = {"progressing": progressing, "waiting": waiting, "ready": ready, "stalled": stalled}
    s.conditions = helper[kind](s.conditions, reason, message, generation=w.generation, now=now)


# --- advance: transitions without I/O ----------------------------------------------------


def advance(w: Window, now: datetime) -> Pass:
    """The window's next status from the clock alone, and the work the handler must do next."""
    s = w.status.model_copy(deep=True)
    s.observed_generation = w.generation
    phase = s.phase or WindowPhase.PENDING
    steps = {
        WindowPhase.PENDING: _pending,
        WindowPhase.BLOCKED: _blocked,
        WindowPhase.STARTING: _starting,
        WindowPhase.ACTIVE: _active,
        WindowPhase.ENDING: _ending,
    }
    if phase not in steps:
        return Pass(s, finished=w.deleting)
    p = steps[phase](w, s, now)
    edited = w.status.observed_generation not in (None, w.generation)
    if edited and phase in UNDER_WAY:
        p = _with(p, Event(NORMAL, "SpecChanged", SPEC_CHANGED))
    return p


def _pending(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    if s.next_start is None:
        s.next_start = first_occurrence(w.spec, w.created, now).start
    occ = occurrence_at(w.spec, s.next_start)
    s.phase, s.next_end = WindowPhase.PENDING, occ.end
    stray = Work(WorkKind.RELEASE_STRAY_HOLDS) if now >= occ.start else None
    if w.deleting:
        return Pass(s, stray, finished=True)
    if w.spec.cancel:
        s.phase = WindowPhase.CANCELLED
        message = "Cancelled before it started; nothing was changed."
        _set_ready(w, s, "ready", "Cancelled", message, now)
        return Pass(s, stray, (Event(NORMAL, "Cancelled", message),))
    if now < occ.start:
        if _policy_due(w, now):
            return Pass(s, Work(WorkKind.POLICY))
        return Pass(s)
    deadline = parse_duration(w.spec.starting_deadline)
    if now >= occ.end or now - occ.start > deadline:
        return _block(w, s, now, *_missed(w, s, deadline))
    return Pass(s, Work(WorkKind.POLICY, at_start=True))


def _policy_due(w: Window, now: datetime) -> bool:
    checked = w.status.policy_checked_at
    changed = w.status.observed_generation != w.generation
    return changed or checked is None or now - checked >= POLICY_INTERVAL


def _missed(w: Window, s: MaintenanceWindowStatus, deadline: timedelta) -> tuple[str, str]:
    start = _when(w, s.next_start or w.created)
    late = f"It could not start within {span(deadline)} of its start ({start})"
    cond = find(s.conditions, READY)
    if cond is not None and cond.reason in ("WorkloadHeld", "Retrying"):
        return cond.reason, f"{late}: {cond.message}"
    return "StartMissed", f"{late}; was the operator running? Nothing was changed."


def _block(w: Window, s: MaintenanceWindowStatus, now: datetime, reason: str, msg: str) -> Pass:
    s.phase = WindowPhase.BLOCKED
    if _recurring(w):
        msg += " The next occurrence is considered once this one's time is over."
    else:
        msg += " This window will not start: fix the cause and create a new one."
    _set_ready(w, s, "stalled", reason, msg, now)
    return Pass(s, Work(WorkKind.RELEASE_STRAY_HOLDS), (Event(WARNING, "Blocked", msg),))


def _blocked(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    if w.deleting:
        return Pass(s, finished=True)
    if w.spec.cancel:
        s.phase = WindowPhase.CANCELLED
        message = "Cancelled while Blocked; nothing was changed."
        _set_ready(w, s, "ready", "Cancelled", message, now)
        return Pass(s, events=(Event(NORMAL, "Cancelled", message),))
    if _recurring(w) and s.next_end is not None and now >= s.next_end:
        cond = find(s.conditions, READY)
        return _next_round(w, s, now, WindowPhase.BLOCKED, cond.message if cond else "")
    return Pass(s)


def _end_reason(w: Window, s: MaintenanceWindowStatus, now: datetime) -> EndingReason | None:
    if w.deleting:
        return EndingReason.DELETED
    if w.spec.cancel:
        return EndingReason.CANCELLED
    if s.next_end is not None and now >= s.next_end:
        return EndingReason.ENDED
    return None


def _starting(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    assert s.next_start is not None
    s.next_end = occurrence_at(w.spec, s.next_start).end
    reason = _end_reason(w, s, now)
    if reason is not None:
        return _begin_ending(w, s, now, reason)
    step = _next_start_step(s)
    if step is None:
        return _activate(w, s, now)
    return Pass(s, Work(WorkKind.STEP, step))


def _next_start_step(s: MaintenanceWindowStatus) -> Step | None:
    done = _done(s)
    return next((Step(n) for n in s.plan if n not in done), None)


def _activate(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    s.phase, s.active_at = WindowPhase.ACTIVE, now
    message = _active_message(w, s)
    _set_ready(w, s, "waiting", "InMaintenance", message, now)
    return Pass(s, events=(Event(NORMAL, "Active", message),))


def _active_message(w: Window, s: MaintenanceWindowStatus) -> str:
    assert s.next_end is not None
    return f"Maintenance in effect until {_when(w, s.next_end)}."


def _active(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    assert s.next_start is not None
    s.next_end = occurrence_at(w.spec, s.next_start).end
    reason = _end_reason(w, s, now)
    if reason is not None:
        return _begin_ending(w, s, now, reason)
    _set_ready(w, s, "waiting", "InMaintenance", _active_message(w, s), now)
    wanted = s.next_end + SILENCE_MARGIN
    if s.silence is not None and s.silence.ends_at is not None and s.silence.ends_at < wanted:
        return Pass(s, Work(WorkKind.EXTEND_SILENCE))
    return Pass(s)


def _begin_ending(
    w: Window,
    s: MaintenanceWindowStatus,
    now: datetime,
    reason: EndingReason,
    failure: str | None = None,
) -> Pass:
    s.phase, s.ending_at, s.ending_reason = WindowPhase.ENDING, now, reason
    s.failure = failure or s.failure
    words = {
        EndingReason.ENDED: "The window is over",
        EndingReason.CANCELLED: "Cancelled",
        EndingReason.DELETED: "Deleted",
        EndingReason.FAILED: f"Failed: {failure}",
    }[reason]
    message = f"{words}; putting every original back."
    event = Event(WARNING if reason == EndingReason.FAILED else NORMAL, "Ending", message)
    return _with(_ending(w, s, now), event)


def _end_steps(w: Window, s: MaintenanceWindowStatus) -> list[Step]:
    return end_plan(
        s.plan,
        _done(s),
        deleting=w.deleting or s.ending_reason == EndingReason.DELETED,
        health_check=w.spec.health_check is not None,
        was_active=s.active_at is not None,
    )


def _ending(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    if w.deleting:
        s.ending_reason = EndingReason.DELETED
    done = _done(s)
    step = next((st for st in _end_steps(w, s) if st not in done), None)
    if step is None:
        return _finish(w, s, now)
    _set_ready(w, s, "progressing", step, f"Ending ({s.ending_reason}): next {step}.", now)
    return Pass(s, Work(WorkKind.STEP, step))


def _finish(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    s.ended_at, s.last_error = now, None
    if w.deleting or s.ending_reason == EndingReason.DELETED:
        message = "Every original is back; the window can be deleted."
        return Pass(s, events=(Event(NORMAL, "Restored", message),), finished=True)
    if s.failure:
        final, message = WindowPhase.FAILED, f"Failed: {s.failure} Everything else was restored."
    elif s.ending_reason == EndingReason.CANCELLED:
        final, message = WindowPhase.CANCELLED, "Cancelled; every original is back and verified."
    else:
        final, message = WindowPhase.COMPLETED, "Completed; every original is back and verified."
    event = Event(WARNING if final == WindowPhase.FAILED else NORMAL, str(final), message)
    if _recurring(w) and final != WindowPhase.CANCELLED:
        return _with(_next_round(w, s, now, final, message), event)
    s.phase = final
    _set_ready(w, s, "stalled" if final == WindowPhase.FAILED else "ready", final, message, now)
    return Pass(s, events=(event,))


def _next_round(
    w: Window, s: MaintenanceWindowStatus, now: datetime, phase: WindowPhase, message: str
) -> Pass:
    """A recurring window goes back to Pending with its next occurrence."""
    assert s.next_start is not None and s.next_end is not None
    record = OccurrenceRecord(start=s.next_start, end=s.next_end, phase=phase, message=message)
    occ = next_occurrence(w.spec, max(s.next_end, now))
    new = MaintenanceWindowStatus(
        phase=WindowPhase.PENDING,
        observed_generation=w.generation,
        conditions=[c for c in s.conditions if c.type in (*POLICY_CONDITIONS, READY)],
        next_start=occ.start,
        next_end=occ.end,
        rollback_plan=s.rollback_plan,
        last_occurrence=record,
    )
    text = f"Next window: {_when(w, occ.start)} to {_when(w, occ.end)}."
    _set_ready(w, new, "waiting", "Scheduled", text, now)
    return Pass(new, events=(Event(NORMAL, "Rescheduled", text),))


# --- after the handler's I/O -------------------------------------------------------------


def after_policy(
    w: Window, p: Pass, results: list[RuleResult], now: datetime, *, at_start: bool
) -> Pass:
    """Record the checklist; at the start, either block the window or go on to take holds."""
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
        return _with(_block(w, s, now, reason, f"Not started: {summary(unmet)}"), *events)
    if at_start:
        return Pass(s, Work(WorkKind.STEP, Step.ACQUIRE_HOLDS), (*p.events, *events))
    assert s.next_start is not None
    starts = f"Starts at {_when(w, s.next_start)}"
    if unmet:
        _set_ready(w, s, "waiting", "PolicyNotMet", f"{starts} only if: {summary(unmet)}", now)
    else:
        _set_ready(w, s, "waiting", "Scheduled", f"{starts}; the checklist is met so far.", now)
    return Pass(s, None, (*p.events, *events))


def after_step(w: Window, p: Pass, step: Step, outcome: Outcome, now: datetime) -> Pass:
    """Judge one attempt of a step: record it, wait, retry, or give up."""
    s = p.status
    if step == Step.ACQUIRE_HOLDS and s.phase == WindowPhase.PENDING:
        return _with(_after_holds(w, s, outcome, now), *p.events)
    if outcome.failed is not None:
        return _with(_step_failed(w, s, step, outcome.failed, now), *p.events)
    if outcome.error is not None:
        return _with(_step_error(w, s, step, outcome.error, now), *p.events)
    if not outcome.done:
        return _with(_step_waiting(w, s, step, outcome.waiting or "", now), *p.events)
    return _with(_step_done(w, s, step, outcome, now), *p.events)


def _after_holds(w: Window, s: MaintenanceWindowStatus, outcome: Outcome, now: datetime) -> Pass:
    old = find(s.conditions, READY)
    deadline = (s.next_start or now) + parse_duration(w.spec.starting_deadline)
    if outcome.held_by is not None or outcome.error is not None:
        reason = "WorkloadHeld" if outcome.held_by else "Retrying"
        why = outcome.held_by or f"cannot take the holds: {outcome.error}"
        message = (
            f"Not started yet: {why}. It starts when that clears, or is Blocked if that "
            f"takes past {_when(w, deadline)}."
        )
        s.last_error = outcome.error
        _set_ready(w, s, "waiting", reason, message, now)
        changed = old is None or old.reason != reason
        return Pass(s, events=(Event(WARNING, reason, message),) if changed else ())
    s.phase, s.started_at, s.last_error = WindowPhase.STARTING, now, None
    s.plan = [str(st) for st in start_plan(w.spec)]
    s.steps = [StepRecord(name=Step.ACQUIRE_HOLDS, at=now, message=outcome.message)]
    s = s.model_copy(update=dict(outcome.updates))
    return _with(
        _starting(w, s, now),
        Event(NORMAL, "Starting", "The checklist is met: starting the window."),
        Event(NORMAL, Step.ACQUIRE_HOLDS, outcome.message),
    )


def _step_done(
    w: Window, s: MaintenanceWindowStatus, step: Step, outcome: Outcome, now: datetime
) -> Pass:
    s = s.model_copy(update=dict(outcome.updates))
    s.steps = [*s.steps, StepRecord(name=step, at=now, message=outcome.message)]
    s.last_error = None
    events = [Event(NORMAL, step, outcome.message)]
    events += [Event(WARNING, "Drift", d) for d in outcome.drift]
    nxt = _starting(w, s, now) if s.phase == WindowPhase.STARTING else _ending(w, s, now)
    if nxt.work is not None and nxt.work.step is not None and s.phase == nxt.status.phase:
        message = f"{step} done: {outcome.message}"
        _set_ready(w, nxt.status, "progressing", nxt.work.step, message, now)
    return _with(nxt, *events)


def _step_waiting(
    w: Window, s: MaintenanceWindowStatus, step: Step, why: str, now: datetime
) -> Pass:
    began = _step_began(s) or now
    limit = w.spec.rollout_timeout
    if step == Step.HEALTH_CHECK and w.spec.health_check is not None:
        limit = w.spec.health_check.timeout
    if step in WAITING_STEPS and now - began > parse_duration(limit):
        return _step_failed(w, s, step, f"{step} timed out after {limit}: {why}", now)
    _set_ready(w, s, "progressing", step, why, now)
    return Pass(s)


def _step_error(
    w: Window, s: MaintenanceWindowStatus, step: Step, error: str, now: datetime
) -> Pass:
    began = _step_began(s) or now
    events = (Event(WARNING, "StepFailed", f"{step}: {error}"),) if error != s.last_error else ()
    s.last_error = error
    if now - began <= ERROR_GRACE:
        _set_ready(w, s, "progressing", step, f"{step} failed, retrying: {error}", now)
        return Pass(s, events=events)
    if s.phase == WindowPhase.STARTING:
        failure = f"{step} kept failing for {span(now - began)}: {error}"
        return _with(_begin_ending(w, s, now, EndingReason.FAILED, failure), *events)
    message = f"Cannot {step} for {span(now - began)}: {error}. Retrying; a human may be needed."
    _set_ready(w, s, "stalled", step, message, now)
    return Pass(s, events=events)


def _step_failed(
    w: Window, s: MaintenanceWindowStatus, step: Step, failure: str, now: datetime
) -> Pass:
    """A start step that cannot succeed ends the window; an end step is recorded as failed."""
    s.last_error = None
    if s.phase == WindowPhase.STARTING:
        return _begin_ending(w, s, now, EndingReason.FAILED, failure)
    s.failure = f"{s.failure} {failure}".strip() if s.failure else failure
    s.steps = [*s.steps, StepRecord(name=step, at=now, message=f"failed: {failure}")]
    return _with(_ending(w, s, now), Event(WARNING, f"{step}Failed", failure))


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
