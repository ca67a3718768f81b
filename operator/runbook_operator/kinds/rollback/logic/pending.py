"""Pending: decide each target's revision, refuse, wait for holds, or take them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ....core.conditions import Condition, progressing, ready, stalled
from ....core.holds import same_holder
from ....core.rollout import (
    controller_behind,
)
from ....core.undo import (
    GITOPS_MANAGED,
    Choice,
    Observed,
    Refusal,
    choose,
    gitops_managed,
    gitops_manager,
    images,
    meta,
    new_replica_set,
    owned_replica_sets,
    revision,
    template_of,
)
from ..api import (
    RollbackPhase,
    TargetState,
    TargetStatus,
)
from .common import (
    Pass_,
    Plan,
    held,
    holder_of,
    recorded_targets,
    waiting_plan,
)

# --- Pending: decide, refuse, wait for holds, or take them and record the decision


def start(p: Pass_) -> Plan:
    targets = recorded_targets(p)
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
            return waiting_plan(
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
        return refuse(p, decided, refusals)
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


def refuse(p: Pass_, targets: list[TargetStatus], refusals: list[Refusal]) -> Plan:
    message = "; ".join(r.message for r in refusals) + ". Nothing was changed."
    p.event("Warning", refusals[0].reason, message)
    status = p.write(
        phase=RollbackPhase.REFUSED,
        targets=targets,
        completed_at=p.now,
        conditions=p.conditions(stalled, refusals[0].reason, message),
    )
    return Plan(status, tuple(p.events))


def _gitops(p: Pass_, targets: Sequence[TargetStatus]) -> list[Condition]:
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
    return gitops_managed(p.status.conditions, message, generation=p.generation, now=p.now)


def hold_with_restore(plan: Plan, observed: Mapping[str, Observed]) -> bool:
    """Whether the decision's one hold goes out with the template's restore instead of
    before the decision is written: one round trip less before the restore.

    Only for one Deployment nobody holds. The restore's patch carries the hold and is
    guarded by the resourceVersion the decision was made on, so it lands only on the
    Deployment as decided; an operation that took it meanwhile is waited for (`roll`),
    and one that changed it fails the target, as before. Several Deployments take their
    holds first, all or none."""
    if len(plan.hold) != 1:
        return False
    seen = observed.get(plan.hold[0])
    return seen is not None and seen.deployment is not None and holder_of(seen) is None


def _take_holds(p: Pass_, targets: list[TargetStatus]) -> Plan:
    planned = [t for t in targets if t.state == TargetState.PLANNED]
    for t in planned:
        other = holder_of(p.seen(t.name))
        if other and not same_holder(other, p.holder):
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
    if p.status.started_at is None:  # else started before, and waited for a hold since
        p.event("Normal", "Started", f"{message} (holding the Deployments meanwhile)")
    status = p.write(
        phase=RollbackPhase.ROLLING_BACK,
        targets=targets,
        started_at=p.status.started_at or p.now,
        conditions=p.conditions(progressing, "RollingBack", message),
    )
    return Plan(status, tuple(p.events), hold=tuple(t.name for t in planned))
