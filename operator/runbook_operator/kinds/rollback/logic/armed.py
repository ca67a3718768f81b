"""Armed: watch for new revisions; ask the trigger only while a window is open."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from ....core import gate
from ....core.conditions import progressing, ready, stalled
from ....core.fields import parse_duration
from ....core.gate import Sample
from ....core.rollout import (
    parse_time,
    progressing_condition,
    rollout_status,
)
from ....core.undo import (
    Choice,
    Refusal,
    choose,
    revision,
)
from ..api import (
    RollbackPhase,
    RollbackSpec,
    RollbackStatus,
    TargetState,
    TargetStatus,
    TriggerStatus,
)
from .common import (
    Obj,
    Pass_,
    Plan,
    recorded_targets,
)
from .pending import refuse

# --- Armed: watch for new revisions; evaluate the trigger only inside a window ----


def arm(p: Pass_) -> Plan:
    missing = [
        Refusal("DeploymentNotFound", f"Deployment {t.name} does not exist in this namespace")
        for t in p.spec.targets
        if p.seen(t.name).deployment is None
    ]
    if missing:
        return refuse(p, recorded_targets(p), missing)
    trigger = p.spec.trigger
    assert trigger is not None
    p.event(
        "Normal",
        "Armed",
        f"watching {', '.join(t.name for t in p.spec.targets)}: rolls back once when "
        f"{_describe_trigger(p.spec)} within {trigger.window} after a new revision rolled out",
    )
    return watch(replace(p, status=p.status.model_copy(update={"phase": RollbackPhase.ARMED})))


def _describe_trigger(spec: RollbackSpec) -> str:
    t = spec.trigger
    assert t is not None
    hold = f" for {t.for_}" if t.for_ else ""
    return f"`{t.query}` {t.comparison.value} {t.threshold:g}{hold}"


def _rolled_out_at(deployment: Obj, now: datetime) -> datetime:
    """When the current revision finished rolling out, as the Deployment controller noted it."""
    condition = progressing_condition(deployment)
    if condition.get("reason") == "NewReplicaSetAvailable":
        return parse_time(condition.get("lastUpdateTime")) or now
    return now


def _watch_one(p: Pass_, t: TargetStatus, window: timedelta) -> tuple[TargetStatus, bool]:
    """The target with its latest rolled-out revision recorded, and whether its window is open."""
    seen = p.seen(t.name)
    deployment = seen.deployment
    if deployment is None:
        return t.model_copy(update={"message": "the Deployment does not exist"}), False
    number = revision(deployment)
    done = rollout_status(deployment, None, p.now).done
    if done and number != t.watched_revision:
        at = _rolled_out_at(deployment, p.now)
        t = t.model_copy(
            update={"watched_revision": number, "rolled_out_at": at, "window_ends_at": at + window}
        )
        if at + window > p.now:
            p.event(
                "Normal",
                "Watching",
                f"{t.name}: revision {number} rolled out; the trigger may fire until "
                f"{(at + window).isoformat(timespec='seconds')}",
            )
    in_window = bool(
        done
        and number == t.watched_revision
        and t.window_ends_at is not None
        and p.now < t.window_ends_at
    )
    choice = choose(t.name, deployment, seen.replica_sets, None) if in_window else None
    is_open = isinstance(choice, Choice) and not choice.already
    message = _window_message(t, is_open, done, choice)
    return t.model_copy(update={"message": message}), is_open


def _window_message(
    t: TargetStatus, is_open: bool, done: bool, choice: Choice | Refusal | None
) -> str:
    if is_open:
        return f"revision {t.watched_revision} is inside its window"
    if not done:
        return "a rollout is in progress; its window opens when it completes"
    if isinstance(choice, Refusal):
        return f"inside its window but cannot be rolled back: {choice.message}"
    return f"no recent rollout (revision {t.watched_revision} is outside its window)"


def watch(p: Pass_) -> Plan:
    trigger = p.spec.trigger
    assert trigger is not None
    window = parse_duration(trigger.window)
    targets, opened = [], []
    for t in recorded_targets(p):
        watched, is_open = _watch_one(p, t, window)
        targets.append(watched)
        if is_open:
            opened.append(t.name)
    if opened:  # the trigger's evaluation (after_trigger) sets the conditions
        status = p.write(phase=RollbackPhase.ARMED, targets=targets)
        return Plan(status, tuple(p.events), evaluate=tuple(opened))
    message = f"rolls back when {_describe_trigger(p.spec)}; no window open"
    state = p.status.trigger
    if state is not None:  # a streak never carries over from one window to the next
        state = state.model_copy(update={"holds": None, "since": None, "value": None})
    status = p.write(
        phase=RollbackPhase.ARMED,
        targets=targets,
        trigger=state,
        conditions=p.conditions(ready, "Armed", message),
    )
    return Plan(status, tuple(p.events))


def after_trigger(
    spec: RollbackSpec,
    status: RollbackStatus,
    opened: Sequence[str],
    sample: Sample,
    *,
    generation: int | None,
    now: datetime,
) -> Plan:
    """Armed, with a window open for `opened`: the Prometheus `sample` decides whether to fire."""
    trigger = spec.trigger
    assert trigger is not None
    p = Pass_(spec, status, {}, "", generation, now)
    verdict = gate.evaluate(trigger, status.trigger, sample, now, active=False)
    state = TriggerStatus(
        value=verdict.state.value,
        holds=verdict.state.holds,
        since=verdict.state.since,
        evaluated_at=verdict.state.evaluated_at,
        error=verdict.state.error,
    )
    described = gate.describe(trigger, verdict)
    if verdict.failed:
        message = f"the trigger cannot be evaluated: {verdict.failed}; nothing was changed"
        p.event("Warning", "TriggerFailed", message)
        new = p.write(
            phase=RollbackPhase.FAILED,
            trigger=state,
            completed_at=now,
            conditions=p.conditions(stalled, "TriggerFailed", message),
        )
        return Plan(new, tuple(p.events))
    if verdict.invalid:
        message = f"the trigger's query needs fixing: {verdict.invalid}"
        reason = "InvalidQuery"
        if verdict.problem == gate.Problem.URL_NOT_ALLOWED:
            message, reason = (
                f"the trigger cannot be asked: {verdict.invalid}",
                str(verdict.problem),
            )
        if status.trigger is None or status.trigger.error != state.error:
            p.event("Warning", reason, message)
        new = p.write(trigger=state, conditions=p.conditions(stalled, reason, message))
        return Plan(new, tuple(p.events))
    if not verdict.on:
        message = f"rolls back when {_describe_trigger(spec)}; window open for " + ", ".join(opened)
        new = p.write(
            trigger=state, conditions=p.conditions(ready, "Armed", f"{message}: {described}")
        )
        return Plan(new, tuple(p.events))
    return _fire(p, state, opened, described)


def _fire(p: Pass_, state: TriggerStatus, opened: Sequence[str], described: str) -> Plan:
    targets = []
    for t in p.status.targets:
        if t.name in opened:
            targets.append(t.model_copy(update={"state": TargetState.PENDING, "message": None}))
        else:
            targets.append(
                t.model_copy(
                    update={
                        "state": TargetState.NOT_RECENT,
                        "message": "no new revision inside its window when the trigger fired; "
                        "left alone",
                    }
                )
            )
    undone = ", ".join(
        f"{t.name} revision {t.watched_revision}" for t in targets if t.name in opened
    )
    message = f"trigger fired ({described}); rolling back {undone}"
    p.event("Warning", "TriggerFired", message)
    status = p.write(
        phase=RollbackPhase.PENDING,
        targets=targets,
        trigger=state.model_copy(update={"fired_at": p.now}),
        conditions=p.conditions(progressing, "TriggerFired", message),
    )
    return Plan(status, tuple(p.events))
