"""An ImageUpdate's decisions: (spec, status, the Deployment seen, now) -> the next step.

Pending -> Updating -> [Verifying] -> Completed; on a failed rollout or health check,
RollingBack -> Failed with rolledBack; Refused before any change. Each step is a
`Plan`: the hold to take, the status to write (before the change it records), the
`kubectl set image` patch or the `kubectl rollout undo` patch (core.undo), the hold to
release, events. Every step looks at the Deployment before it changes anything, so a
resumed or retried pass never changes it twice: images already set are not set again,
and a template already back at the recorded revision is not undone again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ...core import undo
from ...core.conditions import Condition
from ...core.draft import Draft, held
from ...core.events import NORMAL, WARNING, Event
from ...core.fields import parse_duration, span
from ...core.holds import same_holder
from ...core.names import HOLD_ANNOTATION
from ...core.rollout import rollout_status
from ...core.undo import GITOPS_MANAGED, Observed
from .api import ImagePhase, ImageUpdateSpec, ImageUpdateStatus, OnFailure, PreviousImage

__all__ = [
    "GITOPS_MANAGED",
    "Observed",
    "Plan",
    "after_probe",
    "container_images",
    "reconcile",
    "set_image_patch",
    "summary",
    "wake_at",
]

Obj = dict[str, Any]


@dataclass
class Plan:
    status: ImageUpdateStatus
    events: list[Event] = field(default_factory=list)
    acquire: bool = False
    set_images: Obj | None = None
    """The strategic-merge patch `kubectl set image` sends."""
    undo: list[Obj] | None = None
    """The JSON patch `kubectl rollout undo` sends (core.undo)."""
    release: bool = False
    probe: bool = False
    """Ask the health check, then call after_probe()."""


# --- the Deployment's containers ------------------------------------------------------


def container_images(deployment: Obj) -> dict[str, tuple[str, bool]]:
    """container name -> (image, is an init container), from the pod template."""
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    found: dict[str, tuple[str, bool]] = {}
    for key, init in (("initContainers", True), ("containers", False)):
        for c in pod.get(key) or []:
            found[str(c.get("name"))] = (str(c.get("image")), init)
    return found


def set_image_patch(spec: ImageUpdateSpec, deployment: Obj) -> Obj:
    """What `kubectl set image deployment/<d> c=image ...` sends: each named container
    with its new image, in the list it is in (strategic merge by name)."""
    current = container_images(deployment)
    lists: dict[str, list[Obj]] = {}
    for wanted in spec.images:
        key = "initContainers" if current[wanted.container][1] else "containers"
        lists.setdefault(key, []).append({"name": wanted.container, "image": wanted.image})
    return {"spec": {"template": {"spec": lists}}}


def _missing(spec: ImageUpdateSpec, deployment: Obj) -> list[str]:
    current = container_images(deployment)
    return [i.container for i in spec.images if i.container not in current]


def _state(spec: ImageUpdateSpec, status: ImageUpdateStatus, deployment: Obj) -> str:
    """ "new" (every image set), "old" (none set: our patch did not land), or "other"."""
    current = {name: image for name, (image, _) in container_images(deployment).items()}
    before = {p.container: p.image for p in status.previous}
    if all(current.get(i.container) == i.image for i in spec.images):
        return "new"
    if all(current.get(i.container) == before.get(i.container) for i in spec.images):
        return "old"
    return "other"


def summary(spec: ImageUpdateSpec, status: ImageUpdateStatus) -> str:
    """`backend: mail-score-backend:1.4.2 -> mail-score-backend:1.4.3`."""
    before = {p.container: p.image for p in status.previous}
    return ", ".join(
        f"{i.container}: {before[i.container]} -> {i.image}" if i.container in before else i.image
        for i in spec.images
    )


def _holder(deployment: Obj) -> str | None:
    value = undo.annotations_of(deployment).get(HOLD_ANNOTATION)
    return None if value is None else str(value)


# --- one pass ---------------------------------------------------------------------------


@dataclass
class _Pass(Draft[ImageUpdateStatus]):
    spec: ImageUpdateSpec
    seen: Observed = field(default_factory=lambda: Observed(None))
    holder: str = ""

    def summed(self, status: ImageUpdateStatus) -> ImageUpdateStatus:
        return status.model_copy(update={"images_summary": summary(self.spec, status)})


def reconcile(
    spec: ImageUpdateSpec,
    status: ImageUpdateStatus,
    seen: Observed,
    *,
    holder: str,
    generation: int | None,
    now: datetime,
) -> Plan:
    p = _Pass(status, generation, now, spec, seen, holder)
    if status.is_done():
        return Plan(status)
    if status.phase in (None, ImagePhase.PENDING):
        return _start(p)
    if status.phase == ImagePhase.UPDATING:
        return _updating(p)
    if status.phase == ImagePhase.ROLLING_BACK:
        return _rolling_back(p)
    return Plan(status, probe=True)  # Verifying: the handler asks the health check


# --- Pending: refuse, wait for the hold, or take it and record the originals ------------


def _refusal(p: _Pass) -> str | None:
    name, deployment = p.spec.deployment, p.seen.deployment
    if deployment is None:
        return f"Deployment {name} does not exist in this namespace"
    if (deployment.get("spec") or {}).get("paused"):
        return (
            f"Deployment {name} is paused: the new images would not roll out. Resume it "
            f"(`kubectl rollout resume deployment/{name}`), then create the ImageUpdate again"
        )
    missing = _missing(p.spec, deployment)
    if missing:
        have = ", ".join(sorted(container_images(deployment))) or "none"
        return (
            f"Deployment {name} has no container named {', '.join(missing)} "
            f"(its containers: {have}), as `kubectl set image` would say"
        )
    return None


def _start(p: _Pass) -> Plan:
    problem = _refusal(p)
    if problem is not None:
        message = f"{problem}. Nothing was changed."
        status = p.write(
            phase=ImagePhase.REFUSED,
            completed_at=p.now,
            conditions=p.conditions("stalled", "Refused", message),
        )
        return Plan(status, [Event(WARNING, "Refused", message)])
    deployment = p.seen.deployment
    assert deployment is not None
    other = _holder(deployment)
    if other is not None and not same_holder(other, p.holder):
        return held_elsewhere(p, f"{p.spec.deployment} is held by {other}")
    current = container_images(deployment)
    previous = [
        PreviousImage(
            container=i.container, image=current[i.container][0], init=current[i.container][1]
        )
        for i in p.spec.images
    ]
    owned = undo.owned_replica_sets(deployment, p.seen.replica_sets)
    rs = undo.new_replica_set(deployment, owned)
    p.status = p.status.model_copy(update={"previous": previous})
    message = f"setting {summary(p.spec, p.status)}; rolling out"
    conditions = p.conditions("progressing", "Updating", message)
    conditions, gitops = _gitops(p, conditions, deployment)
    status = p.write(
        phase=ImagePhase.UPDATING,
        previous_revision=undo.revision(deployment),
        previous_replica_set=None if rs is None else undo.meta(rs).get("name"),
        started_at=p.now,
        conditions=conditions,
    )
    plan = Plan(status, [Event(NORMAL, "Updating", message), *gitops], acquire=True)
    plan.set_images = set_image_patch(p.spec, deployment)
    return plan


def _gitops(
    p: _Pass, conditions: list[Condition], deployment: Obj
) -> tuple[list[Condition], list[Event]]:
    manager = undo.gitops_manager(deployment)
    if manager is None:
        return conditions, []
    message = (
        f"{manager} tracks Deployment {p.spec.deployment}: its next sync sets the images in "
        "Git again; commit the new images there too"
    )
    conditions = undo.gitops_managed(conditions, message, generation=p.generation, now=p.now)
    return conditions, [Event(WARNING, GITOPS_MANAGED, message)]


def held_elsewhere(p: _Pass, message: str) -> Plan:
    """Pending while another operation holds the Deployment; an event only when it is news."""
    status, events = held(
        p, ImagePhase.PENDING, f"{message}; the image update starts when it is released"
    )
    return Plan(status, events)


def held_plan(
    spec: ImageUpdateSpec,
    status: ImageUpdateStatus,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Plan:
    """The hold was lost to a race while taking it: wait like any WorkloadHeld."""
    return held_elsewhere(_Pass(status, generation, now, spec), message)


# --- Updating: make sure the images are set, follow the rollout ------------------------


def _updating(p: _Pass) -> Plan:
    deployment = p.seen.deployment
    if deployment is None:
        message = f"Deployment {p.spec.deployment} was deleted during the update"
        return _end(p, ImagePhase.FAILED, "TargetGone", message)
    state = _state(p.spec, p.status, deployment)
    if state == "old":  # recorded, but the patch did not land (a crash, a conflict)
        plan = Plan(p.status)
        plan.set_images = set_image_patch(p.spec, deployment)
        return plan
    if state == "other":
        message = (
            f"the images of Deployment {p.spec.deployment} were changed by someone else "
            "during the update; that change is left as it is"
        )
        return _end(p, ImagePhase.FAILED, "ChangedElsewhere", message)
    rollout = rollout_status(deployment, p.status.started_at, p.now)
    limit = parse_duration(p.spec.timeout)
    late = p.status.started_at is not None and p.now - p.status.started_at > limit
    if rollout.failed or (late and not rollout.done):
        why = rollout.message if rollout.failed else f"not rolled out within {span(limit)}"
        return _failure(p, "RolloutFailed", f"{why} ({rollout.message})" if late else why)
    if not rollout.done:
        status = p.write(conditions=p.conditions("progressing", "Updating", rollout.message))
        return Plan(status)
    revision = undo.revision(deployment)
    if p.spec.health_check is not None:
        message = f"{rollout.message}; checking that the service is healthy"
        status = p.write(
            phase=ImagePhase.VERIFYING,
            new_revision=revision,
            rolled_out_at=p.now,
            conditions=p.conditions("progressing", "Verifying", message),
        )
        return Plan(status, [Event(NORMAL, "Verifying", message)])
    p.status = p.write(new_revision=revision, rolled_out_at=p.now)
    return _completed(p, rollout.message)


def _completed(p: _Pass, why: str) -> Plan:
    message = f"{summary(p.spec, p.status)}; {why}"
    status = p.write(
        phase=ImagePhase.COMPLETED,
        completed_at=p.now,
        conditions=p.conditions("ready", "Updated", message),
    )
    return Plan(status, [Event(NORMAL, "Completed", message)], release=True)


def _end(p: _Pass, phase: ImagePhase, reason: str, message: str) -> Plan:
    status = p.write(
        phase=phase,
        completed_at=p.now,
        conditions=p.conditions("stalled", reason, message),
    )
    return Plan(status, [Event(WARNING, reason, message)], release=True)


def _failure(p: _Pass, reason: str, why: str) -> Plan:
    """The rollout or the check failed: roll back (recorded first), or keep the images."""
    if p.spec.on_failure == OnFailure.KEEP:
        return _end(
            p, ImagePhase.FAILED, reason, f"{why}; the new images are kept (onFailure: Keep)"
        )
    message = f"{why}; rolling back to revision {p.status.previous_revision}"
    status = p.write(
        phase=ImagePhase.ROLLING_BACK,
        failure=why,
        failure_reason=reason,
        conditions=p.conditions("progressing", "RollingBack", message),
    )
    return Plan(status, [Event(WARNING, reason, message)])


# --- RollingBack: kubectl rollout undo --to-revision=<recorded>, then its rollout ------


def _rolling_back(p: _Pass) -> Plan:
    deployment = p.seen.deployment
    reason = p.status.failure_reason or "RolloutFailed"
    failure = p.status.failure or "the update failed"
    if deployment is None:
        return _end(p, ImagePhase.FAILED, reason, f"{failure}; the Deployment was deleted")
    owned = undo.owned_replica_sets(deployment, p.seen.replica_sets)
    target = next(
        (rs for rs in owned if undo.meta(rs).get("name") == p.status.previous_replica_set), None
    )
    if target is None:
        message = (
            f"{failure}; cannot roll back: the ReplicaSet of revision "
            f"{p.status.previous_revision} ({p.status.previous_replica_set}) is gone"
        )
        return _end(p, ImagePhase.FAILED, reason, message)
    if not undo.equal_ignore_hash(undo.template_of(target), undo.template_of(deployment)):
        sent = p.status.rollback_started_at is not None
        if sent and _state(p.spec, p.status, deployment) != "new":
            message = f"{failure}; the Deployment was changed by someone else during the rollback"
            return _end(p, ImagePhase.FAILED, reason, message)
        status = p.status
        if status.rollback_started_at is None:
            status = p.write(rollback_started_at=p.now)  # recorded before the undo is sent
        plan = Plan(
            status, [Event(NORMAL, "RollingBack", f"undo to revision {p.status.previous_revision}")]
        )
        plan.undo = undo.rollback_patch(deployment, target, p.holder)
        return plan
    rollout = rollout_status(deployment, p.status.rollback_started_at, p.now)
    if not rollout.done and not rollout.failed:
        status = p.write(
            rolled_back=True,
            conditions=p.conditions("progressing", "RollingBack", f"{failure}; {rollout.message}"),
        )
        return Plan(status)
    back = f"rolled back to revision {p.status.previous_revision}"
    if rollout.failed:
        back += f", but its rollout did not finish: {rollout.message}"
    p.status = p.status.model_copy(update={"rolled_back": True})
    return _end(p, ImagePhase.FAILED, reason, f"{failure}; {back}")


# --- Verifying --------------------------------------------------------------------------


def after_probe(
    spec: ImageUpdateSpec,
    status: ImageUpdateStatus,
    healthy: bool,
    text: str,
    *,
    failed: str | None,
    generation: int | None,
    now: datetime,
) -> Plan:
    """The health check's answer: Completed, a failure (never passed in time), or asking."""
    assert spec.health_check is not None
    p = _Pass(status, generation, now, spec)
    if healthy:
        p.status = p.write(health=text)
        return _completed(p, text)
    why = spec.health_check.given_up(status.rolled_out_at or now, now, failed)
    if why is not None:
        p.status = p.write(health=text)
        return _failure(p, "Unhealthy", f"{why}: {text}")
    status = p.write(health=text, conditions=p.conditions("progressing", "Verifying", text))
    return Plan(status)


# --- when to look again -----------------------------------------------------------------


def wake_at(
    spec: ImageUpdateSpec, status: ImageUpdateStatus, now: datetime, poll: timedelta
) -> datetime | None:
    """Rollouts are followed through watch events of the Deployment; the clock is left
    for the timeout and the health check (asked every `poll`)."""
    if status.is_done():
        return None
    if status.phase == ImagePhase.VERIFYING:
        return now + poll
    if status.phase == ImagePhase.UPDATING and status.started_at is not None:
        return status.started_at + parse_duration(spec.timeout)
    if status.phase == ImagePhase.ROLLING_BACK:
        return now + poll * 5  # the undo's rollout is watched; this is a safety net
    return None
