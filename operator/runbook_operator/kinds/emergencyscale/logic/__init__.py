"""EmergencyScale decisions: (spec, status, observed workloads, gate sample, now) -> next step.

Pure: the handler observes the workloads and Prometheus, calls `reconcile`,
carries out the returned `Outcome` (holds, patches, events) and writes its
status. Every step is an "ensure" that may run twice, and each pass does one
step whose result is recorded before the next can start:

1. validate the targets (exist, under the cap, HPA bounds make sense) or Stall;
2. with a trigger: wait until the gate is on (logic/gate.py);
3. wait while another operation holds a target (WorkloadHeld);
4. take the holds and record the originals (no change yet);
5. apply the emergency size: the HPA's bounds where an HPA manages the
   workload, else its replicas; Active, Ready once the replicas are there;
6. at the end (duration passed, trigger clear for cooldown, onNoData Fail):
   Reverting, then put the originals back, wait for the workloads to settle,
   release the holds: Completed (or Failed).

The handler calls `advance`, which folds 4 and 5 into one step (one status write, the
originals and Active, ahead of the patches): the incident waits for one write, not two.
Where `hold_with_change` allows, the hold of 4 goes out in the same patch as the size of
5, after that write: one round trip less again.

Nothing here trusts in-memory state: the phase, the originals and the times
in status plus the clock say where the operation stands, so a restart at any
moment resumes it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from ....core import conditions as cond
from ....core import gate
from ....core.conditions import ConditionStatus
from ....core.events import NORMAL, WARNING, Event
from ....core.fields import parse_duration
from ....core.holds import same_holder
from ..api import (
    EmergencyScalePhase as Phase,
)
from ..api import (
    EmergencyScaleSpec,
    EmergencyScaleStatus,
    EndReason,
    GateStatus,
)
from .steps import (
    SCALED,
    Context,
    Outcome,
    Step,
    apply,
    conditioned,
    end,
    expiry,
    finalize,
    original_of,
    record,
    reverting,
)
from .targets import (
    Change,
    Hpa,
    Key,
    Refused,
    Workload,
    World,
    hpas_to_authorize,
    key_of,
    read_workload,
    snapshot,
    summary,
    validate,
)

__all__ = [
    "DEFAULT_COOLDOWN",
    "SCALED",
    "Change",
    "Context",
    "Event",
    "Hpa",
    "Key",
    "Outcome",
    "Refused",
    "Workload",
    "World",
    "advance",
    "finalize",
    "held_elsewhere",
    "hold_with_change",
    "holds_beside_record",
    "hpas_to_authorize",
    "key_of",
    "read_workload",
    "reconcile",
    "snapshot",
    "summary",
    "wake_at",
]

DEFAULT_COOLDOWN = timedelta(minutes=5)
"""With a trigger and no `cooldown`: how long it must be clear before reverting."""


# --- when to look again --------------------------------------------------------


def wake_at(
    spec: EmergencyScaleSpec, status: EmergencyScaleStatus, now: datetime, poll: timedelta
) -> datetime | None:
    """When the next pass is due if nothing changes (None: only a change can move it).

    Replicas becoming ready, a hold being released or a target appearing are watch
    events of the workloads; what is left for the clock is the end of `duration`, and
    with a trigger the next question to Prometheus (every `poll`)."""
    if status.is_done():
        return None
    if spec.trigger is not None and status.phase != Phase.REVERTING:
        return now + poll
    if status.phase == Phase.ACTIVE and status.expires_at is not None:
        return status.expires_at
    return None


# --- the decision -------------------------------------------------------------


def reconcile(
    spec: EmergencyScaleSpec,
    status: EmergencyScaleStatus,
    world: World,
    sample: gate.Sample | None,
    ctx: Context,
) -> Outcome:
    """The next step. `sample`: a fresh answer from Prometheus, or None to reuse the last."""
    if status.is_done():
        return Outcome(status=status)
    base = status.model_copy(
        update={
            "observed_generation": ctx.generation,
            "targets_summary": summary(spec, status.originals),
            "revert": spec.revert,
        }
    )
    if status.phase == Phase.REVERTING:
        step = reverting(spec, base, world, ctx)
    else:
        step = _running(spec, base, world, sample, ctx)
    _note_transition(status, step)
    return step.done()


def advance(
    spec: EmergencyScaleSpec,
    status: EmergencyScaleStatus,
    world: World,
    sample: gate.Sample | None,
    ctx: Context,
) -> Outcome:
    """`reconcile`, with the step that records the originals and the one that applies the
    emergency size folded into one: a single status write (the originals, Active) before
    the first patch, where there were two, one round trip each, ahead of the change.

    The order the two steps kept is kept: the holds come first (the handler takes them
    before it writes, and gives up the whole step if one is lost to a race), then the
    status with the originals, then the patches. The apply step is decided on the world as
    it will be once the holds are taken, and on the status as the record step left it,
    exactly as the next step of the same pass would have. A crash after the write finds
    the originals recorded and applies again from them (patches are absolute sizes)."""
    first = reconcile(spec, status, world, sample, ctx)
    if first.changes or len(first.status.originals) <= len(status.originals):
        return first  # not a record step: nothing to fold
    held = {
        key: replace(w, held_by=ctx.holder)
        for key in first.acquire
        if (w := world.get(key)) is not None
    }
    then = reconcile(spec, first.status, {**world, **held}, None, ctx)
    if then.acquire or then.status.originals != first.status.originals:
        return first  # something else is due first (cannot happen on the same world)
    return Outcome(
        status=then.status,
        acquire=first.acquire,
        changes=then.changes,
        release=first.release + then.release,
        notes=first.notes + then.notes,
    )


def hold_with_change(outcome: Outcome, status: EmergencyScaleStatus, world: World) -> Change | None:
    """The change whose hold may go out in the same patch, after the status write: one
    round trip on the way to the emergency size instead of two (a hold, then the size).

    Only for the one workload a step must hold, nobody's, no HPA's, whose original this
    very step records, and whose change is its replicas: the patch is written with the
    resourceVersion the original was read at, so it lands only on the workload exactly as
    recorded, and the step as a whole happens or does not (decided again on a fresh read
    when it does not). A workload held before, or recorded by an earlier step (a crash in
    between), takes its hold first, as every other step does."""
    if len(outcome.acquire) != 1:
        return None
    key = outcome.acquire[0]
    workload = world.get(key)
    if workload is None or workload.held_by is not None or workload.hpa is not None:
        return None
    if original_of(status, key) is not None or original_of(outcome.status, key) is None:
        return None
    return next(
        (c for c in outcome.changes if c.key == key and c.hpa is None and c.replicas is not None),
        None,
    )


def holds_beside_record(outcome: Outcome, status: EmergencyScaleStatus, world: World) -> bool:
    """Whether the step's holds may be taken side by side with the status write that
    records their originals, instead of before it: one round trip less on the way to an
    HPA's emergency minimum (the hold is on the workload, the change on its HPA), or to
    several workloads' sizes.

    Only when every workload to hold is nobody's as read, and has its original recorded
    by this very step, and a change follows. The changes wait for both answers; when a
    hold is refused or finds the workload changed, nothing was changed, so the record
    goes back and the step is decided again, as for a hold that travels with its change
    (`hold_with_change`, which this leaves alone)."""
    if not outcome.acquire or not outcome.changes or outcome.status.is_done():
        return False
    if hold_with_change(outcome, status, world) is not None:
        return False
    for key in outcome.acquire:
        workload = world.get(key)
        if workload is None or workload.held_by is not None:
            return False
        if original_of(status, key) is not None or original_of(outcome.status, key) is None:
            return False
    return True


def _running(
    spec: EmergencyScaleSpec,
    status: EmergencyScaleStatus,
    world: World,
    sample: gate.Sample | None,
    ctx: Context,
) -> Step:
    expires = expiry(spec, status)
    if expires is not None and ctx.now >= expires:
        return end(spec, status, world, ctx, EndReason.EXPIRED, f"{spec.duration} passed")
    if spec.trigger is not None:
        status, decided = _gate(spec, status, world, sample, ctx)
        if decided is not None:
            return decided
    problems = validate(spec, status.originals, world, ctx.cap, ctx.refused)
    if problems:
        reason = problems[0][0] if len({p[0] for p in problems}) == 1 else "InvalidTargets"
        message = "; ".join(p[1] for p in problems)
        return conditioned(spec, status, ctx, "stalled", reason, message)
    blocked = [
        (t.name, w.held_by)
        for t in spec.targets
        if (w := world.get(key_of(t))) is not None
        and w.held_by is not None
        and not same_holder(w.held_by, ctx.holder)
    ]
    if blocked:
        held = ", ".join(f"{name} is held by {holder}" for name, holder in blocked)
        message = f"Waiting: {held}; this one starts when it is released"
        return conditioned(spec, status, ctx, "waiting", "WorkloadHeld", message)
    if any(original_of(status, key_of(t)) is None for t in spec.targets):
        return record(spec, status, world, ctx)
    return apply(spec, status, world, ctx)


def _gate(
    spec: EmergencyScaleSpec,
    status: EmergencyScaleStatus,
    world: World,
    sample: gate.Sample | None,
    ctx: Context,
) -> tuple[EmergencyScaleStatus, Step | None]:
    """The trigger's say: the status with the gate recorded, and a step when the gate
    decides this pass (None: carry on towards the emergency size)."""
    assert spec.trigger is not None
    cooldown = parse_duration(spec.cooldown) if spec.cooldown else DEFAULT_COOLDOWN
    active = bool(status.originals)
    verdict = gate.evaluate(
        spec.trigger, status.gate, sample, ctx.now, active=active, cooldown=cooldown
    )
    status = status.model_copy(update={"gate": GateStatus(**vars(verdict.state))})
    described = gate.describe(spec.trigger, verdict)
    if verdict.failed is not None:
        return status, end(spec, status, world, ctx, EndReason.TRIGGER_FAILED, verdict.failed)
    if verdict.invalid is not None:
        message = f"The trigger cannot be evaluated: {verdict.invalid}; fix spec.trigger"
        reason = "TriggerInvalid"
        if verdict.problem == gate.Problem.URL_NOT_ALLOWED:
            reason = str(verdict.problem)
        return status, conditioned(spec, status, ctx, "stalled", reason, message)
    if verdict.on:
        return status, None
    if active:
        cleared = f"the trigger is clear: {described}"
        return status, end(spec, status, world, ctx, EndReason.TRIGGER_CLEARED, cleared)
    message = f"Waiting for the trigger: {described}"
    # Armed and watching is what the object asks for: Ready (kstatus Current), like an
    # armed Rollback, so a GitOps sync that waits for health is not held until an incident.
    return status, conditioned(spec, status, ctx, "ready", "WaitingForTrigger", message)


def held_elsewhere(
    spec: EmergencyScaleSpec,
    status: EmergencyScaleStatus,
    name: str,
    holder: str,
    ctx: Context,
) -> Outcome:
    """A hold was lost to a race while taking it: wait like any WorkloadHeld."""
    message = f"Waiting: {name} is held by {holder}; this one starts when it is released"
    step = conditioned(spec, status, ctx, "waiting", "WorkloadHeld", message)
    _note_transition(status, step)
    return step.done()


def _note_transition(before: EmergencyScaleStatus, step: Step) -> None:
    """An event whenever the Ready condition's reason changes (not on every pass)."""
    old = cond.find(before.conditions, cond.READY)
    new = cond.find(step.status.conditions, cond.READY)
    if new is None or (old is not None and old.reason == new.reason):
        return
    if any(n.reason == new.reason for n in step.notes):
        return
    stalled = cond.find(step.status.conditions, cond.STALLED)
    warning = new.reason == "WorkloadHeld" or (
        stalled is not None and stalled.status == ConditionStatus.TRUE
    )
    step.notes.append(Event(WARNING if warning else NORMAL, new.reason, new.message))
