"""EmergencyScale steps: record, apply, end, revert, finalize.

Each function builds one step (a `Step`: holds to take, patches, holds to
release, events, and the status to write) from the status, the observed
workloads and the clock. logic/emergencyscale.py decides which step is due.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ....core import conditions as cond
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
    TargetOriginal,
)
from .targets import (
    Change,
    Key,
    Refused,
    Workload,
    World,
    at_original,
    describe_original,
    hpa_change,
    key_of,
    reached,
    replicas_change,
    snapshot,
    summary,
    to_emergency,
)

__all__ = [
    "SCALED",
    "Context",
    "Outcome",
    "Step",
    "apply",
    "conditioned",
    "end",
    "expiry",
    "finalize",
    "original_of",
    "record",
    "reverting",
]

SCALED = "Scaled"
"""Kind-specific condition: True while the emergency size is in place."""


@dataclass(frozen=True)
class Context:
    holder: str
    """Our value of the hold annotation (names.holder_id)."""
    cap: int
    """The operator's policy cap on replicas (Settings.max_replicas)."""
    generation: int | None
    now: datetime
    refused: Refused | None = None
    """HPAs the requester may not patch (None: nobody was asked, e.g. no requester)."""


@dataclass(frozen=True)
class Outcome:
    """One step: take `acquire` holds, make `changes`, drop `release` holds, post `notes`,
    then write `status`."""

    status: EmergencyScaleStatus
    acquire: tuple[Key, ...] = ()
    changes: tuple[Change, ...] = ()
    release: tuple[Key, ...] = ()
    notes: tuple[Event, ...] = ()


@dataclass
class Step:
    """An Outcome under construction."""

    status: EmergencyScaleStatus
    acquire: list[Key] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    release: list[Key] = field(default_factory=list)
    notes: list[Event] = field(default_factory=list)

    def done(self) -> Outcome:
        return Outcome(
            status=self.status,
            acquire=tuple(self.acquire),
            changes=tuple(self.changes),
            release=tuple(self.release),
            notes=tuple(self.notes),
        )


# --- status -------------------------------------------------------------------


def expiry(spec: EmergencyScaleSpec, status: EmergencyScaleStatus) -> datetime | None:
    """When the emergency size ends: activatedAt + the spec's duration (edits count)."""
    if status.activated_at is None or not spec.duration:
        return None
    return status.activated_at + parse_duration(spec.duration)


def idle_phase(spec: EmergencyScaleSpec, status: EmergencyScaleStatus) -> Phase:
    """The phase while nothing moves: as it was once originals are recorded, else Waiting
    (with a trigger) or Pending."""
    if status.phase in (Phase.ACTIVE, Phase.PENDING) and status.originals:
        return status.phase
    return Phase.WAITING if spec.trigger is not None else Phase.PENDING


_SETTERS = {
    "progressing": cond.progressing,
    "waiting": cond.waiting,
    "ready": cond.ready,
    "stalled": cond.stalled,
}


def with_conditions(
    status: EmergencyScaleStatus,
    ctx: Context,
    state: str,
    reason: str,
    message: str,
    *,
    scaled: tuple[bool, str, str] | None = None,
    **update: Any,
) -> EmergencyScaleStatus:
    """The status with the kstatus conditions for `state` (progressing, waiting, ready,
    stalled), the Scaled condition when given (False "NotScaled" until then), and
    `update`'s fields."""
    conditions = _SETTERS[state](
        status.conditions, reason, message, generation=ctx.generation, now=ctx.now
    )
    if scaled is not None or cond.find(conditions, SCALED) is None:
        on, why, text = scaled or (False, "NotScaled", "The emergency size has not been applied")
        conditions = cond.set_condition(
            conditions, SCALED, on, why, text, generation=ctx.generation, now=ctx.now
        )
    return status.model_copy(update={"conditions": conditions, **update})


def conditioned(
    spec: EmergencyScaleSpec,
    status: EmergencyScaleStatus,
    ctx: Context,
    state: str,
    reason: str,
    message: str,
) -> Step:
    """A step that changes nothing but the conditions (stalled, held, waiting)."""
    phase = idle_phase(spec, status)
    return Step(with_conditions(status, ctx, state, reason, message, phase=phase))


# --- record, apply ------------------------------------------------------------


def original_of(status: EmergencyScaleStatus, key: Key) -> TargetOriginal | None:
    """The recorded original of one workload, if any."""
    return next((o for o in status.originals if key_of(o) == key), None)


