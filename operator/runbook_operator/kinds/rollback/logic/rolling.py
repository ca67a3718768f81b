"""RollingBack: restore one template at a time, then follow the rollouts to their end."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ....core.conditions import progressing, ready, stalled
from ....core.holds import same_holder
from ....core.rollout import (
    controller_behind,
    rollout_status,
)
from ....core.undo import (
    equal_ignore_hash,
    meta,
    owned_replica_sets,
    revision,
    rollback_patch,
    template_of,
)
from ..api import (
    RollbackPhase,
    TargetState,
    TargetStatus,
)
from .common import (
    DONE_STATES,
    Obj,
    Pass_,
    Plan,
    held,
    holder_of,
    marked,
)

# --- RollingBack: restore one template per pass, then follow the rollouts --------


def _by_name(replica_sets: Iterable[Obj], name: str | None) -> Obj | None:
    return next((rs for rs in replica_sets if name and meta(rs).get("name") == name), None)


def roll(p: Pass_) -> Plan:
    targets = list(p.status.targets)
    for i, target in enumerate(targets):
        if target.state == TargetState.PLANNED:
            return _apply(p, targets, i)
    targets = [_progress(p, t) if t.state == TargetState.ROLLING_OUT else t for t in targets]
    if all(t.state in DONE_STATES for t in targets):
        return _finish(p, targets)
    message = "; ".join(
        f"{t.name}: {t.message}" for t in targets if t.state == TargetState.ROLLING_OUT
    )
    status = p.write(targets=targets, conditions=p.conditions(progressing, "RollingBack", message))
    return Plan(status, tuple(p.events))


def _failed(p: Pass_, target: TargetStatus, message: str) -> TargetStatus:
    p.event("Warning", "TargetFailed", f"{target.name}: {message}")
    return target.model_copy(
        update={"state": TargetState.FAILED, "message": message, "completed_at": p.now}
    )


def _apply(p: Pass_, targets: list[TargetStatus], i: int) -> Plan:
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
    elif (other := holder_of(seen)) and not same_holder(other, p.holder):
        # Its hold travels with the restore (hold_with_restore), so another operation
        # could take it after the decision: wait until it is released.
        return held(p.status, t.name, other, generation=p.generation, now=p.now)
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
        step = (t.name, rollback_patch(deployment, to_rs, p.holder, p.instance))
    status = p.write(targets=targets)
    return Plan(status, tuple(p.events), apply=step)


def _unchanged(t: TargetStatus, deployment: Obj, owned: Sequence[Obj]) -> bool:
    """Whether the Deployment still has the template the decision was made on."""
    from_rs = _by_name(owned, t.from_replica_set)
    if from_rs is not None:
        return equal_ignore_hash(template_of(deployment), template_of(from_rs))
    return revision(deployment) == t.from_revision and not controller_behind(deployment)


def _rolling_out(p: Pass_, t: TargetStatus, message: str) -> TargetStatus:
    return t.model_copy(
        update={"state": TargetState.ROLLING_OUT, "applied_at": p.now, "message": message}
    )


def _progress(p: Pass_, t: TargetStatus) -> TargetStatus:
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


def _finish(p: Pass_, targets: list[TargetStatus]) -> Plan:
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
