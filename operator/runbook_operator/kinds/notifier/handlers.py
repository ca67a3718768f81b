"""Notifier on the operation core: it checks that its Secret can be read, and says so.

Messages are sent by the operations themselves (core.notifying); this pass only makes a
misconfigured Notifier visible before an incident needs it: Ready=False naming the
Secret and key it cannot read, looked at again every few minutes.
"""

from __future__ import annotations

from ...core.conditions import with_state
from ...core.context import Pass
from ...core.database import CredentialsError, secret_value
from ...core.kind import Kind, Result
from .api import NOTIFIER, NotifierSpec, NotifierStatus
from .logic import target

__all__ = ["NotifierKind"]

RECHECK = 300.0
"""Seconds between looks at a Notifier whose Secret cannot be read."""


class NotifierKind(Kind):
    resource = NOTIFIER

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(NotifierSpec)
        status: NotifierStatus = ctx.status()
        where, needs = target(spec)
        moments = sorted(m.value for m in spec.sends())
        scope = "; the default for this namespace" if spec.default else ""
        try:
            if needs is not None:
                secret_value(ctx.kube, ctx.namespace, needs.name, needs.key)
        except CredentialsError as exc:
            conditions = with_state(
                status.conditions,
                "waiting",
                "SecretNotReadable",
                f"{exc}: messages to this {where} cannot be sent",
                generation=ctx.generation,
                now=ctx.now,
            )
            result = Result(requeue_after=RECHECK)
        else:
            conditions = with_state(
                status.conditions,
                "ready",
                "Configured",
                f"sends {', '.join(moments)} to a {where}{scope}",
                generation=ctx.generation,
                now=ctx.now,
            )
            result = Result()
        ctx.write(
            status.model_copy(
                update={
                    "conditions": conditions,
                    "target": where,
                    "moments": moments,
                    "observed_generation": ctx.generation,
                }
            )
        )
        return result

    def finalize(self, ctx: Pass) -> Result | None:
        return None
