"""The steps of a MaintenanceWindow, their order, and the pure judgements they need.

A window's start is a fixed list of steps (`start_plan`), chosen from the spec
when the window starts and recorded in status. Changes come in pairs, "record
the original" then "apply", each recorded in status before the next starts, so
a crash between any two leaves enough in status to finish or undo.

The end undoes what may have been done (`end_plan`): an undo step is needed as
soon as the step it undoes may have begun, that is, once the step before it is
recorded. Undo steps work from the originals in status, never from the spec,
so editing the spec mid-window cannot make the operator forget something.

The helpers below read and build Kubernetes objects as plain wire dicts; the
handler does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ....core.names import RESTARTED_AT, REVISION_ANNOTATION
from ....core.rollout import rollout_status
from ..api import (
    ContainerImage,
    FlagOriginal,
    MaintenanceMode,
    MaintenanceWindowSpec,
    ReplicasOriginal,
    RollbackEntry,
)

__all__ = [
    "RESTARTED_AT",
    "REVISION",
    "WAITING_STEPS",
    "Outcome",
    "Rollout",
    "Step",
    "end_plan",
    "flag_drift",
    "flag_original",
    "flag_patch",
    "hpa_bounds_patch",
    "pins_hpa",
    "replicas_drift",
    "replicas_original",
    "replicas_patch",
    "restart_patch",
    "restored",
    "rollback_entry",
    "rollout_state",
    "scaled_down",
    "start_plan",
    "template_annotation",
]

Obj = Mapping[str, Any]
REVISION = REVISION_ANNOTATION


class Step(StrEnum):
    ACQUIRE_HOLDS = "AcquireHolds"
    RECORD_ROLLBACK_PLAN = "RecordRollbackPlan"
    CREATE_SILENCE = "CreateSilence"
    RECORD_FLAG = "RecordMaintenanceFlag"
    SET_FLAG = "SetMaintenanceFlag"
    RECORD_RESTART = "RecordRestart"
    RESTART = "RestartDeployments"
    AWAIT_RESTART = "AwaitRestartRollouts"
    RECORD_REPLICAS = "RecordReplicas"
    SCALE_DOWN = "ScaleDown"
    AWAIT_SCALE_DOWN = "AwaitScaleDown"
    RESTORE_REPLICAS = "RestoreReplicas"
    RESTORE_FLAG = "RestoreMaintenanceFlag"
    UNDO_RESTART = "UndoRestart"
    AWAIT_ROLLOUTS = "AwaitRollouts"
    HEALTH_CHECK = "HealthCheck"
    EXPIRE_SILENCE = "ExpireSilence"
    RELEASE_HOLDS = "ReleaseHolds"


WAITING_STEPS = frozenset(
    {Step.AWAIT_RESTART, Step.AWAIT_SCALE_DOWN, Step.AWAIT_ROLLOUTS, Step.HEALTH_CHECK}
)
"""Steps that wait for the cluster rather than change it; they have a timeout."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt of a step achieved, as the handler saw it."""

    done: bool = True
    message: str = ""
    waiting: str | None = None
    """Not done yet, and why (a rollout in progress, a health check failing)."""
    error: str | None = None
    """The attempt failed (API error, Alertmanager down): retried on the next pass."""
    held_by: str | None = None
    """AcquireHolds: a Deployment is held by another operation, in words."""
    failed: str | None = None
    """The step can never succeed (e.g. the ConfigMap is gone): the window ends as Failed."""
    drift: tuple[str, ...] = ()
    """Values someone changed during the window (the originals are restored anyway)."""
    updates: Mapping[str, Any] = field(default_factory=dict)
    """Status fields to record with the step (originals, silence, holds, rollback plan)."""

    @classmethod
    def ok(cls, message: str, **updates: Any) -> Outcome:
        return cls(done=True, message=message, updates=updates)

    @classmethod
    def wait(cls, why: str) -> Outcome:
        return cls(done=False, waiting=why)

    @classmethod
    def retry(cls, error: str) -> Outcome:
        return cls(done=False, error=error)


# --- plans -------------------------------------------------------------------


