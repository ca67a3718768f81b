"""MaintenanceWindow handlers: observe -> logic -> act one step -> write status.

Create, update, resume and a half-second timer all run the same pass under
the object's lock. A pass re-reads the object from the API server (a timer's
body may be older than the step another handler just recorded), asks
logic/maintenancewindow.py what is next, does at most one step (in
maintenancewindow_steps.py and maintenancewindow_checks.py) and writes status
through Kopf's patch. The next step waits for the next tick, by which time the
record of this one is stored: whenever the operator dies, status says exactly
how far it got, and the step after it has not begun.

Deletion runs the finalizer: every end step that undoes something, in one
go (each is idempotent and works from the originals in status, so a crash
half-way simply repeats them), then the object may go.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from ..adapters import prometheus
from ..adapters.alertmanager import Alertmanager
from ..adapters.httpcheck import get_status
from ..adapters.kube import Kube, KubeError, NotFound
from ..adapters.metrics import observe
from ..api.common import GROUP, VERSION
from ..api.maintenancewindow import (
    MAINTENANCE_WINDOW,
    MaintenanceWindowSpec,
    MaintenanceWindowStatus,
    WindowPhase,
)
from ..logic import maintenancewindow as logic
from ..logic.events import WARNING
from ..logic.maintenancewindow_policy import evaluate
from .lifecycle import object_lock
from .maintenancewindow_checks import extend_silence, observe_policy
from .maintenancewindow_env import Env, Target
from .maintenancewindow_steps import execute, release_holds

__all__ = ["changed", "deleted", "run_pass", "tick"]

KIND = MAINTENANCE_WINDOW.kind
PLURAL = MAINTENANCE_WINDOW.plural
TICK_SECONDS = 0.5
"""How often the timer looks at each unfinished window; without work due it does no I/O."""
RETRY_SECONDS = 2.0
MAX_DELETION_PASSES = 40
UNFINISHED = frozenset(
    {WindowPhase.PENDING, WindowPhase.STARTING, WindowPhase.ACTIVE, WindowPhase.ENDING}
)


# --- one pass, without Kopf ------------------------------------------------------------


def _window(obj: dict[str, Any], deleting: bool) -> logic.Window | str:
    """The object as logic sees it, or why its spec cannot be used."""
    meta = obj["metadata"]
    status = MaintenanceWindowStatus.model_validate(obj.get("status") or {})
    try:
        spec = MaintenanceWindowSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    return logic.Window(spec, status, created, int(meta.get("generation", 1)), deleting)


def run_pass(env: Env, obj: dict[str, Any], now: datetime, *, deleting: bool) -> logic.Pass:
    """Decide, do at most one step, judge it. Errors of the outside world end up in status."""
    w = _window(obj, deleting)
    if isinstance(w, str):
        status = MaintenanceWindowStatus.model_validate(obj.get("status") or {})
        p = logic.invalid_spec(status, int(obj["metadata"].get("generation", 1)), w, now)
        return logic.Pass(p.status, events=p.events, finished=deleting)
    meta = obj["metadata"]
    p = logic.advance(w, now)
    if p.work is None:
        return p

    def target(status: MaintenanceWindowStatus) -> Target:
        return Target(meta["namespace"], meta["name"], meta["uid"], w.spec, status, now)

    work = p.work
    if work.kind == logic.WorkKind.POLICY:
        assert p.status.next_start is not None
        observed = observe_policy(env, meta["namespace"], w.spec)
        results = evaluate(w.spec, w.created, p.status.next_start, observed, now)
        p = logic.after_policy(w, p, results, now, at_start=work.at_start)
        if p.work is None:
            return p
        work = p.work
    if work.kind == logic.WorkKind.EXTEND_SILENCE:
        return logic.after_silence_extended(w, p, extend_silence(env, target(p.status)), now)
    if work.kind == logic.WorkKind.RELEASE_STRAY_HOLDS:
        return logic.after_release(w, p, release_holds(env, target(p.status)))
    assert work.step is not None
    outcome = execute(env, target(p.status), work.step)
    return logic.after_step(w, p, work.step, outcome, now)


# --- Kopf glue ---------------------------------------------------------------------------


def _env(memo: Any) -> Env:
    return Env(
        kube=memo.kube,
        silences=Alertmanager,
        http_status=get_status,
        prometheus=prometheus.query_one,
        prometheus_url=memo.settings.prometheus_url,
    )


def _due(body: kopf.Body, now: datetime) -> bool:
    """Whether a pass has anything to do, judged on Kopf's (possibly stale) body: no I/O."""
    obj = {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}
    w = _window(obj, deleting=False)
    if isinstance(w, str):
        return True
    p = logic.advance(w, now)
    return p.work is not None or p.status != w.status


