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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ..api.common import Condition, parse_duration
from ..api.rollback import (
    RollbackPhase,
    RollbackSpec,
    RollbackStatus,
    TargetState,
    TargetStatus,
    TriggerStatus,
)
from ..conditions import progressing, ready, set_condition, stalled, waiting
from ..names import HOLD_ANNOTATION
from . import gate
from .events import Event
from .gate import Sample
from .rollout_undo import (
    Choice,
    Refusal,
    annotations_of,
    choose,
    controller_behind,
    equal_ignore_hash,
    gitops_manager,
    images,
    meta,
    new_replica_set,
    owned_replica_sets,
    parse_time,
    progressing_condition,
    revision,
    rollback_patch,
    rollout_status,
    template_of,
)

__all__ = [
    "GITOPS_MANAGED",
    "Event",
    "Observed",
    "Plan",
    "after_trigger",
    "held",
    "marked",
    "reconcile",
    "summary",
]

Obj = dict[str, Any]
GITOPS_MANAGED = "GitOpsManaged"


# --- the operation's steps ----------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What the handler read for one target in this pass."""

    deployment: Obj | None
    replica_sets: tuple[Obj, ...] = ()
    """The ReplicaSets matching the Deployment's selector (ownership is checked here)."""


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
_DONE_STATES = frozenset(
    {
        TargetState.COMPLETE,
        TargetState.ALREADY_AT_REVISION,
        TargetState.NOT_RECENT,
        TargetState.FAILED,
    }
)


@dataclass(frozen=True)
class _Pass:
    """The inputs of one pass, so helpers take one argument instead of six."""

    spec: RollbackSpec
    status: RollbackStatus
    observed: Mapping[str, Observed]
    holder: str
    generation: int | None
    now: datetime
    events: list[Event] = field(default_factory=list)

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


def reconcile(
    spec: RollbackSpec,
    status: RollbackStatus,
    observed: Mapping[str, Observed],
    *,
    holder: str,
    generation: int | None,
    now: datetime,
) -> Plan:
    """The next step of a Rollback, from its spec, its recorded status and what was observed."""
    p = _Pass(spec, status, observed, holder, generation, now)
    if status.phase in TERMINAL_PHASES:
        if status.observed_generation != generation:
            return Plan(p.write())
        return Plan(None)
    if status.phase == RollbackPhase.ARMED:
        return _watch(p)
    if status.phase == RollbackPhase.ROLLING_BACK:
        return _roll(p)
    if status.phase is None and spec.trigger is not None:
        return _arm(p)
    return _start(p)


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


def _targets(p: _Pass) -> list[TargetStatus]:
    """The recorded targets, one per spec target, in spec order."""
    recorded = {t.name: t for t in p.status.targets}
    return [recorded.get(t.name) or TargetStatus(name=t.name) for t in p.spec.targets]


# --- Pending: decide, refuse, wait for holds, or take them and record the decision


def _start(p: _Pass) -> Plan:
    targets = _targets(p)
    wanted = {t.name: t.to_revision for t in p.spec.targets}
    decided: list[TargetStatus] = []
    refusals: list[Refusal] = []
    for target in targets:
        if target.state != TargetState.PENDING:
            decided.append(target)
            continue
        seen = p.seen(target.name)
        choice = _fired_guard(target, seen) or choose(
            target.name, seen.deployment, seen.replica_sets, wanted[target.name]
        )
        if isinstance(choice, Refusal):
            refusals.append(choice)
            decided.append(target.model_copy(update={"message": choice.message}))
            continue
        if seen.deployment is not None and controller_behind(seen.deployment):
            return _waiting(
                p.status,
                "ControllerCatchingUp",
                f"Deployment {target.name} is being updated; "
                "deciding once the Deployment controller has seen the change",
                warning=False,
                generation=p.generation,
                now=p.now,
            )
        decided.append(_decide(target, seen, choice))
    if refusals:
        return _refuse(p, decided, refusals)
    return _take_holds(p, decided)


