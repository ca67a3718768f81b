"""EmergencyScale handlers: observe -> logic -> act one step -> write status.

Every trigger (create, update, resume, a one-second timer, and a watch event
whose status says a step is in flight) runs the same `_pass` under the
object's lock. A pass re-reads the object from the API server rather than
trusting the body Kopf handed over (a timer's body may be older than the step
another handler just recorded), observes the targets and Prometheus, asks
logic/emergencyscale.py for the next step, carries it out and writes status.
The step after a recorded one starts as soon as the watch shows the record
(the `next-step` event handler), so scaling does not wait for a timer tick.

Deletion runs the finalizer: the originals are put back (unless revert:
false) and the holds released before the object goes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from ..adapters import prometheus
from ..adapters.kube import Kube, KubeError, NotFound
from ..adapters.metrics import observe
from ..api.common import GROUP, VERSION
from ..api.emergencyscale import (
    EMERGENCY_SCALE,
    EmergencyScalePhase,
    EmergencyScaleSpec,
    EmergencyScaleStatus,
)
from ..logic import emergencyscale as logic
from ..logic.gate import Problem, Sample
from ..names import holder_id
from ..settings import Settings
from .lifecycle import object_lock

__all__ = ["changed", "deleted", "next_step", "tick"]

KIND = EMERGENCY_SCALE.kind
PLURAL = EMERGENCY_SCALE.plural
TICK_SECONDS = 1.0
"""How often the timer looks at each object; it skips all I/O when nothing is due."""
RETRY_SECONDS = 2.0
TICK_ID = "emergencyscale-tick"
PENDING_SECONDS = 5.0
"""How long a pass waits for the previous pass's status to land before trusting the store."""


def _spec(raw: Any) -> EmergencyScaleSpec:
    return EmergencyScaleSpec.model_validate(dict(raw or {}))


def _status(raw: Any) -> EmergencyScaleStatus:
    return EmergencyScaleStatus.model_validate(dict(raw or {}))


def _context(memo: Any, obj: dict[str, Any]) -> logic.Context:
    settings: Settings = memo.settings
    return logic.Context(
        holder=holder_id(KIND, obj["metadata"]["name"]),
        cap=settings.max_replicas,
        generation=obj["metadata"].get("generation"),
        now=datetime.now(UTC),
    )


# --- observe --------------------------------------------------------------------


def _observe(
    kube: Kube, namespace: str, spec: EmergencyScaleSpec, status: EmergencyScaleStatus
) -> logic.World:
    keys = dict.fromkeys(
        [*(logic.key_of(t) for t in spec.targets), *(logic.key_of(o) for o in status.originals)]
    )
    hpas = kube.list_hpas(namespace)
    world: dict[logic.Key, logic.Workload | None] = {}
    for kind, name in keys:
        try:
            obj = kube.get_workload(kind, namespace, name)
        except NotFound:
            world[(kind, name)] = None
            continue
        world[(kind, name)] = logic.read_workload(kind, obj, hpas)
    return world


def _sample(
    settings: Settings, spec: EmergencyScaleSpec, status: EmergencyScaleStatus, now: datetime
) -> Sample | None:
    """A fresh answer from Prometheus when one is due (once per tick), else None."""
    if spec.trigger is None or status.phase == EmergencyScalePhase.REVERTING:
        return None
    last = status.gate.evaluated_at if status.gate else None
    if last is not None and (now - last).total_seconds() < settings.tick_seconds * 0.8:
        return None
    url = spec.trigger.url or settings.prometheus_url
    if not url:
        return Sample.failed(
            Problem.BAD_QUERY,
            "no Prometheus URL: set spec.trigger.url or the operator's RUNBOOK_PROMETHEUS_URL",
        )
    return prometheus.sample(url, spec.trigger.query)


# --- act ------------------------------------------------------------------------