def record(
    spec: EmergencyScaleSpec, status: EmergencyScaleStatus, world: World, ctx: Context
) -> Step:
    """Take the holds and record the originals; nothing is changed in this step."""
    new = []
    for target in spec.targets:
        workload = world.get(key_of(target))
        if workload is not None and original_of(status, key_of(target)) is None:
            new.append(snapshot(workload))
    originals = [*status.originals, *new]
    message = "Recorded the originals: " + "; ".join(describe_original(o) for o in new)
    phase = Phase.ACTIVE if status.phase == Phase.ACTIVE else Phase.PENDING
    updated = with_conditions(
        status,
        ctx,
        "progressing",
        "RecordedOriginals",
        message + "; scaling next",
        phase=phase,
        originals=originals,
        targets_summary=summary(spec, originals),
    )
    step = Step(updated)
    step.acquire = [key_of(t) for t in spec.targets if _needs_hold(world, key_of(t), ctx)]
    step.notes.append(Event(NORMAL, "RecordedOriginals", message))
    return step


def _needs_hold(world: World, key: Key, ctx: Context) -> bool:
    workload = world.get(key)
    return workload is not None and not same_holder(workload.held_by, ctx.holder)


def apply(
    spec: EmergencyScaleSpec, status: EmergencyScaleStatus, world: World, ctx: Context
) -> Step:
    step = Step(status)
    wanted = {key_of(t) for t in spec.targets}
    kept = [o for o in status.originals if key_of(o) in wanted]
    for dropped in (o for o in status.originals if key_of(o) not in wanted):
        _restore_one(step, dropped, world.get(key_of(dropped)), ctx)
        step.release.append(key_of(dropped))
    waiting = []
    for target in spec.targets:
        key = key_of(target)
        original, workload = original_of(status, key), world.get(key)
        assert original is not None and workload is not None  # validated, recorded
        if not same_holder(workload.held_by, ctx.holder):
            step.acquire.append(key)
        change = to_emergency(target, original, workload)
        if change is not None:
            step.changes.append(change)
            step.notes.append(Event(NORMAL, "Applied", change.text))
            # Said as the next pass will see it right after the change (the pods it has
            # now of those wanted), so that pass has nothing new to write.
            waiting.append(reached(target, original, workload) or f"{workload.name} scaling")
        elif (lag := reached(target, original, workload)) is not None:
            waiting.append(lag)
    activated = status.activated_at or ctx.now.replace(microsecond=0)  # shown in columns
    expires = expiry(spec, status.model_copy(update={"activated_at": activated}))
    text = summary(spec, kept)
    until = f"; reverts at {expires:%Y-%m-%d %H:%M:%SZ}" if expires else ""
    state, reason, message = (
        ("progressing", "Scaling", "Scaling: " + ", ".join(waiting) + until)
        if waiting
        else ("ready", "Scaled", f"At the emergency size: {text}{until}")
    )
    step.status = with_conditions(
        status,
        ctx,
        state,
        reason,
        message,
        scaled=(True, "Applied", f"The emergency size is applied: {text}"),
        phase=Phase.ACTIVE,
        originals=kept,
        activated_at=activated,
        expires_at=expires,
        targets_summary=text,
    )
    return step


# --- the end ------------------------------------------------------------------


def end(
    spec: EmergencyScaleSpec,
    status: EmergencyScaleStatus,
    world: World,
    ctx: Context,
    why: EndReason,
    detail: str,
) -> Step:
    """Time to stop: Reverting when something must be put back, else the final phase."""
    failed = why == EndReason.TRIGGER_FAILED
    if status.originals and spec.revert:
        message = f"{why.value}: {detail}; putting the originals back"
        step = Step(
            with_conditions(
                status,
                ctx,
                "progressing",
                "Reverting",
                message,
                phase=Phase.REVERTING,
                end_reason=why,
            )
        )
        step.notes.append(Event(WARNING if failed else NORMAL, "Reverting", message))
        return step
    step = Step(status)
    _release_ours(step, spec, status, world, ctx)
    if failed:
        message = f"The trigger failed: {detail}; nothing was changed"
        if status.originals:
            message = f"The trigger failed: {detail}; the new size is kept (revert: false)"
        step.status = with_conditions(
            status,
            ctx,
            "stalled",
            "TriggerFailed",
            message,
            phase=Phase.FAILED,
            end_reason=why,
            completed_at=ctx.now.replace(microsecond=0),
        )
        return step
    message = f"{why.value}: {detail}; the new size is kept (revert: false)"
    step.status = with_conditions(
        status,
        ctx,
        "ready",
        "KeptNewSize",
        message,
        phase=Phase.COMPLETED,
        end_reason=why,
        completed_at=ctx.now.replace(microsecond=0),
    )
    return step


