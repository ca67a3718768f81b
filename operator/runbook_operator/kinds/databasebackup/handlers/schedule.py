"""A scheduled DatabaseBackup's pass: create the due child, prune old ones, report.

The decisions are logic.schedule's; this module lists the children (by label, owned by
this parent, not being deleted), the restores in flight (only when retention would
delete something: their backups are left alone), creates and deletes child objects
(a child's own finalizer removes its artifact), and writes the parent's status.

The child is created before the status that names it is written: its name is the
record (deterministic per slot), so a crash in between finds it, and creating it again
is a harmless Conflict. The pass then sleeps until the next slot; the children it
waits for (one running, one retention holds for a restore) wake it when they change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ....adapters.kube import Conflict, KubeError, NotFound
from ....core.context import Pass
from ....core.kind import Result, Watch, due_in
from ....core.names import SCHEDULE_LABEL
from ..api import DATABASE_BACKUP, DatabaseBackupSpec, DatabaseBackupStatus
from ..logic import schedule as sched
from .oneshot import now_of

__all__ = ["run"]

KIND = DATABASE_BACKUP.kind


def _owned_children(ctx: Pass) -> list[dict[str, Any]]:
    selector = f"{SCHEDULE_LABEL}={ctx.name}"
    items = ctx.kube.list_custom(DATABASE_BACKUP.plural, ctx.namespace, selector)
    return [
        c
        for c in items
        if any(o.get("uid") == ctx.uid for o in c["metadata"].get("ownerReferences") or [])
        and not c["metadata"].get("deletionTimestamp")
    ]


def _restores_reading(ctx: Pass) -> set[str]:
    try:
        return sched.reading(ctx.kube.list_custom(sched.RESTORES, ctx.namespace))
    except NotFound:
        return set()  # the DatabaseRestore kind is not installed


def run(ctx: Pass, spec: DatabaseBackupSpec) -> Result:
    """One pass; raises sched.InvalidSchedule when the schedule has no runs."""
    now = now_of(ctx)
    status: DatabaseBackupStatus = ctx.status()
    objs = _owned_children(ctx)
    children = [sched.child_of(o, set()) for o in objs]
    decision = sched.decide(spec, status.last_schedule_time, children, created=ctx.created, now=now)
    if decision.delete:
        in_use = _restores_reading(ctx)
        children = [sched.child_of(o, in_use) for o in objs]
        decision = sched.decide(
            spec, status.last_schedule_time, children, created=ctx.created, now=now
        )
    active = decision.active
    if decision.run is not None:
        active = _create_child(ctx, spec, decision.run)
    ctx.write(sched.scheduled(spec, status, decision, active, generation=ctx.generation, now=now))
    if decision.missed is not None:
        nxt = decision.next_time.isoformat() if decision.next_time else "never"
        ctx.recorder.warn(
            "MissedSchedule",
            f"the run due at {decision.missed.isoformat()} did not start within the starting "
            f"deadline ({spec.starting_deadline or '1h'}); the next run is at {nxt}",
        )
    for name in decision.delete:
        if ctx.kube.delete_custom(DATABASE_BACKUP.plural, ctx.namespace, name):
            ctx.recorder.info(
                "Pruned", f"deleted DatabaseBackup {name} and its artifact (retention)"
            )
    watch: set[Watch] = {(KIND, c.name) for c in children if not c.finished}
    if active is not None:
        watch.add((KIND, active))
    if decision.held:
        watch.add(("DatabaseRestore", "*"))
    return Result(requeue_after=due_in(decision.next_time, ctx.now), watch=frozenset(watch))


def _create_child(ctx: Pass, spec: DatabaseBackupSpec, slot: datetime) -> str:
    body = sched.child_object(ctx.name, ctx.uid, spec, slot)
    name = str(body["metadata"]["name"])
    try:
        ctx.kube.create_custom(DATABASE_BACKUP.plural, ctx.namespace, body)
    except Conflict:
        return name  # created by an earlier pass whose status write was lost
    except KubeError as exc:
        ctx.recorder.warn("ScheduleFailed", f"could not create DatabaseBackup {name}: {exc}")
        raise
    ctx.recorder.info(
        "Scheduled", f"created DatabaseBackup {name} for the run due at {slot.isoformat()}"
    )
    return name
