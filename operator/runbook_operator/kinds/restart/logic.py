"""A Restart's decisions: (spec, status, observed workloads, now) -> the next step.

Pending -> Restarting -> [Verifying] -> Completed, or Failed, or Refused before any
change. Each step is a `Plan`: holds to take, the status to write (before the patches
it records), the restart patches, holds to release, events. The restart stamp (the
`kubectl.kubernetes.io/restartedAt` value) is chosen once and recorded before any
workload gets it, so a workload that already has it is restarted already: a resumed,
retried or re-applied pass never restarts it a second time. A workload whose
annotation is neither its recorded original nor our stamp was restarted by someone
else meanwhile, and is left to that rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ...core.draft import Draft, held
from ...core.events import NORMAL, WARNING, Event
from ...core.fields import parse_duration, span
from ...core.names import HOLD_ANNOTATION, RESTARTED_AT, REVISION_ANNOTATION
from ...core.rollout import rollout_status
from ...core.schedule import instant
from .api import (
    Order,
    RestartPhase,
    RestartSpec,
    RestartStatus,
    TargetKind,
    TargetState,
    TargetStatus,
)

__all__ = [
    "Key",
    "Plan",
    "Seen",
    "after_probe",
    "fresh_stamp",
    "key_of",
    "reconcile",
    "restart_patch",
    "summary",
    "wake_at",
]

Obj = dict[str, Any]
Key = tuple[str, str]
"""(kind, name)"""


@dataclass(frozen=True)
class Seen:
    """One workload as the handler read it in this pass."""

    obj: Obj | None
    replica_set: str | None = None
    """A Deployment's ReplicaSet of its current revision, when the handler found it."""


@dataclass
class Plan:
    status: RestartStatus
    events: list[Event] = field(default_factory=list)
    acquire: list[Key] = field(default_factory=list)
    patches: list[Key] = field(default_factory=list)
    """Workloads to set the restart stamp on (status.restartStamp)."""
    release: list[Key] = field(default_factory=list)
    probe: bool = False
    """Ask the health check, then call after_probe()."""


def key_of(target: Any) -> Key:
    return (str(target.kind.value), str(target.name))