def start_plan(spec: MaintenanceWindowSpec) -> list[Step]:
    """The start's steps, only those the spec asks for. The holds come first, and only
    when the window changes Deployments (restarts them or scales them down): a window
    that only sets its flag or silences alerts holds nothing, and a step that holds
    nothing was one status write more before the flag."""
    restarts = spec.maintenance_mode is not None and bool(spec.maintenance_mode.restart)
    plan = [Step.ACQUIRE_HOLDS] if restarts or spec.scale_down else []
    if spec.policy.rollback_plan is not None:
        plan.append(Step.RECORD_ROLLBACK_PLAN)
    if spec.silence is not None:
        plan.append(Step.CREATE_SILENCE)
    if spec.maintenance_mode is not None:
        plan += [Step.RECORD_FLAG, Step.SET_FLAG]
        if spec.maintenance_mode.restart:
            plan += [Step.RECORD_RESTART, Step.RESTART, Step.AWAIT_RESTART]
    if spec.scale_down:
        plan += [Step.RECORD_REPLICAS, Step.SCALE_DOWN, Step.AWAIT_SCALE_DOWN]
    return plan


def _begun(step: Step, plan: Sequence[str], done: set[str]) -> bool:
    """Whether `step` may have begun: it is done, or every step before it is."""
    if step not in plan:
        return False
    index = plan.index(step)
    return step in done or index == 0 or plan[index - 1] in done


def end_plan(
    plan: Sequence[str],
    done: set[str],
    *,
    deleting: bool,
    health_check: bool,
    was_active: bool,
) -> list[Step]:
    """The undo steps for what may have been done, in order.

    Deleting the object skips the waits (rollouts, health check): the originals
    are put back, but nobody is left to read the verdict.
    """
    steps: list[Step] = []
    if _begun(Step.SCALE_DOWN, plan, done):
        steps.append(Step.RESTORE_REPLICAS)
    if _begun(Step.SET_FLAG, plan, done):
        steps.append(Step.RESTORE_FLAG)
    if _begun(Step.RESTART, plan, done):
        steps.append(Step.UNDO_RESTART)
    changed = bool(steps)
    if changed and not deleting:
        steps.append(Step.AWAIT_ROLLOUTS)
    if health_check and not deleting and (changed or was_active):
        steps.append(Step.HEALTH_CHECK)
    if _begun(Step.CREATE_SILENCE, plan, done):
        steps.append(Step.EXPIRE_SILENCE)
    if Step.ACQUIRE_HOLDS in plan:
        steps.append(Step.RELEASE_HOLDS)
    return steps


# --- deployments ---------------------------------------------------------------


def template_annotation(deployment: Obj, key: str = RESTARTED_AT) -> str | None:
    annotations = deployment["spec"]["template"].get("metadata", {}).get("annotations") or {}
    value = annotations.get(key)
    return None if value is None else str(value)


def restart_patch(value: str | None) -> dict[str, Any]:
    """Set (or, with None, remove) the restartedAt pod-template annotation: a rolling restart."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: value}}}}}


Rollout = tuple[bool, str | None, str]
"""(done, why it failed or None, words): what the wait steps ask of a Deployment."""


def rollout_state(deployment: Obj, since: datetime | None, now: datetime) -> Rollout:
    """`kubectl rollout status` in one call (core.rollout): complete?, why it failed (the
    progress deadline passed since `since`) or None, and a few words on where it is."""
    name = deployment["metadata"]["name"]
    rollout = rollout_status(dict(deployment), since, now)
    if rollout.done:
        return True, None, f"{name}: rolled out"
    return False, rollout.message if rollout.failed else None, f"{name}: {rollout.message}"


def rollback_entry(deployment: Obj) -> RollbackEntry:
    annotations = deployment["metadata"].get("annotations") or {}
    containers = deployment["spec"]["template"]["spec"].get("containers") or []
    return RollbackEntry(
        name=deployment["metadata"]["name"],
        revision=annotations.get(REVISION),
        images=[ContainerImage(container=c["name"], image=c.get("image", "")) for c in containers],
    )


# --- replicas and HPAs ------------------------------------------------------------


def replicas_original(deployment: Obj, hpa: Obj | None, wanted: int) -> ReplicasOriginal:
    return ReplicasOriginal(
        name=deployment["metadata"]["name"],
        maintenance_replicas=wanted,
        replicas=deployment["spec"].get("replicas", 1),
        hpa=None if hpa is None else hpa["metadata"]["name"],
        min_replicas=None if hpa is None else hpa["spec"].get("minReplicas", 1),
        max_replicas=None if hpa is None else hpa["spec"].get("maxReplicas"),
    )


def pins_hpa(original: ReplicasOriginal) -> bool:
    """Whether the window changes the HPA's bounds (an HPA cannot have minReplicas 0)."""
    return original.hpa is not None and original.maintenance_replicas > 0