def _post(body: kopf.Body, events: tuple[logic.Event, ...], logger: kopf.Logger) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        level = logging.WARNING if event.type == WARNING else logging.INFO
        # Posted as an event just above; k8s_skip keeps Kopf from posting the log line again.
        logger.log(level, f"{event.reason}: {event.message}", extra={"k8s_skip": True})


def _merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch from `old` to `new`: changed keys, null for removed ones."""
    diff: dict[str, Any] = {}
    for key in old.keys() | new.keys():
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            nested = _merge_diff(before, after)
            if nested:
                diff[key] = nested
        elif before != after:
            diff[key] = after
    return diff


def _write(patch: kopf.Patch, before: dict[str, Any], after: MaintenanceWindowStatus) -> None:
    """Only what changed (null removes a field); nothing when nothing did."""
    old = MaintenanceWindowStatus.model_validate(before).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    new = after.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key, value in _merge_diff(old, new).items():
        patch.status[key] = value


def _pass(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger) -> None:
    kube: Kube = memo.kube
    namespace, name = str(body.metadata.namespace), str(body.metadata.name)
    with observe(KIND), object_lock(memo, str(body.metadata.uid)):
        now = datetime.now(UTC)
        if not _due(body, now):
            return
        try:
            obj = kube.get_custom(PLURAL, namespace, name)
            if obj["metadata"].get("deletionTimestamp"):
                return  # the finalizer has it
            p = run_pass(_env(memo), obj, now, deleting=False)
        except NotFound:
            return
        except KubeError as exc:
            raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=RETRY_SECONDS) from exc
        _write(patch, obj.get("status") or {}, p.status)
        _post(body, p.events, logger)


@kopf.on.create(GROUP, VERSION, PLURAL, id="maintenancewindow-create")
@kopf.on.update(GROUP, VERSION, PLURAL, id="maintenancewindow-update")
@kopf.on.resume(GROUP, VERSION, PLURAL, id="maintenancewindow-resume")
def changed(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Created, edited (cancel, duration, approvals), or found at start-up: carry on."""
    _pass(body, patch, memo, logger)


def _unfinished(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    """Timers stop for windows that are over (a one-off Blocked one included)."""
    phase = status.get("phase")
    if phase == WindowPhase.BLOCKED:
        return spec.get("schedule") is not None
    return phase is None or phase in UNFINISHED


@kopf.on.timer(
    GROUP,
    VERSION,
    PLURAL,
    id="maintenancewindow-tick",
    interval=TICK_SECONDS,
    initial_delay=TICK_SECONDS,  # the resume handler has just made a pass
    when=_unfinished,
)
def tick(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Time-driven work: the start, each next step, rollouts, the end."""
    _pass(body, patch, memo, logger)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="maintenancewindow-delete")
def deleted(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Undo everything the window did, then let the object go."""
    kube: Kube = memo.kube
    namespace, name = str(body.metadata.namespace), str(body.metadata.name)
    with observe(KIND), object_lock(memo, str(body.metadata.uid)):
        try:
            obj = kube.get_custom(PLURAL, namespace, name)
        except NotFound:
            return
        before = obj.get("status") or {}
        env = _env(memo)
        for _attempt in range(MAX_DELETION_PASSES):
            try:
                p = run_pass(env, obj, datetime.now(UTC), deleting=True)
            except KubeError as exc:
                raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=RETRY_SECONDS) from exc
            _post(body, p.events, logger)
            obj = {**obj, "status": p.status.model_dump(mode="json", by_alias=True)}
            if p.finished or p.status.last_error:
                break
        _write(patch, before, p.status)
        if not p.finished:
            why = p.status.last_error or "still undoing"
            raise kopf.TemporaryError(f"Not deleted yet: {why}", delay=RETRY_SECONDS)


class _QuietTicks(logging.Filter):
    """Drop Kopf's "Timer ... succeeded." line, which a half-second timer would repeat forever."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith("Timer 'maintenancewindow-tick'") and "succeeded" in text)


_kopf_objects = logging.getLogger("kopf.objects")
if not any(isinstance(f, _QuietTicks) for f in _kopf_objects.filters):
    _kopf_objects.addFilter(_QuietTicks())