def restart_patch(stamp: str) -> Obj:
    """The strategic-merge patch `kubectl rollout restart` sends."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def _annotation(obj: Obj) -> str | None:
    template = (obj.get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)
    return None if value is None else str(value)


def _holder(obj: Obj) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(HOLD_ANNOTATION)
    return None if value is None else str(value)


def _revision(kind: str, obj: Obj) -> str | None:
    if kind == TargetKind.STATEFUL_SET:
        value = (obj.get("status") or {}).get("currentRevision")
    else:
        value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    return None if value is None else str(value)


def summary(status: RestartStatus, spec: RestartSpec) -> str:
    """`mail-score-backend Complete, mail-score-frontend Restarting`."""
    recorded = {(t.kind.value, t.name): t for t in status.targets}
    parts = []
    for target in spec.targets:
        found = recorded.get(key_of(target))
        parts.append(f"{target.name} {found.state.value if found else 'Waiting'}")
    return ", ".join(parts)


@dataclass
class _Pass(Draft[RestartStatus]):
    spec: RestartSpec
    seen: Mapping[Key, Seen] = field(default_factory=dict)
    holder: str = ""

    def summed(self, status: RestartStatus) -> RestartStatus:
        return status.model_copy(update={"targets_summary": summary(status, self.spec)})


def reconcile(
    spec: RestartSpec,
    status: RestartStatus,
    seen: Mapping[Key, Seen],
    *,
    holder: str,
    generation: int | None,
    now: datetime,
) -> Plan:
    p = _Pass(status, generation, now, spec, seen, holder)
    if status.is_done():
        return Plan(status)
    if status.phase in (None, RestartPhase.PENDING):
        return _start(p)
    if status.phase == RestartPhase.RESTARTING:
        return _restart(p)
    return Plan(status, probe=True)  # Verifying: the handler asks the health check


# --- Pending: refuse, wait for holds, or take them and record everything ---------------


def _refusal(kind: str, name: str, obj: Obj | None) -> str | None:
    if obj is None:
        return f"{kind} {name} does not exist in this namespace"
    spec = obj.get("spec") or {}
    if kind == TargetKind.DEPLOYMENT and spec.get("paused"):
        return (
            f"Deployment {name} is paused and `kubectl rollout restart` refuses a paused "
            f"Deployment: resume it (`kubectl rollout resume deployment/{name}`), then "
            "create the Restart again"
        )
    strategy = (spec.get("updateStrategy") or {}).get("type")
    if kind == TargetKind.STATEFUL_SET and strategy == "OnDelete":
        return (
            f"StatefulSet {name} has updateStrategy OnDelete: a restart annotation would "
            "roll no pod; delete its pods by hand, or switch it to RollingUpdate"
        )
    return None


def _start(p: _Pass) -> Plan:
    problems = []
    for target in p.spec.targets:
        problem = _refusal(target.kind.value, target.name, p.seen[key_of(target)].obj)
        if problem is not None:
            problems.append(problem)
    if problems:
        message = "; ".join(problems) + ". Nothing was restarted."
        status = p.write(
            phase=RestartPhase.REFUSED,
            completed_at=p.now,
            conditions=p.conditions("stalled", "Refused", message),
        )
        return Plan(status, [Event(WARNING, "Refused", message)])
    held = [
        (t.name, holder)
        for t in p.spec.targets
        if (holder := _holder(p.seen[key_of(t)].obj or {})) not in (None, p.holder)
    ]
    if held:
        message = "; ".join(f"{name} is held by {who}" for name, who in held)
        message += "; the restart starts when it is released"
        return held_elsewhere(
            spec=p.spec, status=p.status, message=message, generation=p.generation, now=p.now
        )
    targets = []
    for target in p.spec.targets:
        obj = p.seen[key_of(target)].obj or {}
        targets.append(
            TargetStatus(
                kind=target.kind,
                name=target.name,
                previous_restarted_at=_annotation(obj),
                old_revision=_revision(target.kind.value, obj),
                old_replica_set=p.seen[key_of(target)].replica_set,
            )
        )
    stamp = fresh_stamp(p.now, [t.previous_restarted_at for t in targets])
    names = ", ".join(t.name for t in p.spec.targets)
    message = f"restarting {names} ({p.spec.order.value}) with restartedAt {stamp}"
    status = p.write(
        phase=RestartPhase.RESTARTING,
        restart_stamp=stamp,
        targets=targets,
        started_at=p.now,
        conditions=p.conditions("progressing", "Restarting", message),
    )
    plan = Plan(status, [Event(NORMAL, "Started", message)])
    plan.acquire = [key_of(t) for t in p.spec.targets]
    return plan


def fresh_stamp(now: datetime, previous: list[str | None]) -> str:
    """A restartedAt that no target carries already. The stamp has kubectl's one-second
    precision: a second restart within the same second would leave the template as it
    is, and nothing would roll."""
    at, taken = now, {p for p in previous if p}
    while instant(at) in taken:
        at += timedelta(seconds=1)
    return instant(at)


def held_elsewhere(
    *,
    spec: RestartSpec,
    status: RestartStatus,
    message: str,
    generation: int | None,
    now: datetime,
) -> Plan:
    """Pending while another operation holds a target; an event only when it is news."""
    new, events = held(_Pass(status, generation, now, spec), RestartPhase.PENDING, message)
    return Plan(new, events)


# --- Restarting: the next restarts, then follow every rollout --------------------------


def _turn(p: _Pass, targets: list[TargetStatus], index: int) -> bool:
    if p.spec.order == Order.ALL_AT_ONCE:
        return True
    return all(t.state == TargetState.COMPLETE for t in targets[:index])


def _restart(p: _Pass) -> Plan:
    stamp = p.status.restart_stamp
    assert stamp is not None
    plan = Plan(p.status)
    targets = [t.model_copy() for t in p.status.targets]
    for i, t in enumerate(targets):
        obj = p.seen.get((t.kind.value, t.name), Seen(None)).obj
        if t.state == TargetState.WAITING and _turn(p, targets, i):
            targets[i] = _begin(p, plan, t, obj, stamp)
        elif t.state == TargetState.RESTARTING:
            targets[i] = _follow(p, plan, t, obj, stamp)
    return _judge(p, plan, targets)


def _begin(p: _Pass, plan: Plan, t: TargetStatus, obj: Obj | None, stamp: str) -> TargetStatus:
    if obj is None:
        plan.events.append(Event(WARNING, "TargetGone", f"{t.kind.value} {t.name} was deleted"))
        return _failed(p, t, f"{t.kind.value} {t.name} was deleted before its restart")
    if _annotation(obj) != stamp:
        plan.patches.append((t.kind.value, t.name))
    text = f"set restartedAt {stamp}; rolling out"
    plan.events.append(Event(NORMAL, "Restarted", f"{t.kind.value} {t.name}: {text}"))
    return t.model_copy(
        update={"state": TargetState.RESTARTING, "started_at": p.now, "message": text}
    )


def _failed(p: _Pass, t: TargetStatus, message: str) -> TargetStatus:
    return t.model_copy(
        update={"state": TargetState.FAILED, "completed_at": p.now, "message": message}
    )


def _follow(p: _Pass, plan: Plan, t: TargetStatus, obj: Obj | None, stamp: str) -> TargetStatus:
    if obj is None:
        return _failed(p, t, f"{t.kind.value} {t.name} was deleted during its rollout")
    current = _annotation(obj)
    if current == t.previous_restarted_at and current != stamp:
        plan.patches.append((t.kind.value, t.name))  # our patch did not land: ensure it
        return t
    if current != stamp:
        text = f"restarted by someone else meanwhile (restartedAt {current}); following that"
        t = t.model_copy(update={"message": text})
    done, failed, text = _rollout(t.kind.value, obj, t.started_at, p.now)
    limit = parse_duration(p.spec.timeout)
    ready_replicas = int((obj.get("status") or {}).get("readyReplicas") or 0)
    t = t.model_copy(update={"ready_replicas": ready_replicas})
    if failed is not None:
        plan.events.append(Event(WARNING, "RolloutFailed", f"{t.name}: {failed}"))
        return _failed(p, t, failed)
    if not done and t.started_at is not None and p.now - t.started_at > limit:
        message = f"{t.kind.value} {t.name} did not finish rolling out within {span(limit)}"
        plan.events.append(Event(WARNING, "RolloutFailed", f"{message}: {text}"))
        return _failed(p, t, f"{message}: {text}")
    if not done:
        return t.model_copy(update={"message": text})
    new = {
        "state": TargetState.COMPLETE,
        "completed_at": p.now,
        "new_revision": _revision(t.kind.value, obj)
        if t.kind == TargetKind.DEPLOYMENT
        else (obj.get("status") or {}).get("updateRevision"),
        "new_replica_set": p.seen[(t.kind.value, t.name)].replica_set,
        "message": text,
    }
    plan.events.append(Event(NORMAL, "RolledOut", f"{t.kind.value} {t.name}: {text}"))
    return t.model_copy(update=new)


def _rollout(
    kind: str, obj: Obj, since: datetime | None, now: datetime
) -> tuple[bool, str | None, str]:
    """(done, failed, words) for a Deployment (kubectl rollout status) or a StatefulSet."""
    if kind == TargetKind.DEPLOYMENT:
        rollout = rollout_status(obj, since, now)
        return rollout.done, rollout.message if rollout.failed else None, rollout.message
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, None, "waiting for the StatefulSet controller to see the change"
    updated, ready_n = int(st.get("updatedReplicas") or 0), int(st.get("readyReplicas") or 0)
    if st.get("updateRevision") != st.get("currentRevision") or updated < wanted:
        return False, None, f"{updated} of {wanted} pods updated"
    if ready_n < wanted:
        return False, None, f"{ready_n} of {wanted} pods ready"
    return True, None, f"StatefulSet {meta.get('name')} rolled out: {wanted} pods updated and ready"


def _judge(p: _Pass, plan: Plan, targets: list[TargetStatus]) -> Plan:
    keys = [(t.kind.value, t.name) for t in targets]
    failed = [t for t in targets if t.state == TargetState.FAILED]
    if failed:
        message = "; ".join(f"{t.name}: {t.message}" for t in failed)
        later = [t.name for t in targets if t.state == TargetState.WAITING]
        if later:
            message += f"; not restarted: {', '.join(later)}"
        plan.status = p.write(
            phase=RestartPhase.FAILED,
            targets=targets,
            completed_at=p.now,
            conditions=p.conditions("stalled", "RolloutFailed", message),
        )
        plan.events.append(Event(WARNING, "Failed", message))
        plan.release = keys
        return plan
    if all(t.state == TargetState.COMPLETE for t in targets):
        if p.spec.health_check is not None:
            message = "every rollout finished; checking that the service is healthy"
            plan.status = p.write(
                phase=RestartPhase.VERIFYING,
                targets=targets,
                rolled_out_at=p.now,
                conditions=p.conditions("progressing", "Verifying", message),
            )
            plan.events.append(Event(NORMAL, "Verifying", message))
            return plan
        status = p.write(targets=targets, rolled_out_at=p.now)
        return _complete(p, plan, status, "every rollout finished")
    moving = "; ".join(
        f"{t.name}: {t.message}" for t in targets if t.state == TargetState.RESTARTING
    )
    plan.status = p.write(
        targets=targets,
        conditions=p.conditions("progressing", "Restarting", moving or "restarting"),
    )
    return plan


def _complete(p: _Pass, plan: Plan, status: RestartStatus, why: str) -> Plan:
    names = ", ".join(t.name for t in status.targets)
    message = f"restarted {names}; {why}"
    draft = _Pass(status, p.generation, p.now, p.spec)
    plan.status = draft.write(
        phase=RestartPhase.COMPLETED,
        completed_at=p.now,
        conditions=draft.conditions("ready", "Restarted", message),
    )
    plan.events.append(Event(NORMAL, "Completed", message))
    plan.release = [(t.kind.value, t.name) for t in status.targets]
    return plan


# --- Verifying --------------------------------------------------------------------


def after_probe(
    spec: RestartSpec,
    status: RestartStatus,
    healthy: bool,
    text: str,
    *,
    failed: str | None,
    generation: int | None,
    now: datetime,
) -> Plan:
    """The health check's answer: Completed, Failed (never passed in time), or still asking."""
    assert spec.health_check is not None
    p = _Pass(status, generation, now, spec)
    if healthy:
        return _complete(p, Plan(status), p.write(health=text), text)
    why = spec.health_check.given_up(status.rolled_out_at or now, now, failed)
    if why is not None:
        message = f"{why}: {text}"
        new = p.write(
            phase=RestartPhase.FAILED,
            health=text,
            completed_at=now,
            conditions=p.conditions("stalled", "Unhealthy", message),
        )
        plan = Plan(new, [Event(WARNING, "Unhealthy", message)])
        plan.release = [(t.kind.value, t.name) for t in status.targets]
        return plan
    new = p.write(health=text, conditions=p.conditions("progressing", "Verifying", text))
    return Plan(new)


# --- when to look again ---------------------------------------------------------------


def wake_at(
    spec: RestartSpec, status: RestartStatus, now: datetime, poll: timedelta
) -> datetime | None:
    """Rollouts are followed through watch events of the workloads; the clock is left for
    the timeouts and the health check (asked every `poll`)."""
    if status.is_done():
        return None
    if status.phase == RestartPhase.VERIFYING:
        return now + poll
    limit = parse_duration(spec.timeout)
    due = [
        t.started_at + limit
        for t in status.targets
        if t.state == TargetState.RESTARTING and t.started_at is not None
    ]
    return min(due) if due else None