def _release_ours(
    step: Step, spec: EmergencyScaleSpec, status: EmergencyScaleStatus, world: World, ctx: Context
) -> None:
    keys = dict.fromkeys(
        [*(key_of(t) for t in spec.targets), *(key_of(o) for o in status.originals)]
    )
    for key in keys:
        workload = world.get(key)
        if workload is not None and same_holder(workload.held_by, ctx.holder):
            step.release.append(key)


def _restore_one(
    step: Step, original: TargetOriginal, workload: Workload | None, ctx: Context
) -> str | None:
    """Put one original back; returns what it still waits for (None: settled or skipped)."""
    if workload is None:
        step.notes.append(
            Event(NORMAL, "TargetGone", f"{original.name} no longer exists; nothing to put back")
        )
        return None
    if not same_holder(workload.held_by, ctx.holder):
        if at_original(original, workload):
            return None  # already back (a step that ran twice), nothing to say
        holder = workload.held_by or "nobody"
        step.notes.append(
            Event(
                WARNING,
                "NotRestored",
                f"{original.name} is held by {holder}, not by this EmergencyScale; left as is",
            )
        )
        return None
    if original.hpa is not None:
        return _restore_hpa(step, original, workload)
    assert original.replicas is not None
    change = replicas_change(workload, original.replicas)
    if change is not None:
        step.changes.append(change)
        step.notes.append(Event(NORMAL, "Restored", change.text))
        return f"{workload.name} scaling back to {original.replicas}"
    if workload.up_to_date and workload.current == original.replicas:
        return None
    return f"{workload.name} {workload.current} -> {original.replicas} replicas"


def _restore_hpa(step: Step, original: TargetOriginal, workload: Workload) -> str | None:
    if workload.hpa is None or workload.hpa.name != original.hpa:
        step.notes.append(
            Event(
                NORMAL,
                "NotRestored",
                f"{original.hpa} no longer manages {original.name}; left as is",
            )
        )
        return None
    assert original.min_replicas is not None and original.max_replicas is not None
    change = hpa_change(workload, original.min_replicas, original.max_replicas)
    if change is None:
        return None
    step.changes.append(change)
    step.notes.append(Event(NORMAL, "Restored", change.text))
    return f"{original.hpa} being restored"


def reverting(
    spec: EmergencyScaleSpec, status: EmergencyScaleStatus, world: World, ctx: Context
) -> Step:
    step = Step(status)
    waiting = [
        lag
        for original in status.originals
        if (lag := _restore_one(step, original, world.get(key_of(original)), ctx)) is not None
    ]
    why = status.end_reason or EndReason.EXPIRED
    if waiting:
        message = f"{why.value}: putting the originals back: " + ", ".join(waiting)
        step.status = with_conditions(
            status, ctx, "progressing", "Reverting", message, phase=Phase.REVERTING
        )
        return step
    _release_ours(step, spec, status, world, ctx)
    back = "; ".join(describe_original(o) for o in status.originals)
    scaled = (False, "Reverted", f"The originals are back: {back}")
    if why == EndReason.TRIGGER_FAILED:
        error = status.gate.error if status.gate and status.gate.error else "no data"
        message = f"The trigger failed ({error}; onNoData: Fail); the originals are back: {back}"
        step.status = with_conditions(
            status,
            ctx,
            "stalled",
            "TriggerFailed",
            message,
            scaled=scaled,
            phase=Phase.FAILED,
            completed_at=ctx.now.replace(microsecond=0),
        )
    else:
        message = f"{why.value}; the originals are back: {back}"
        step.status = with_conditions(
            status,
            ctx,
            "ready",
            "Reverted",
            message,
            scaled=scaled,
            phase=Phase.COMPLETED,
            completed_at=ctx.now.replace(microsecond=0),
        )
    step.notes.append(Event(NORMAL, "Completed", message))
    return step


def finalize(
    status: EmergencyScaleStatus,
    world: World,
    ctx: Context,
    *,
    spec: EmergencyScaleSpec | None = None,
) -> Outcome:
    """The object is being deleted: put the originals back (unless revert: false), let go.

    From status alone: the spec may be one the operator cannot read any more. When it
    can, its targets' holds are released too (taken just before a crash, before any
    original was recorded)."""
    step = Step(status)
    revert = status.revert if status.revert is not None else True
    if revert and not status.is_done():
        for original in status.originals:
            _restore_one(step, original, world.get(key_of(original)), ctx)
    keys = [key_of(o) for o in status.originals]
    keys += [key_of(t) for t in spec.targets] if spec is not None else []
    for key in dict.fromkeys(keys):
        workload = world.get(key)
        if workload is not None and same_holder(workload.held_by, ctx.holder):
            step.release.append(key)
    return step.done()
