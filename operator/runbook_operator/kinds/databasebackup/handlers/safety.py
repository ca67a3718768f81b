"""Safety backups pruned by their own rule, by the safety backups themselves.

A finished safety backup (labelled pre-restore by the DatabaseRestore that took it)
looks at its siblings in the namespace and deletes those the rule (logic.safety, the
operator settings RUNBOOK_SAFETY_BACKUPS_KEEP and RUNBOOK_SAFETY_BACKUPS_MAX_AGE) no
longer keeps; each deletion runs that backup's finalizer, which deletes its artifact
from the volume or the bucket it recorded. With a max age it wakes when the next one
ages out, so nothing depends on another restore happening. Only safety backups pay
for this: any other finished one-shot backup still costs nothing.
"""

from __future__ import annotations

from datetime import timedelta

from ....adapters.kube import KubeError, NotFound
from ....core.context import Pass
from ....core.fields import parse_duration
from ....core.kind import Result, due_in
from ....core.names import PRE_RESTORE_LABEL
from ....settings import Settings
from ..api import DATABASE_BACKUP, DatabaseBackupStatus
from ..logic import safety
from ..logic import schedule as sched
from .oneshot import now_of

__all__ = ["is_safety_backup", "prune", "rule_of"]


def is_safety_backup(ctx: Pass) -> bool:
    return PRE_RESTORE_LABEL in (ctx.meta.get("labels") or {})


def rule_of(settings: Settings) -> safety.SafetyRule:
    """The rule from the settings; an unparsable max age is no limit (and said, by the
    caller)."""
    max_age: timedelta | None = None
    if settings.safety_backups_max_age:
        max_age = parse_duration(settings.safety_backups_max_age)
    return safety.SafetyRule(keep=settings.safety_backups_keep, max_age=max_age)


def prune(ctx: Pass) -> Result | None:
    """Delete the safety backups of this namespace the rule no longer keeps; when the next
    one is due to age out, a pass then. None when this backup is not finished yet."""
    status: DatabaseBackupStatus = ctx.status()
    if not status.is_done():
        return None
    try:
        rule = rule_of(ctx.settings)
    except ValueError as exc:
        ctx.recorder.log(f"RUNBOOK_SAFETY_BACKUPS_MAX_AGE ignored: {exc}")
        rule = safety.SafetyRule(keep=ctx.settings.safety_backups_keep)
    now = now_of(ctx)
    plural = DATABASE_BACKUP.plural
    backups = safety.safety_backups(ctx.kube.list_custom(plural, ctx.namespace, PRE_RESTORE_LABEL))
    age = f", none older than {ctx.settings.safety_backups_max_age}" if rule.max_age else ""
    for name in safety.prune(backups, rule, now, _in_use(ctx)):
        try:
            if ctx.kube.delete_custom(plural, ctx.namespace, name):
                ctx.recorder.info(
                    "SafetyBackupPruned",
                    f"deleted safety backup {name} (its artifact goes with it): the "
                    f"safety-backup rule keeps {rule.keep} per database{age}",
                )
        except KubeError as exc:
            ctx.recorder.warn("PruneFailed", f"could not delete safety backup {name}: {exc}")
    return Result(requeue_after=due_in(safety.next_expiry(backups, rule, now), now))


def _in_use(ctx: Pass) -> set[str]:
    """What DatabaseRestores in flight read, or are taking as their safety backup."""
    try:
        restores = ctx.kube.list_custom(sched.RESTORES, ctx.namespace)
    except NotFound:
        return set()  # the DatabaseRestore kind is not installed
    return sched.reading(restores) | safety.awaited(restores)