def hpa_bounds_patch(low: int | None, high: int | None) -> dict[str, Any]:
    return {"spec": {"minReplicas": low, "maxReplicas": high}}


def replicas_patch(replicas: int | None) -> dict[str, Any]:
    return {"spec": {"replicas": replicas}}


def scaled_down(
    deployment: Obj, original: ReplicasOriginal, since: datetime | None, now: datetime
) -> Rollout:
    """Whether the Deployment runs exactly its maintenance size."""
    name, wanted = original.name, original.maintenance_replicas
    spec_replicas = deployment["spec"].get("replicas", 1)
    if spec_replicas != wanted:
        return False, None, f"{name}: spec.replicas is {spec_replicas}, waiting for {wanted}"
    return rollout_state(deployment, since, now)


def restored(
    deployment: Obj, original: ReplicasOriginal, since: datetime | None, now: datetime
) -> Rollout:
    """Whether a scaled Deployment is back to its original size (within the HPA's bounds)."""
    replicas = deployment["spec"].get("replicas", 1)
    name = original.name
    if original.hpa is not None and original.min_replicas is not None:
        high = original.max_replicas if original.max_replicas is not None else replicas
        if not original.min_replicas <= replicas <= high:
            return False, None, f"{name}: {replicas} replicas, waiting for the HPA's bounds"
    elif original.replicas is not None and replicas != original.replicas:
        return False, None, f"{name}: {replicas} replicas, waiting for {original.replicas}"
    return rollout_state(deployment, since, now)


def replicas_drift(
    original: ReplicasOriginal, deployment: Obj | None, hpa: Obj | None
) -> list[str]:
    """What someone else changed during the window (neither the window's value nor the original)."""
    drift = []
    if deployment is not None:
        now = deployment["spec"].get("replicas", 1)
        if now not in (original.maintenance_replicas, original.replicas):
            drift.append(
                f"Deployment {original.name} was scaled to {now} during the window "
                f"(the window set {original.maintenance_replicas}); restoring {original.replicas}"
            )
    if hpa is not None and pins_hpa(original):
        bounds = (hpa["spec"].get("minReplicas", 1), hpa["spec"].get("maxReplicas"))
        pinned = (original.maintenance_replicas, original.maintenance_replicas)
        if bounds not in (pinned, (original.min_replicas, original.max_replicas)):
            drift.append(
                f"HPA {original.hpa} bounds were changed during the window to "
                f"{bounds[0]}-{bounds[1]} (the window set {pinned[0]}-{pinned[1]}); "
                f"restoring {original.min_replicas}-{original.max_replicas}"
            )
    return drift


# --- the maintenance flag ------------------------------------------------------------


def flag_original(config_map: Obj, mode: MaintenanceMode) -> FlagOriginal:
    data = config_map.get("data") or {}
    return FlagOriginal(
        config_map=mode.config_map,
        key=mode.key,
        present=mode.key in data,
        value=data.get(mode.key),
        maintenance_value=mode.value,
    )


def flag_patch(key: str, value: str | None) -> dict[str, Any]:
    """Set the key (or remove it, with None) in a ConfigMap's data."""
    return {"data": {key: value}}


def flag_drift(original: FlagOriginal, config_map: Obj) -> list[str]:
    data = config_map.get("data") or {}
    now = data.get(original.key)
    if now in (original.maintenance_value, original.value):
        return []
    shown = "removed" if now is None else f"set to {now!r}"
    before = repr(original.value) if original.present else "absent"
    return [
        f"ConfigMap {original.config_map} key {original.key} was {shown} during the window "
        f"(the window set {original.maintenance_value!r}); restoring {before}"
    ]