def _fired_guard(target: TargetStatus, seen: Observed) -> Refusal | None:
    """After the trigger fired: refuse if a newer revision replaced the one it fired for."""
    if target.watched_revision is None or seen.deployment is None:
        return None
    current = revision(seen.deployment)
    if current == target.watched_revision:
        return None
    return Refusal(
        "RevisionChanged",
        f"Deployment {target.name} moved from revision {target.watched_revision} to {current} "
        "after the trigger fired; not rolled back",
    )


def _decide(target: TargetStatus, seen: Observed, choice: Choice) -> TargetStatus:
    deployment = seen.deployment or {}
    owned = owned_replica_sets(deployment, seen.replica_sets)
    current = new_replica_set(deployment, owned)
    fields: dict[str, Any] = {
        "from_revision": revision(deployment),
        "from_replica_set": meta(current).get("name") if current is not None else None,
        "from_images": images(template_of(deployment)),
        "to_revision": choice.to_revision,
        "to_replica_set": meta(choice.replica_set).get("name"),
        "to_images": images(template_of(choice.replica_set)),
        "gitops": gitops_manager(deployment),
    }
    if choice.already:
        fields["state"] = TargetState.ALREADY_AT_REVISION
        fields["message"] = (
            f"current template already matches revision {choice.to_revision}; left alone"
        )
    else:
        fields["state"] = TargetState.PLANNED
        fields["message"] = f"will restore the template of revision {choice.to_revision}"
    return target.model_copy(update=fields)


def _refuse(p: _Pass, targets: list[TargetStatus], refusals: list[Refusal]) -> Plan:
    message = "; ".join(r.message for r in refusals) + ". Nothing was changed."
    p.event("Warning", refusals[0].reason, message)
    status = p.write(
        phase=RollbackPhase.REFUSED,
        targets=targets,
        completed_at=p.now,
        conditions=p.conditions(stalled, refusals[0].reason, message),
    )
    return Plan(status, tuple(p.events))


