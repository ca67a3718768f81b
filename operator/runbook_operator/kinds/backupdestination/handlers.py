"""BackupDestination on the operation core: it checks that its Secrets can be read.

Backups read the default destination themselves when they start (core.objectstores); this
pass only makes a misconfigured one visible before a backup needs it: Ready=False naming
the Secret and key it cannot read, looked at again every few minutes.
"""

from __future__ import annotations

from ...core import objectstores
from ...core.conditions import with_state
from ...core.context import Pass
from ...core.database import CredentialsError, secret_value
from ...core.destination import DEFAULT_NAME, describe
from ...core.kind import Kind, Result
from .api import BACKUP_DESTINATION, BackupDestinationSpec, BackupDestinationStatus
from .logic import needed, state

__all__ = ["BackupDestinationKind"]

RECHECK = 300.0
"""Seconds between looks at a BackupDestination whose Secrets cannot be read."""


class BackupDestinationKind(Kind):
    resource = BACKUP_DESTINATION

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(BackupDestinationSpec)
        status: BackupDestinationStatus = ctx.status()
        unreadable: str | None = None
        try:
            for need in needed(spec):
                if need.encryption:
                    objectstores.encryption_key(
                        ctx.kube, ctx.namespace, f"{need.secret}/{need.key}"
                    )
                else:
                    secret_value(ctx.kube, ctx.namespace, need.secret, need.key)
        except CredentialsError as exc:
            unreadable = str(exc)
        shown = state(ctx.name, spec, unreadable)
        conditions = with_state(
            status.conditions,
            shown.state,
            shown.reason,
            shown.message,
            generation=ctx.generation,
            now=ctx.now,
        )
        ctx.write(
            status.model_copy(
                update={
                    "conditions": conditions,
                    "target": describe(spec),
                    "default": ctx.name == DEFAULT_NAME,
                    "observed_generation": ctx.generation,
                }
            )
        )
        return Result(requeue_after=RECHECK) if unreadable is not None else Result()

    def finalize(self, ctx: Pass) -> Result | None:
        return None