def _act(
    kube: Kube,
    namespace: str,
    spec: EmergencyScaleSpec,
    status: EmergencyScaleStatus,
    outcome: logic.Outcome,
    ctx: logic.Context,
    logger: kopf.Logger,
) -> logic.Outcome:
    """Holds first, then the patches, then the releases. A hold lost to a race ends the
    step: the holds taken for targets not yet recorded are given back."""
    taken: list[logic.Key] = []
    recorded = {logic.key_of(o) for o in status.originals}
    for kind, name in outcome.acquire:
        holder = kube.acquire_hold(kind, namespace, name, ctx.holder)
        if holder is not None:
            for key in taken:
                if key not in recorded:
                    kube.release_hold(key[0], namespace, key[1], ctx.holder)
            before = status.model_copy(update={"gate": outcome.status.gate})
            return logic.held_elsewhere(spec, before, name, holder, ctx)
        taken.append((kind, name))
    for change in outcome.changes:
        if change.hpa is not None:
            kube.patch_hpa(namespace, change.hpa, change.patch)
        else:
            kube.patch_workload(change.key[0], namespace, change.key[1], change.patch)
    for kind, name in outcome.release:
        kube.release_hold(kind, namespace, name, ctx.holder)
    return outcome


def _post(body: kopf.Body, notes: tuple[logic.Note, ...], logger: kopf.Logger) -> None:
    for note in notes:
        if note.warning:
            kopf.warn(body, reason=note.reason, message=note.message)
        else:
            kopf.info(body, reason=note.reason, message=note.message)
        _log(logger, f"{note.reason}: {note.message}", warning=note.warning)


def _merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns `old` into `new`: objects are merged, keys that
    went away become null, anything else is replaced whole."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old or old[key] != value:
            out[key] = _merge_patch(old.get(key), value)
    return out


def _write(patch: kopf.Patch, before: EmergencyScaleStatus, after: EmergencyScaleStatus) -> bool:
    """Only what changed (nothing when nothing did, so idle passes cost no write).
    Returns whether there was anything to write."""
    old = before.model_dump(mode="json", by_alias=True, exclude_none=True)
    new = after.model_dump(mode="json", by_alias=True, exclude_none=True)
    diff = _merge_patch(old, new)
    for key, value in diff.items():
        patch.status[key] = value
    return bool(diff)


def _log(logger: kopf.Logger, message: str, *, warning: bool = False) -> None:
    """A log line only: the Event for it is posted explicitly, with its own reason.
    (`k8s_skip` keeps Kopf from posting the line as a second, "Logging", event.)"""
    (logger.warning if warning else logger.info)(message, extra={"k8s_skip": True})


