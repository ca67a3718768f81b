"""One step of a MaintenanceWindow: decide, do at most one piece of work, judge it.

`step()` is what the Kind repeats within a pass; `undo_step()` is the same for a
window being deleted, from status alone. Errors of the outside world end up in
status (and are retried), never as exceptions out of here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ....core.ports import Obj
from .. import logic
from ..api import MaintenanceWindowSpec, MaintenanceWindowStatus
from ..logic.policy import approval_records, evaluate, minimums
from .checks import extend_silence, observe_policy
from .env import Env, Target
from .steps import execute, release_holds

__all__ = ["step", "undo_step"]


def step(env: Env, w: logic.Window, ref: tuple[str, str, str], now: datetime) -> logic.Pass:
    """ref: (namespace, name, uid) of the window."""
    namespace = ref[0]
    p = logic.advance(w, now)
    if p.work is None:
        return p

    fresh: dict[str, Obj] = {}

    def target(status: MaintenanceWindowStatus) -> Target:
        return Target(*ref, w.spec, status, now, fresh)

    work = p.work
    if work.kind == logic.WorkKind.POLICY:
        assert p.status.next_start is not None
        observed, fresh = observe_policy(env, namespace, w.spec)
        results = evaluate(w.spec, w.created, p.status.next_start, observed, now, w.stamps)
        least = minimums(w.spec, observed)
        judged = approval_records(w.spec, w.stamps, p.status.approvals, now, least)
        update = {"approvals": judged, "governed_by": list(least.governed_by)}
        p = replace(p, status=p.status.model_copy(update=update))
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


def undo_step(
    env: Env,
    status: MaintenanceWindowStatus,
    spec: MaintenanceWindowSpec | None,
    ref: tuple[str, str, str],
    generation: int | None,
    now: datetime,
) -> logic.Pass:
    p = logic.deletion(status, generation, now)
    if p.work is None:
        return p
    t = Target(*ref, spec, p.status, now)
    if p.work.kind == logic.WorkKind.RELEASE_STRAY_HOLDS:
        released = release_holds(env, t)
        if released.error is not None:
            p.status.last_error = f"cannot release holds: {released.error}"
            return logic.Pass(p.status, events=p.events)
        return p
    assert p.work.step is not None
    return logic.after_undo(p, p.work.step, execute(env, t, p.work.step), now)
