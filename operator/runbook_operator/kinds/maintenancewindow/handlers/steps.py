"""The I/O of a MaintenanceWindow's steps on workloads: each an "ensure" that may run twice.

`execute()` carries out one step and returns an `Outcome` (logic judges it).
Record steps read the current values and return them for status; apply steps
read only what status recorded, so a repeat after a crash sets the same
values again (the restart stamp, the silence found by its marker) and never
records a changed value as an original.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ....adapters.alertmanager import AlertmanagerError
from ....adapters.kube import KubeError, NotFound
from ....core.holding import acquire_hold, clean_replicaset_holds, release_hold
from ....core.schedule import instant
from ..api import MaintenanceWindowSpec, RestartOriginal
from ..logic.lifecycle import step_began
from ..logic.steps import (
    Outcome,
    Rollout,
    Step,
    flag_drift,
    flag_original,
    flag_patch,
    hpa_bounds_patch,
    pins_hpa,
    replicas_drift,
    replicas_original,
    replicas_patch,
    restart_patch,
    restored,
    rollback_entry,
    rollout_state,
    scaled_down,
    template_annotation,
)
from .checks import create_silence, expire_silence, health_check
from .env import Env, Target

__all__ = ["execute", "release_holds"]

DEPLOYMENT = "Deployment"


# --- one step --------------------------------------------------------------------------


def execute(env: Env, t: Target, step: Step) -> Outcome:
    """Carry out one step; errors of the outside world become a retry, never an exception."""
    try:
        return _STEPS[step](env, t)
    except (KubeError, AlertmanagerError) as exc:
        return Outcome.retry(str(exc))


def _spec(t: Target) -> MaintenanceWindowSpec:
    """The spec, which every start step has (only the undo of a deletion may lack it)."""
    assert t.spec is not None, "a start step runs only with a spec the operator read"
    return t.spec


def _workloads(t: Target) -> list[str]:
    """Every Deployment the window changes (or may have changed), sorted: the holds."""
    names = set(t.status.holds)
    originals = t.originals
    names |= {r.name for r in originals.restarts or []} | {r.name for r in originals.replicas or []}
    if t.spec is not None:
        if t.spec.maintenance_mode is not None:
            names |= {d.name for d in t.spec.maintenance_mode.restart}
        names |= {s.name for s in t.spec.scale_down}
    return sorted(names)


def _acquire_holds(env: Env, t: Target) -> Outcome:
    names = _workloads(t)
    for name in names:
        try:
            other = acquire_hold(env.kube, DEPLOYMENT, t.namespace, name, t.holder, env.instance)
        except NotFound:
            release_holds(env, t)
            return Outcome.retry(f"Deployment {name} not found")
        if other is not None:
            release_holds(env, t)
            return Outcome(done=False, held_by=f"Deployment {name} is held by {other}")
    return Outcome.ok(
        f"holding {', '.join(names)}" if names else "no Deployment to hold", holds=names
    )


def release_holds(env: Env, t: Target) -> Outcome:
    """Remove our hold from every Deployment the window names (other holders are left alone)."""
    names = _workloads(t)
    try:
        for name in names:
            release_hold(env.kube, DEPLOYMENT, t.namespace, name, t.holder)
    except KubeError as exc:
        return Outcome.retry(str(exc))
    return Outcome.ok(f"released {', '.join(names)}" if names else "no holds to release")


def _record_rollback_plan(env: Env, t: Target) -> Outcome:
    rule = _spec(t).policy.rollback_plan
    assert rule is not None
    entries = []
    for ref in rule.deployments:
        try:
            entries.append(rollback_entry(env.kube.get_deployment(t.namespace, ref.name)))
        except NotFound:
            return Outcome(done=False, failed=f"Deployment {ref.name} not found")
    words = "; ".join(
        f"{e.name} revision {e.revision or '?'} ({', '.join(i.image for i in e.images)})"
        for e in entries
    )
    return Outcome.ok(f"rollback plan: {words}", rollback_plan=entries)


# --- the maintenance flag ----------------------------------------------------------------


def _record_flag(env: Env, t: Target) -> Outcome:
    mode = _spec(t).maintenance_mode
    assert mode is not None
    if t.originals.maintenance_flag is not None:  # recorded by an earlier attempt: keep it
        return Outcome.ok("original already recorded", originals=t.originals)
    try:
        # Read by the checklist a moment ago when it was evaluated in this same call (the
        # start: nothing has changed it since that we know of), else read now.
        config_map = t.fresh.get(f"ConfigMap/{mode.config_map}") or env.kube.get_configmap(
            t.namespace, mode.config_map
        )
        original = flag_original(config_map, mode)
    except NotFound:
        return Outcome(done=False, failed=f"ConfigMap {mode.config_map} not found")
    shown = repr(original.value) if original.present else "absent"
    return Outcome.ok(
        f"{original.key} in ConfigMap {original.config_map} was {shown}",
        originals=t.originals.model_copy(update={"maintenance_flag": original}),
    )


def _set_flag(env: Env, t: Target) -> Outcome:
    original = t.originals.maintenance_flag
    assert original is not None
    patch = flag_patch(original.key, original.maintenance_value)
    try:
        env.kube.patch_configmap(t.namespace, original.config_map, patch)
    except NotFound:
        return Outcome(done=False, failed=f"ConfigMap {original.config_map} not found")
    return Outcome.ok(
        f"{original.key}={original.maintenance_value!r} in ConfigMap {original.config_map}"
    )


def _restore_flag(env: Env, t: Target) -> Outcome:
    original = t.originals.maintenance_flag
    assert original is not None
    try:
        config_map = env.kube.get_configmap(t.namespace, original.config_map)
    except NotFound:
        return Outcome(
            done=False,
            failed=f"ConfigMap {original.config_map} was deleted during the window; "
            f"its {original.key} could not be restored",
        )
    value = original.value if original.present else None
    env.kube.patch_configmap(t.namespace, original.config_map, flag_patch(original.key, value))
    shown = repr(value) if original.present else "removed (it was absent)"
    return Outcome(
        message=f"{original.key} in ConfigMap {original.config_map} back to {shown}",
        drift=tuple(flag_drift(original, config_map)),
    )


# --- restarts ------------------------------------------------------------------------------


def _record_restart(env: Env, t: Target) -> Outcome:
    mode = _spec(t).maintenance_mode
    assert mode is not None
    if t.originals.restarts is not None:  # recorded by an earlier attempt: keep it
        return Outcome.ok("originals already recorded", originals=t.originals)
    restarts = []
    for ref in mode.restart:
        try:
            deployment = env.kube.get_deployment(t.namespace, ref.name)
        except NotFound:
            return Outcome(done=False, failed=f"Deployment {ref.name} not found")
        restarts.append(
            RestartOriginal(name=ref.name, restarted_at=template_annotation(deployment))
        )
    stamp = instant(t.now)
    originals = t.originals.model_copy(update={"restart_stamp": stamp, "restarts": restarts})
    names = ", ".join(r.name for r in restarts)
    return Outcome.ok(f"restart stamp {stamp} for {names}", originals=originals)


def _restart(env: Env, t: Target) -> Outcome:
    stamp, restarts = t.originals.restart_stamp, t.originals.restarts or []
    for original in restarts:
        deployment = env.kube.get_deployment(t.namespace, original.name)
        if template_annotation(deployment) != stamp:
            env.kube.patch_deployment(t.namespace, original.name, restart_patch(stamp))
    return Outcome.ok(f"rolling restart of {', '.join(r.name for r in restarts)}")


def _undo_restart(env: Env, t: Target) -> Outcome:
    stamp, restarts = t.originals.restart_stamp, t.originals.restarts or []
    drift, gone = [], []
    for original in restarts:
        try:
            deployment = env.kube.get_deployment(t.namespace, original.name)
        except NotFound:
            gone.append(original.name)
            continue
        current = template_annotation(deployment)
        if current not in (stamp, original.restarted_at):
            drift.append(
                f"Deployment {original.name} was restarted by someone else during "
                f"the window (restartedAt {current})"
            )
        if current != original.restarted_at:
            patch = restart_patch(original.restarted_at)
            env.kube.patch_deployment(t.namespace, original.name, patch)
    if gone:
        return Outcome(
            done=False,
            failed=f"Deployment {', '.join(gone)} was deleted during the window",
            drift=tuple(drift),
        )
    names = ", ".join(r.name for r in restarts)
    return Outcome(
        message=f"pod template of {names} restored; rolling again to read the flag",
        drift=tuple(drift),
    )


def _since(t: Target) -> datetime | None:
    """When the wait step began: a progress deadline exceeded before it does not count."""
    return step_began(t.status)


def _judge(state: Rollout, words: list[str], waiting: str) -> Outcome | None:
    """None when done (its words kept), else the Outcome: failed (deadline) or waiting."""
    done, failed, text = state
    if failed is not None:
        return Outcome(done=False, failed=f"{failed}: {text}")
    if not done:
        return Outcome.wait(f"{waiting}: {text}")
    words.append(text)
    return None


def _await_rollouts(env: Env, names: list[str], t: Target) -> Outcome:
    words: list[str] = []
    for name in names:
        state = rollout_state(env.kube.get_deployment(t.namespace, name), _since(t), t.now)
        judged = _judge(state, words, "rollout in progress")
        if judged is not None:
            return judged
    return Outcome.ok("; ".join(words))


def _await_restart(env: Env, t: Target) -> Outcome:
    return _await_rollouts(env, [r.name for r in t.originals.restarts or []], t)


# --- replicas --------------------------------------------------------------------------


def _record_replicas(env: Env, t: Target) -> Outcome:
    if t.originals.replicas is not None:  # recorded by an earlier attempt: keep it
        return Outcome.ok("originals already recorded", originals=t.originals)
    recorded = []
    for target in _spec(t).scale_down:
        try:
            deployment = env.kube.get_deployment(t.namespace, target.name)
        except NotFound:
            return Outcome(done=False, failed=f"Deployment {target.name} not found")
        hpa = env.kube.find_hpa(t.namespace, DEPLOYMENT, target.name)
        recorded.append(replicas_original(deployment, hpa, target.replicas))
    words = "; ".join(
        f"{r.name} {r.replicas}"
        + (f" (HPA {r.hpa} {r.min_replicas}-{r.max_replicas})" if r.hpa else "")
        for r in recorded
    )
    return Outcome.ok(
        f"replicas were {words}", originals=t.originals.model_copy(update={"replicas": recorded})
    )


def _scale_down(env: Env, t: Target) -> Outcome:
    words = []
    for original in t.originals.replicas or []:
        n = original.maintenance_replicas
        if pins_hpa(original):
            assert original.hpa is not None
            try:
                env.kube.patch_hpa(t.namespace, original.hpa, hpa_bounds_patch(n, n))
                words.append(f"HPA {original.hpa} pinned to {n}")
            except NotFound:
                words.append(f"HPA {original.hpa} is gone")
        env.kube.scale_workload(DEPLOYMENT, t.namespace, original.name, n)
        words.append(f"{original.name} to {n}")
    return Outcome.ok(", ".join(words))


def _await_scale_down(env: Env, t: Target) -> Outcome:
    words: list[str] = []
    for original in t.originals.replicas or []:
        deployment = env.kube.get_deployment(t.namespace, original.name)
        judged = _judge(scaled_down(deployment, original, _since(t), t.now), words, "scaling down")
        if judged is not None:
            return judged
    return Outcome.ok("; ".join(words))


def _restore_replicas(env: Env, t: Target) -> Outcome:
    drift: list[str] = []
    gone: list[str] = []
    words = []
    for original in t.originals.replicas or []:
        try:
            deployment = env.kube.get_deployment(t.namespace, original.name)
        except NotFound:
            gone.append(f"Deployment {original.name}")
            continue
        hpa = env.kube.find_hpa(t.namespace, DEPLOYMENT, original.name)
        drift += replicas_drift(original, deployment, hpa)
        if pins_hpa(original):
            if hpa is not None and hpa["metadata"]["name"] == original.hpa:
                bounds = hpa_bounds_patch(original.min_replicas, original.max_replicas)
                env.kube.patch_hpa(t.namespace, str(original.hpa), bounds)
                words.append(f"HPA {original.hpa} {original.min_replicas}-{original.max_replicas}")
            else:
                gone.append(f"HPA {original.hpa}")
        _scale_back(env, t.namespace, original.name, original.replicas)
        words.append(f"{original.name} {original.replicas}")
    if gone:
        return Outcome(
            done=False,
            failed=f"{', '.join(gone)} deleted during the window; not recreated",
            drift=tuple(drift),
        )
    return Outcome(message=f"back to {', '.join(words)}", drift=tuple(drift))


def _await_restored(env: Env, t: Target) -> Outcome:
    words: list[str] = []
    for original in t.originals.replicas or []:
        deployment = env.kube.get_deployment(t.namespace, original.name)
        judged = _judge(restored(deployment, original, _since(t), t.now), words, "scaling back")
        if judged is not None:
            return judged
    scaled = {r.name for r in t.originals.replicas or []}
    others = [r.name for r in t.originals.restarts or [] if r.name not in scaled]
    rollouts = _await_rollouts(env, others, t)
    if not rollouts.done:
        return rollouts
    return Outcome.ok("; ".join([*words, rollouts.message]).strip("; ") or "nothing to wait for")


def _release(env: Env, t: Target) -> Outcome:
    outcome = release_holds(env, t)
    if not outcome.done:
        return outcome
    cleaned = []
    for name in _workloads(t):
        cleaned += clean_replicaset_holds(env.kube, t.namespace, name, t.holder)
    note = f"; hold copies removed from ReplicaSet {', '.join(cleaned)}" if cleaned else ""
    return Outcome.ok(outcome.message + note, holds=[])


_STEPS: dict[Step, Callable[[Env, Target], Outcome]] = {
    Step.ACQUIRE_HOLDS: _acquire_holds,
    Step.RECORD_ROLLBACK_PLAN: _record_rollback_plan,
    Step.CREATE_SILENCE: create_silence,
    Step.RECORD_FLAG: _record_flag,
    Step.SET_FLAG: _set_flag,
    Step.RECORD_RESTART: _record_restart,
    Step.RESTART: _restart,
    Step.AWAIT_RESTART: _await_restart,
    Step.RECORD_REPLICAS: _record_replicas,
    Step.SCALE_DOWN: _scale_down,
    Step.AWAIT_SCALE_DOWN: _await_scale_down,
    Step.RESTORE_REPLICAS: _restore_replicas,
    Step.RESTORE_FLAG: _restore_flag,
    Step.UNDO_RESTART: _undo_restart,
    Step.AWAIT_ROLLOUTS: _await_restored,
    Step.HEALTH_CHECK: health_check,
    Step.EXPIRE_SILENCE: expire_silence,
    Step.RELEASE_HOLDS: _release,
}


def _scale_back(env: Env, namespace: str, name: str, replicas: int | None) -> None:
    """Replicas back through the scale subresource; a Deployment recorded without
    spec.replicas gets the field removed again, which only a patch of the whole object can."""
    if replicas is None:
        env.kube.patch_deployment(namespace, name, replicas_patch(None))
    else:
        env.kube.scale_workload(DEPLOYMENT, namespace, name, replicas)