class _QuietTicks(logging.Filter):
    """Kopf logs every timer run at INFO ("Timer 'emergencyscale-tick' succeeded."): once a
    second per object. Steps taken are logged on their own; a tick is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(f"Timer '{TICK_ID}' succeeded")


logging.getLogger("kopf.objects").addFilter(_QuietTicks())


# --- one pass -------------------------------------------------------------------


def _pending(memo: Any) -> dict[str, tuple[str, float]]:
    """uid -> (resourceVersion read, when) of each object whose last pass wrote status."""
    with memo.locks_guard:
        if "emergencyscale_pending" not in memo:
            memo.emergencyscale_pending = {}
        return memo.emergencyscale_pending  # type: ignore[no-any-return]


def _landed(memo: Any, uid: str, obj: dict[str, Any]) -> bool:
    """Whether the status this process last wrote for the object is in what was just read.

    Kopf applies a handler's patch after the handler returns (and releases the lock),
    so a pass starting at that moment reads the object as the previous pass did. It
    then waits for the next trigger rather than repeat the step; after PENDING_SECONDS
    the stored object is trusted again (the patch failed, or was overwritten)."""
    pending = _pending(memo)
    entry = pending.get(uid)
    if entry is None:
        return True
    version, since = entry
    if obj["metadata"].get("resourceVersion") != version or (
        time.monotonic() - since > PENDING_SECONDS
    ):
        pending.pop(uid, None)
        return True
    return False


def _pass(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger) -> None:
    kube: Kube = memo.kube
    namespace, name, uid = (
        str(body.metadata.namespace),
        str(body.metadata.name),
        str(body.metadata.uid),
    )
    with observe(KIND), object_lock(memo, uid):
        try:
            obj = kube.get_custom(PLURAL, namespace, name)
        except NotFound:
            return
        if obj["metadata"].get("deletionTimestamp"):
            return  # the finalizer has it
        if not _landed(memo, uid, obj):
            return  # the last step's record is on its way; its watch event comes next
        spec, status = _spec(obj.get("spec")), _status(obj.get("status"))
        if status.phase in logic.TERMINAL:
            return
        ctx = _context(memo, obj)
        try:
            world = _observe(kube, namespace, spec, status)
            sample = _sample(memo.settings, spec, status, ctx.now)
            outcome = logic.reconcile(spec, status, world, sample, ctx)
            outcome = _act(kube, namespace, spec, status, outcome, ctx, logger)
        except KubeError as exc:
            raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=RETRY_SECONDS) from exc
        _post(body, outcome.notes, logger)
        if _write(patch, status, outcome.status):
            _pending(memo)[uid] = (obj["metadata"].get("resourceVersion"), time.monotonic())


@kopf.on.create(GROUP, VERSION, PLURAL, id="emergencyscale-create")
@kopf.on.update(GROUP, VERSION, PLURAL, id="emergencyscale-update")
@kopf.on.resume(GROUP, VERSION, PLURAL, id="emergencyscale-resume")
def changed(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Created, edited, or found at start-up: carry on from where status says it is."""
    _pass(body, patch, memo, logger)


def _step_in_flight(status: kopf.Status, **_: Any) -> bool:
    return logic.step_due(_status(status))


@kopf.on.event(GROUP, VERSION, PLURAL, id="emergencyscale-next-step", when=_step_in_flight)
def next_step(
    type: str, body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    """A step was just recorded and the next one is due: take it now, not at the next tick."""
    if type == "DELETED":
        return
    try:
        _pass(body, patch, memo, logger)
    except kopf.TemporaryError as exc:
        _log(logger, f"Next step left to the timer: {exc}")


def _not_ended(status: kopf.Status, **_: Any) -> bool:
    return _status(status).phase not in logic.TERMINAL


@kopf.on.timer(GROUP, VERSION, PLURAL, id=TICK_ID, interval=TICK_SECONDS, when=_not_ended)
def tick(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Time-driven work: the trigger, the end of the duration, replicas becoming ready."""
    if logic.needs_pass(_spec(body.spec), _status(body.status), datetime.now(UTC)):
        _pass(body, patch, memo, logger)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="emergencyscale-delete")
def deleted(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Put the originals back (unless revert: false) and release the holds, then let go."""
    kube: Kube = memo.kube
    namespace, name, uid = (
        str(body.metadata.namespace),
        str(body.metadata.name),
        str(body.metadata.uid),
    )
    with observe(KIND), object_lock(memo, uid):
        obj: dict[str, Any] = {
            "metadata": dict(body.metadata),
            "spec": dict(body.spec),
            "status": dict(body.status),
        }
        with contextlib.suppress(NotFound):
            obj = kube.get_custom(PLURAL, namespace, name)
        spec, status = _spec(obj.get("spec")), _status(obj.get("status"))
        ctx = _context(memo, obj)
        try:
            world = _observe(kube, namespace, spec, status)
            outcome = logic.finalize(spec, status, world, ctx)
            _act(kube, namespace, spec, status, outcome, ctx, logger)
        except KubeError as exc:
            raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=RETRY_SECONDS) from exc
        _post(body, outcome.notes, logger)
    _pending(memo).pop(uid, None)
    with memo.locks_guard:
        memo.locks.pop(uid, None)
