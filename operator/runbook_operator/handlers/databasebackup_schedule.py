"""A scheduled DatabaseBackup's pass: create the due child, prune old ones, report.

The decisions are logic.backupschedule's; this module reads the children (by
label, owned by this parent), the restores in flight (retention leaves their
backups alone), creates and deletes child objects (their finalizer removes the
artifact), and writes the parent's status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import kopf

from ..adapters.kube import Conflict, KubeError
from ..api.databasebackup import (
    DATABASE_BACKUP,
    SCHEDULE_LABEL,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
)
from ..api.databaserestore import DATABASE_RESTORE, RestorePhase
from ..conditions import ready
from ..logic import backupschedule as sched
from .databasebackup_common import Ctx, now_utc, write_status

__all__ = ["run_schedule"]


def _owned_children(ctx: Ctx) -> list[dict[str, Any]]:
    selector = f"{SCHEDULE_LABEL}={ctx.name}"
    items = ctx.kube.list_custom(DATABASE_BACKUP.plural, ctx.namespace, selector)
    return [
        c
        for c in items
        if any(o.get("uid") == ctx.uid for o in c["metadata"].get("ownerReferences") or [])
    ]


def _child_view(obj: dict[str, Any], in_use: set[str]) -> sched.Child:
    status = obj.get("status") or {}
    completed = status.get("completedAt")
    return sched.Child(
        name=obj["metadata"]["name"],
        phase=status.get("phase"),
        created=datetime.fromisoformat(obj["metadata"]["creationTimestamp"]),
        completed_at=datetime.fromisoformat(completed) if completed else None,
        in_use=obj["metadata"]["name"] in in_use,
    )


def _restores_reading(ctx: Ctx) -> set[str]:
    """Backups that a DatabaseRestore in flight is reading: retention leaves them alone."""
    out: set[str] = set()
    for obj in ctx.kube.list_custom(DATABASE_RESTORE.plural, ctx.namespace):
        status = obj.get("status") or {}
        if status.get("phase") not in (RestorePhase.COMPLETED, RestorePhase.FAILED):
            out.update(filter(None, [status.get("backup"), (obj.get("spec") or {}).get("backup")]))
    return out


def run_schedule(ctx: Ctx, spec: DatabaseBackupSpec, status: DatabaseBackupStatus) -> None:
    """One pass; raises sched.InvalidSchedule when the schedule cannot be computed."""
    now = now_utc()
    created = datetime.fromisoformat(ctx.body.metadata["creationTimestamp"])
    objs = _owned_children(ctx)
    decision = sched.decide(
        spec,
        status.last_schedule_time,
        [_child_view(o, set()) for o in objs],
        created=created,
        now=now,
    )
    if decision.delete:
        in_use = _restores_reading(ctx)
        children = [_child_view(o, in_use) for o in objs]
        decision = sched.decide(spec, status.last_schedule_time, children, created=created, now=now)
    active = decision.active
    if decision.run is not None:
        active = _create_child(ctx, spec, decision.run)
    if decision.missed is not None:
        ctx.warn(
            "MissedSchedule",
            f"the run due at {decision.missed.isoformat()} did not start within the starting "
            f"deadline ({spec.starting_deadline or '1h'}); the next run is at "
            f"{decision.next_time.isoformat() if decision.next_time else 'never'}",
        )
    for name in decision.delete:
        if ctx.kube.delete_custom(DATABASE_BACKUP.plural, ctx.namespace, name):
            ctx.info("Pruned", f"deleted DatabaseBackup {name} and its artifact (retention)")
    write_status(ctx, status, _schedule_status(ctx, spec, status, decision, active, now))


def _create_child(ctx: Ctx, spec: DatabaseBackupSpec, slot: datetime) -> str:
    body = sched.child_object(ctx.name, ctx.uid, spec, slot)
    name = str(body["metadata"]["name"])
    try:
        ctx.kube.create_custom(DATABASE_BACKUP.plural, ctx.namespace, body)
    except Conflict:
        return name  # created by an earlier pass whose status write was lost
    except KubeError as exc:
        ctx.warn("ScheduleFailed", f"could not create DatabaseBackup {name}: {exc}")
        raise kopf.TemporaryError(str(exc), delay=10) from exc
    ctx.info("Scheduled", f"created DatabaseBackup {name} for the run due at {slot.isoformat()}")
    return name


def _schedule_status(
    ctx: Ctx,
    spec: DatabaseBackupSpec,
    status: DatabaseBackupStatus,
    decision: sched.Decision,
    active: str | None,
    now: datetime,
) -> DatabaseBackupStatus:
    last = decision.run or decision.missed or status.last_schedule_time
    success = decision.last_success
    if spec.suspend:
        message = "suspended: no new runs"
    else:
        nxt = decision.next_time.isoformat() if decision.next_time else "never"
        message = f"next run at {nxt}" + (f"; {active} is running" if active else "")
    if success is not None:
        message += f"; last successful backup {success.name}"
    reason = "Suspended" if spec.suspend else "Scheduled"
    conditions = ready(status.conditions, reason, message, generation=ctx.generation, now=now)
    return status.model_copy(
        update={
            "phase": decision.phase,
            "observed_generation": ctx.generation,
            "last_schedule_time": last,
            "next_schedule_time": decision.next_time,
            "active": active,
            "last_successful_time": success.when if success else status.last_successful_time,
            "last_successful_backup": success.name if success else status.last_successful_backup,
            "conditions": conditions,
        }
    )