def _waiting(
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
    return _waiting(status, "WorkloadHeld", message, warning=True, generation=generation, now=now)


def _holder_of(seen: Observed) -> str | None:
    return annotations_of(seen.deployment or {}).get(HOLD_ANNOTATION)


def _gitops(p: _Pass, targets: Sequence[TargetStatus]) -> list[Condition]:
    managed = [t for t in targets if t.gitops and t.state != TargetState.NOT_RECENT]
    if not managed:
        return list(p.status.conditions)
    who = ", ".join(f"{t.name} ({t.gitops})" for t in managed)
    message = (
        f"{who}: the next sync re-applies the revision rolled back from, unless auto-sync is "
        "suspended or the change is reverted in Git"
    )
    if not any(c.type == GITOPS_MANAGED and c.message == message for c in p.status.conditions):
        p.event("Warning", GITOPS_MANAGED, message)
    return set_condition(
        p.status.conditions,
        GITOPS_MANAGED,
        True,
        GITOPS_MANAGED,
        message,
        generation=p.generation,
        now=p.now,
    )


def _take_holds(p: _Pass, targets: list[TargetStatus]) -> Plan:
    planned = [t for t in targets if t.state == TargetState.PLANNED]
    for t in planned:
        other = _holder_of(p.seen(t.name))
        if other and other != p.holder:
            return held(p.status, t.name, other, generation=p.generation, now=p.now)
    p = replace(p, status=p.status.model_copy(update={"conditions": _gitops(p, targets)}))
    if not planned:
        message = "; ".join(f"{t.name}: {t.message}" for t in targets if t.message)
        p.event("Normal", "AlreadyAtRevision", message)
        status = p.write(
            phase=RollbackPhase.COMPLETED,
            targets=targets,
            completed_at=p.now,
            conditions=p.conditions(ready, "AlreadyAtRevision", message),
        )
        return Plan(status, tuple(p.events))
    message = "rolling back " + ", ".join(
        f"{t.name} from revision {t.from_revision} to {t.to_revision}" for t in planned
    )
    p.event("Normal", "Started", f"{message} (holding the Deployments meanwhile)")
    status = p.write(
        phase=RollbackPhase.ROLLING_BACK,
        targets=targets,
        started_at=p.now,
        conditions=p.conditions(progressing, "RollingBack", message),
    )
    return Plan(status, tuple(p.events), hold=tuple(t.name for t in planned))


# --- RollingBack: restore one template per pass, then follow the rollouts --------


def _by_name(replica_sets: Iterable[Obj], name: str | None) -> Obj | None:
    return next((rs for rs in replica_sets if name and meta(rs).get("name") == name), None)


def _roll(p: _Pass) -> Plan:
    targets = list(p.status.targets)
    for i, target in enumerate(targets):
        if target.state == TargetState.PLANNED:
            return _apply(p, targets, i)
    targets = [_progress(p, t) if t.state == TargetState.ROLLING_OUT else t for t in targets]
    if all(t.state in _DONE_STATES for t in targets):
        return _finish(p, targets)
    message = "; ".join(
        f"{t.name}: {t.message}" for t in targets if t.state == TargetState.ROLLING_OUT
    )
    status = p.write(targets=targets, conditions=p.conditions(progressing, "RollingBack", message))
    return Plan(status, tuple(p.events))


def _failed(p: _Pass, target: TargetStatus, message: str) -> TargetStatus:
    p.event("Warning", "TargetFailed", f"{target.name}: {message}")
    return target.model_copy(
        update={"state": TargetState.FAILED, "message": message, "completed_at": p.now}
    )


def _apply(p: _Pass, targets: list[TargetStatus], i: int) -> Plan:
    t = targets[i]
    seen = p.seen(t.name)
    deployment = seen.deployment
    owned = owned_replica_sets(deployment, seen.replica_sets) if deployment is not None else []
    to_rs = _by_name(owned, t.to_replica_set)
    step: tuple[str, list[Obj]] | None = None
    if deployment is None:
        targets[i] = _failed(p, t, "the Deployment was deleted before its template was restored")
    elif to_rs is not None and equal_ignore_hash(template_of(deployment), template_of(to_rs)):
        # Restored in an earlier pass whose status write was lost (a crash): never twice.
        message = f"found the template of revision {t.to_revision} already restored; rolling out"
        p.event("Normal", "FoundRestored", f"{t.name}: {message}")
        targets[i] = _rolling_out(p, t, message)
    elif to_rs is None:
        targets[i] = _failed(
            p, t, f"ReplicaSet {t.to_replica_set} of revision {t.to_revision} no longer exists"
        )
    elif (deployment.get("spec") or {}).get("paused"):
        targets[i] = _failed(p, t, "the Deployment was paused before its template was restored")
    elif not _unchanged(t, deployment, owned):
        targets[i] = _failed(
            p,
            t,
            f"the Deployment changed (now revision {revision(deployment)}) after the rollback "
            "was decided; not rolled back, to not undo someone else's change",
        )
    else:
        message = (
            f"restored the template of revision {t.to_revision} "
            f"({', '.join(t.to_images)}; was {', '.join(t.from_images)}); rolling out"
        )
        p.event("Normal", "Restored", f"{t.name}: {message}")
        targets[i] = _rolling_out(p, t, message)
        step = (t.name, rollback_patch(deployment, to_rs, p.holder))
    status = p.write(targets=targets)
    return Plan(status, tuple(p.events), apply=step)


def _unchanged(t: TargetStatus, deployment: Obj, owned: Sequence[Obj]) -> bool:
    """Whether the Deployment still has the template the decision was made on."""
    from_rs = _by_name(owned, t.from_replica_set)
    if from_rs is not None:
        return equal_ignore_hash(template_of(deployment), template_of(from_rs))
    return revision(deployment) == t.from_revision and not controller_behind(deployment)


def _rolling_out(p: _Pass, t: TargetStatus, message: str) -> TargetStatus:
    return t.model_copy(
        update={"state": TargetState.ROLLING_OUT, "applied_at": p.now, "message": message}
    )


def _progress(p: _Pass, t: TargetStatus) -> TargetStatus:
    deployment = p.seen(t.name).deployment
    if deployment is None:
        return _failed(p, t, "the Deployment was deleted during its rollout")
    rollout = rollout_status(deployment, t.applied_at, p.now)
    if rollout.failed:
        return _failed(p, t, f"{rollout.message} while rolling out revision {t.to_revision}")
    if not rollout.done:
        return t.model_copy(update={"message": rollout.message})
    number = revision(deployment)
    message = f"rolled out the template of revision {t.to_revision} (now revision {number})"
    p.event("Normal", "RolledOut", f"{t.name}: {message}")
    return t.model_copy(
        update={
            "state": TargetState.COMPLETE,
            "new_revision": number,
            "completed_at": p.now,
            "message": message,
        }
    )


def marked(seen: Observed, holder: str) -> bool:
    """Whether our hold is still on the Deployment or one of its ReplicaSets.

    The Deployment controller copies the Deployment's annotations onto its
    ReplicaSets, so the hold lands there too; left behind, a later
    `kubectl rollout undo` would copy it back onto the Deployment."""
    if seen.deployment is None:
        return False
    if _holder_of(seen) == holder:
        return True
    owned = owned_replica_sets(seen.deployment, seen.replica_sets)
    return any(annotations_of(rs).get(HOLD_ANNOTATION) == holder for rs in owned)


def _finish(p: _Pass, targets: list[TargetStatus]) -> Plan:
    touched = [t.name for t in targets if t.state in (TargetState.COMPLETE, TargetState.FAILED)]
    leftover = tuple(n for n in touched if marked(p.seen(n), p.holder))
    if leftover:
        status = p.write(
            targets=targets,
            conditions=p.conditions(progressing, "Releasing", "releasing the Deployments"),
        )
        return Plan(status, tuple(p.events), release=leftover)
    failed = [t for t in targets if t.state == TargetState.FAILED]
    if failed:
        message = "; ".join(f"{t.name}: {t.message}" for t in failed)
        p.event("Warning", "Failed", message)
        status = p.write(
            phase=RollbackPhase.FAILED,
            targets=targets,
            completed_at=p.now,
            conditions=p.conditions(stalled, "RolloutFailed", message),
        )
        return Plan(status, tuple(p.events))
    message = "; ".join(f"{t.name}: {t.message}" for t in targets if t.message)
    p.event("Normal", "Completed", message)
    status = p.write(
        phase=RollbackPhase.COMPLETED,
        targets=targets,
        completed_at=p.now,
        conditions=p.conditions(ready, "RolledBack", message),
    )
    return Plan(status, tuple(p.events))


# --- Armed: watch for new revisions; evaluate the trigger only inside a window ----


def _arm(p: _Pass) -> Plan:
    missing = [
        Refusal("DeploymentNotFound", f"Deployment {t.name} does not exist in this namespace")
        for t in p.spec.targets
        if p.seen(t.name).deployment is None
    ]
    if missing:
        return _refuse(p, _targets(p), missing)
    trigger = p.spec.trigger
    assert trigger is not None
    p.event(
        "Normal",
        "Armed",
        f"watching {', '.join(t.name for t in p.spec.targets)}: rolls back once when "
        f"{_describe_trigger(p.spec)} within {trigger.window} after a new revision rolled out",
    )
    return _watch(replace(p, status=p.status.model_copy(update={"phase": RollbackPhase.ARMED})))


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


def _watch_one(p: _Pass, t: TargetStatus, window: timedelta) -> tuple[TargetStatus, bool]:
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


def _watch(p: _Pass) -> Plan:
    trigger = p.spec.trigger
    assert trigger is not None
    window = parse_duration(trigger.window)
    targets, opened = [], []
    for t in _targets(p):
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
    p = _Pass(spec, status, {}, "", generation, now)
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
        if status.trigger is None or status.trigger.error != state.error:
            p.event("Warning", "InvalidQuery", message)
        new = p.write(trigger=state, conditions=p.conditions(stalled, "InvalidQuery", message))
        return Plan(new, tuple(p.events))
    if not verdict.on:
        message = f"rolls back when {_describe_trigger(spec)}; window open for " + ", ".join(opened)
        new = p.write(
            trigger=state, conditions=p.conditions(ready, "Armed", f"{message}: {described}")
        )
        return Plan(new, tuple(p.events))
    return _fire(p, state, opened, described)


def _fire(p: _Pass, state: TriggerStatus, opened: Sequence[str], described: str) -> Plan:
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
