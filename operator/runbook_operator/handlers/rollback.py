"""Kopf glue for Rollback: observe the targets -> logic.rollback -> one step -> status.

Every handler runs `_reconcile` under the object's lock, and each pass does at
most one kind of change (take holds, restore one template, release holds).

Status is written through Kopf's `patch`, which Kopf applies only after the
handler returns; so the status each pass computed is also kept in memory for the
next pass in this process (a timer could otherwise start from a status older
than the step just taken and, say, decide "previous" again after the rollback,
which would undo the undo). And a template is restored only once the decision is
visible in the stored object, read back from the API: a rollback that is not
recorded is never applied, whatever the moment the operator dies.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from typing import Any

import kopf

from ..adapters import kube as kubeapi
from ..adapters.metrics import observe
from ..api.common import GROUP, VERSION
from ..api.rollback import ROLLBACK, RollbackSpec, RollbackStatus, TargetState
from ..core import sampling
from ..core.holding import acquire_hold, release_hold
from ..logic import rollback as logic
from ..logic.gate import Problem, Sample
from ..logic.rollout_undo import label_selector, owned_replica_sets
from ..names import HOLD_ANNOTATION, holder_id
from ..settings import Settings
from .lifecycle import object_lock

__all__ = ["changed", "deleted", "merge_patch", "tick"]

KIND = ROLLBACK.kind
PLURAL = ROLLBACK.plural
TICK_SECONDS = Settings().tick_seconds
"""How often rollouts and armed triggers are looked at (RUNBOOK_TICK_SECONDS, read at start)."""


def _active(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in {p.value for p in logic.TERMINAL_PHASES}


@kopf.on.create(GROUP, VERSION, PLURAL, id="rollback-create")
@kopf.on.update(GROUP, VERSION, PLURAL, id="rollback-update")
@kopf.on.resume(GROUP, VERSION, PLURAL, id="rollback-resume")
def changed(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.on.timer(GROUP, VERSION, PLURAL, id="rollback-tick", interval=TICK_SECONDS, when=_active)
def tick(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="rollback-delete")
def deleted(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Release our holds; a restored template stays (undoing it would re-deploy the bad one)."""
    uid, namespace, name = str(body.metadata.uid), _namespace(body), str(body.metadata.name)
    with observe(KIND), object_lock(memo, uid):
        spec = RollbackSpec.model_validate(dict(body.spec))
        holder = holder_id(KIND, name)
        for target in spec.targets:
            seen = _observe(memo.kube, namespace, target.name)
            if logic.marked(seen, holder):
                _release(memo.kube, namespace, target.name, seen, holder)
                logger.info(f"released Deployment {target.name}")
        _cache(memo).pop(uid, None)


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger) -> None:
    uid, namespace, name = str(body.metadata.uid), _namespace(body), str(body.metadata.name)
    with observe(KIND), object_lock(memo, uid):
        spec = RollbackSpec.model_validate(dict(body.spec))
        stored = RollbackStatus.model_validate(dict(body.status))
        status = _cache(memo).get(uid) or stored
        generation = body.metadata.get("generation")
        if status.phase in logic.TERMINAL_PHASES and status.observed_generation == generation:
            return
        kube: kubeapi.Kube = memo.kube
        observed = {t.name: _observe(kube, namespace, t.name) for t in spec.targets}
        holder = holder_id(KIND, name)
        now = datetime.now(UTC)
        plan = logic.reconcile(
            spec, status, observed, holder=holder, generation=generation, now=now
        )
        if plan.hold:
            plan = _hold(kube, namespace, plan, status, holder, generation, now)
        elif plan.apply:
            plan = _apply(kube, body, plan, status)
        elif plan.release:
            for target in plan.release:
                _release(kube, namespace, target, observed[target], holder)
            plan = _after_release(kube, namespace, spec, plan, holder, generation, now)
        elif plan.evaluate:
            plan = _evaluate(memo, spec, plan, generation, now, logger)
        _write(body, patch, memo, stored, plan, logger)


def _namespace(body: kopf.Body) -> str:
    return str(body.metadata.namespace)


def _observe(kube: kubeapi.Kube, namespace: str, name: str) -> logic.Observed:
    try:
        deployment = kube.get_deployment(namespace, name)
    except kubeapi.NotFound:
        return logic.Observed(None)
    selector = label_selector(deployment)
    replica_sets = kube.list_replicasets(namespace, selector) if selector else []
    return logic.Observed(deployment, tuple(replica_sets))


