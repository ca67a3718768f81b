"""A MaintenanceWindow's transitions that need no I/O, and when to look again.

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

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from ....core.conditions import (
    DEGRADED,
    READY,
    find,
    progressing,
    ready,
    stalled,
    waiting,
    with_degraded,
)
from ....core.events import NORMAL, WARNING, Event
from ....core.fields import parse_duration, span
from ....core.schedule import instant, local_time, zone
from ..api import (
    EndingReason,
    MaintenanceWindowSpec,
    MaintenanceWindowStatus,
    OccurrenceRecord,
    WindowPhase,
)
from .occurrences import first_occurrence, next_occurrence, occurrence_at
from .policy import POLICY_CONDITIONS, Stamps
from .steps import WAITING_STEPS, Step, end_plan

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
    "policy_due",
    "wake_at",
]

POLICY_INTERVAL = timedelta(seconds=15)
"""Before the start the checklist is evaluated again when something it reads changes (the
spec, a DatabaseBackup, a Deployment), at most this often, and once more at the start."""
RETRY_AFTER = timedelta(seconds=2)
"""How soon a step that failed (an API error, Alertmanager down) is tried again."""
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
    stamps: Stamps = field(default_factory=Stamps)
    """Who created it and which plan revision it is on (admission's stamps)."""


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


def with_events(p: Pass, *events: Event) -> Pass:
    return Pass(p.status, p.work, (*events, *p.events), p.finished)


def when(w: Window, at: datetime) -> str:
    """An instant, with the wall-clock reading for windows in a time zone."""
    if w.spec.time_zone is None:
        return instant(at)
    return f"{instant(at)} ({local_time(at, zone(w.spec.time_zone))})"


def _recurring(w: Window) -> bool:
    return w.spec.schedule is not None


def _done(s: MaintenanceWindowStatus) -> set[str]:
    return {r.name for r in s.steps}


def step_began(s: MaintenanceWindowStatus) -> datetime | None:
    times = [t for t in (s.started_at, s.ending_at) if t is not None]
    times += [r.at for r in s.steps[-1:]]
    return max(times) if times else None


def set_ready(
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
        WindowPhase.STARTING: starting,
        WindowPhase.ACTIVE: _active,
        WindowPhase.ENDING: ending,
    }
    if phase not in steps:
        return Pass(s, finished=w.deleting)
    p = steps[phase](w, s, now)
    edited = w.status.observed_generation not in (None, w.generation)
    if edited and phase in UNDER_WAY:
        p = with_events(p, Event(NORMAL, "SpecChanged", SPEC_CHANGED))
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
        set_ready(w, s, "ready", "Cancelled", message, now)
        return Pass(s, stray, (Event(NORMAL, "Cancelled", message),))
    if now < occ.start:
        if policy_due(w, now):
            return Pass(s, Work(WorkKind.POLICY))
        return Pass(s)
    deadline = parse_duration(w.spec.starting_deadline)
    if now >= occ.end or now - occ.start > deadline:
        return block(w, s, now, *_missed(w, s, deadline))
    return Pass(s, Work(WorkKind.POLICY, at_start=True))


def policy_due(w: Window, now: datetime) -> bool:
    """Whether the checklist may be evaluated again now: at once after a spec change,
    else at most once per POLICY_INTERVAL (passes come from watch events: a burst of
    them, a rollout's, costs one evaluation)."""
    checked = w.status.policy_checked_at
    changed = w.status.observed_generation != w.generation
    return changed or checked is None or now - checked >= POLICY_INTERVAL


def _missed(w: Window, s: MaintenanceWindowStatus, deadline: timedelta) -> tuple[str, str]:
    start = when(w, s.next_start or w.created)
    late = f"It could not start within {span(deadline)} of its start ({start})"
    cond = find(s.conditions, READY)
    if cond is not None and cond.reason in ("WorkloadHeld", "Retrying"):
        return cond.reason, f"{late}: {cond.message}"
    return "StartMissed", f"{late}; was the operator running? Nothing was changed."


def block(w: Window, s: MaintenanceWindowStatus, now: datetime, reason: str, msg: str) -> Pass:
    s.phase = WindowPhase.BLOCKED
    if _recurring(w):
        msg += " The next occurrence is considered once this one's time is over."
    else:
        msg += " This window will not start: fix the cause and create a new one."
    set_ready(w, s, "stalled", reason, msg, now)
    return Pass(s, Work(WorkKind.RELEASE_STRAY_HOLDS), (Event(WARNING, "Blocked", msg),))


def _blocked(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    if w.deleting:
        return Pass(s, finished=True)
    if w.spec.cancel:
        s.phase = WindowPhase.CANCELLED
        message = "Cancelled while Blocked; nothing was changed."
        set_ready(w, s, "ready", "Cancelled", message, now)
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


def starting(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    assert s.next_start is not None
    s.next_end = occurrence_at(w.spec, s.next_start).end
    reason = _end_reason(w, s, now)
    if reason is not None:
        return begin_ending(w, s, now, reason)
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
    set_ready(w, s, "waiting", "InMaintenance", message, now)
    return Pass(s, events=(Event(NORMAL, "Active", message),))


def _active_message(w: Window, s: MaintenanceWindowStatus) -> str:
    assert s.next_end is not None
    return f"Maintenance in effect until {when(w, s.next_end)}."


def _active(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    assert s.next_start is not None
    s.next_end = occurrence_at(w.spec, s.next_start).end
    reason = _end_reason(w, s, now)
    if reason is not None:
        return begin_ending(w, s, now, reason)
    set_ready(w, s, "waiting", "InMaintenance", _active_message(w, s), now)
    wanted = s.next_end + SILENCE_MARGIN
    if s.silence is not None and s.silence.ends_at is not None and s.silence.ends_at < wanted:
        return Pass(s, Work(WorkKind.EXTEND_SILENCE))
    return Pass(s)


def begin_ending(
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
    return with_events(ending(w, s, now), event)


def _end_steps(w: Window, s: MaintenanceWindowStatus) -> list[Step]:
    return end_plan(
        s.plan,
        _done(s),
        deleting=w.deleting or s.ending_reason == EndingReason.DELETED,
        health_check=w.spec.health_check is not None,
        was_active=s.active_at is not None,
    )


def ending(w: Window, s: MaintenanceWindowStatus, now: datetime) -> Pass:
    if w.deleting:
        s.ending_reason = EndingReason.DELETED
    done = _done(s)
    step = next((st for st in _end_steps(w, s) if st not in done), None)
    if step is None:
        return _finish(w, s, now)
    set_ready(w, s, "progressing", step, f"Ending ({s.ending_reason}): next {step}.", now)
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
        return with_events(_next_round(w, s, now, final, message), event)
    s.phase = final
    set_ready(w, s, "stalled" if final == WindowPhase.FAILED else "ready", final, message, now)
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
    text = f"Next window: {when(w, occ.start)} to {when(w, occ.end)}."
    set_ready(w, new, "ready", "Scheduled", text, now)
    failed = phase in (WindowPhase.FAILED, WindowPhase.BLOCKED)
    new.conditions = with_degraded(
        [*new.conditions, *(c for c in s.conditions if c.type == DEGRADED)],
        "LastOccurrenceFailed" if failed else None,
        f"The occurrence of {when(w, record.start)} was {phase}: {message}",
        generation=w.generation,
        now=now,
    )
    return Pass(new, events=(Event(NORMAL, "Rescheduled", text),))


# --- when to look again --------------------------------------------------------------------


def wake_at(w: Window, now: datetime, poll: timedelta) -> datetime | None:
    """When the next pass is due if nothing changes (None: only a change can move it).

    Rollouts, scale-downs and holds being released are watch events of the Deployments;
    what is left for the clock: the start and the end of the occurrence, the starting
    deadline, a step's timeout, a failed step's retry, and the health check (asked every
    `poll`, as nothing can be watched for it)."""
    s = w.status
    phase = s.phase or WindowPhase.PENDING
    if phase in FINAL:
        return None
    if s.last_error:
        return now + RETRY_AFTER
    if phase == WindowPhase.BLOCKED:
        return s.next_end if w.spec.schedule is not None else None
    if phase == WindowPhase.PENDING:
        if s.next_start is None:
            return now
        if now < s.next_start:
            return s.next_start
        return s.next_start + parse_duration(w.spec.starting_deadline)
    due = [s.next_end] if phase in (WindowPhase.STARTING, WindowPhase.ACTIVE) else []
    step = _waiting_step(w, s)
    if step is not None:
        began = step_began(s) or now
        limit = w.spec.rollout_timeout
        if step == Step.HEALTH_CHECK and w.spec.health_check is not None:
            limit = w.spec.health_check.timeout
            due.append(now + poll)
        due.append(began + parse_duration(limit))
    moments = [d for d in due if d is not None]
    return min(moments) if moments else None


def _waiting_step(w: Window, s: MaintenanceWindowStatus) -> Step | None:
    """The wait step in progress (a rollout, the scale-down, the health check), if any."""
    done = _done(s)
    if s.phase == WindowPhase.STARTING:
        step = _next_start_step(s)
    elif s.phase == WindowPhase.ENDING:
        step = next((st for st in _end_steps(w, s) if st not in done), None)
    else:
        return None
    return step if step in WAITING_STEPS else None
