"""Notifier on the operation core: it checks that its Secret can be read, and says so.

Messages are sent by the operations themselves (core.notifying); this pass only makes a
misconfigured Notifier visible before an incident needs it: Ready=False naming the
Secret and key it cannot read, or the origin the operator's RUNBOOK_ALLOWED_URLS
refuses, looked at again every few minutes.
"""

from __future__ import annotations

from ...adapters.urls import refusal
from ...core.conditions import with_state
from ...core.context import Pass
from ...core.database import CredentialsError, secret_value
from ...core.kind import Kind, Result
from .api import NOTIFIER, NotifierSpec, NotifierStatus
from .logic import target

__all__ = ["NotifierKind"]

RECHECK = 300.0
"""Seconds between looks at a Notifier whose Secret cannot be read (or whose URL the
operator's RUNBOOK_ALLOWED_URLS refuses: the Secret may change)."""


class NotifierKind(Kind):
    resource = NOTIFIER

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(NotifierSpec)
        status: NotifierStatus = ctx.status()
        where, needs = target(spec)
        moments = sorted(m.value for m in spec.sends())
        scope = "; the default for this namespace" if spec.default else ""
        state, reason = "ready", "Configured"
        message = f"sends {', '.join(moments)} to a {where}{scope}"
        try:
            value = secret_value(ctx.kube, ctx.namespace, needs.name, needs.key) if needs else ""
        except CredentialsError as exc:
            state, reason = "waiting", "SecretNotReadable"
            message = f"{exc}: messages to this {where} cannot be sent"
        else:
            # The Secret holds the URL itself for Slack and webhooks (a credential: a
            # refusal names only its scheme, host and port); Statuspage's is in the spec.
            url = spec.statuspage.api_base if spec.statuspage is not None else value.strip()
            refused = refusal(url, where)
            if refused is not None:
                state, reason = "stalled", "URLNotAllowed"
                message = f"{refused}; messages to it are not sent"
        conditions = with_state(
            status.conditions, state, reason, message, generation=ctx.generation, now=ctx.now
        )
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
        return Result(requeue_after=RECHECK) if state != "ready" else Result()

    def finalize(self, ctx: Pass) -> Result | None:
        return None