def _hold(
    kube: kubeapi.Kube,
    namespace: str,
    plan: logic.Plan,
    before: RollbackStatus,
    holder: str,
    generation: int | None,
    now: datetime,
) -> logic.Plan:
    """Take every hold or none: a Rollback never starts on half of its targets."""
    taken: list[str] = []

    def give_back() -> None:
        for mine in taken:
            release_hold(kube, "Deployment", namespace, mine, holder)

    try:
        for target in sorted(plan.hold):
            other = acquire_hold(kube, "Deployment", namespace, target, holder)
            if other is not None:
                give_back()
                return logic.held(before, target, other, generation=generation, now=now)
            taken.append(target)
    except kubeapi.NotFound as exc:
        give_back()
        raise kopf.TemporaryError(f"a target disappeared ({exc}); deciding again", delay=1) from exc
    return plan


def _apply(
    kube: kubeapi.Kube, body: kopf.Body, plan: logic.Plan, before: RollbackStatus
) -> logic.Plan:
    """Restore one template, but only once the decision is stored in the object."""
    assert plan.apply is not None
    target, operations = plan.apply
    planned = next(t for t in before.targets if t.name == target)
    stored = kube.get_custom(PLURAL, _namespace(body), body.metadata.name)
    recorded = RollbackStatus.model_validate(stored.get("status") or {})
    if not any(
        t.name == target
        and t.state == TargetState.PLANNED
        and t.to_replica_set == planned.to_replica_set
        for t in recorded.targets
    ):
        return logic.Plan(before)  # write the decision first; restore on the next pass
    try:
        kube.json_patch_deployment(_namespace(body), target, operations)
    except kubeapi.Conflict:
        return logic.Plan(None)  # it changed since it was read: look again on the next pass
    return plan


def _after_release(
    kube: kubeapi.Kube,
    namespace: str,
    spec: RollbackSpec,
    plan: logic.Plan,
    holder: str,
    generation: int | None,
    now: datetime,
) -> logic.Plan:
    """Look again at once: when nothing of ours is left, the operation ends in this pass."""
    assert plan.status is not None
    observed = {t.name: _observe(kube, namespace, t.name) for t in spec.targets}
    again = logic.reconcile(
        spec, plan.status, observed, holder=holder, generation=generation, now=now
    )
    if again.hold or again.apply or again.release or again.evaluate:
        return plan  # something is still marked (the controller copied it back): next pass
    return logic.Plan(again.status or plan.status, plan.events + again.events)


def _release(
    kube: kubeapi.Kube, namespace: str, target: str, seen: logic.Observed, holder: str
) -> None:
    """Our hold off the Deployment, and off its ReplicaSets (where the controller copied it)."""
    release_hold(kube, "Deployment", namespace, target, holder)
    if seen.deployment is None:
        return
    for rs in owned_replica_sets(seen.deployment, seen.replica_sets):
        meta = rs["metadata"]
        if (meta.get("annotations") or {}).get(HOLD_ANNOTATION) != holder:
            continue
        unmark = {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {HOLD_ANNOTATION: None},
        }
        with contextlib.suppress(kubeapi.Conflict, kubeapi.NotFound):  # looked at again next pass
            kube.patch_replicaset(namespace, meta["name"], {"metadata": unmark})


def _evaluate(
    memo: Any,
    spec: RollbackSpec,
    plan: logic.Plan,
    generation: int | None,
    now: datetime,
    logger: kopf.Logger,
) -> logic.Plan:
    assert plan.status is not None and spec.trigger is not None
    sample = _sample(memo, spec)
    after = logic.after_trigger(
        spec, plan.status, plan.evaluate, sample, generation=generation, now=now
    )
    return logic.Plan(after.status, plan.events + after.events)


def _sample(memo: Any, spec: RollbackSpec) -> Sample:
    trigger = spec.trigger
    assert trigger is not None
    url = trigger.url or memo.settings.prometheus_url
    if not url:
        return Sample.failed(
            Problem.BAD_QUERY, "no Prometheus to ask: set trigger.url or RUNBOOK_PROMETHEUS_URL"
        )
    return sampling.sample(url, trigger.query)


def _write(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: Any,
    stored: RollbackStatus,
    plan: logic.Plan,
    logger: kopf.Logger,
) -> None:
    for event in plan.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        log = logger.warning if event.type == "Warning" else logger.info
        log(f"{event.reason}: {event.message}")
    if plan.status is None:
        return
    _cache(memo)[body.metadata.uid] = plan.status
    changes = merge_patch(stored.wire(), plan.status.wire())
    for key, value in changes.items():
        patch.status[key] = value


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch from `old` to `new`: changed keys, None for removed ones."""
    out: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                out[key] = nested
        elif value != before:
            out[key] = value
    return out


def _cache(memo: Any) -> dict[str, RollbackStatus]:
    """The status each object's last pass computed (Kopf writes it after the handler)."""
    guard: threading.Lock = memo.locks_guard
    with guard:
        if "rollback_statuses" not in memo:
            memo.rollback_statuses = {}
        return memo.rollback_statuses  # type: ignore[no-any-return]
