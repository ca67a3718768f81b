"""The notification step that follows every pass of every kind (core.notify decides).

After a kind's pass, `Notifying.after(ctx, result)` looks at the moments the pass went
through (each status it wrote) and at the record in `status.notifications`. A moment
not yet recorded is recorded first, with a Pending delivery per Notifier that wants it,
and then sent; each attempt's outcome is recorded at once. A delivery that failed is
tried again when due: the returned Result wakes the object then. Nothing here fails the
pass or delays the operation's own next step beyond one attempt's timeout: an error is
recorded (and shown by the `Notified` condition), never raised.

An object the operator finds already finished, with no record and nothing written in
this pass (it finished before notifications existed, or its record was never made),
is not told of again: nothing is sent that nobody would expect.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Protocol

from ..adapters import webhooks
from ..adapters.kube import KubeError
from . import notify
from .conditions import Condition, set_condition
from .context import Pass
from .database import CredentialsError, secret_value
from .identity import requested_by
from .kind import Result
from .notify import Moment, Notifications, NotifierSpec, NotifyRef, Seen
from .spec import InvalidSpec, parse
from .writer import Stale

__all__ = ["NOTIFIED", "NOTIFIERS", "Notifying"]

NOTIFIERS = "notifiers"
NOTIFIED = "Notified"
LOG = logging.getLogger("runbook_operator.notify")
RETRY_AFTER_ERROR = 60.0
"""Seconds before notifications are looked at again after the API server refused a read."""

Obj = dict[str, Any]


def asked_by(obj: Obj) -> str | None:
    """Who asked: the requester the API server authenticated, as admission stamped it
    (core.identity); None when nothing was stamped (never a client's own say-so)."""
    who = requested_by(obj)
    return who.user if who is not None else None


class Transport(Protocol):
    """How messages leave (adapters.webhooks; a recording fake in unit tests)."""

    def slack(self, url: str, text: str, timeout: float) -> None: ...

    def post_json(self, url: str, document: dict[str, Any], timeout: float) -> None: ...

    def open_incident(
        self,
        base: str,
        page_id: str,
        key: str,
        *,
        name: str,
        body: str,
        impact: str,
        component_ids: list[str],
        timeout: float,
    ) -> str: ...

    def update_incident(
        self,
        base: str,
        page_id: str,
        key: str,
        incident_id: str,
        *,
        status: str,
        body: str,
        timeout: float,
    ) -> None: ...


class Notifying:
    def __init__(self, transport: Transport | None = None) -> None:
        self.transport: Transport = transport or webhooks.TRANSPORT
        self._quiet: dict[tuple[str, str], str] = {}
        """(namespace, name) -> the moment for which no Notifier was found: not looked up
        again while the object stays in it (forgotten with the object)."""

    # --- reading -------------------------------------------------------------

    def _moment(self, ctx: Pass, status: Obj) -> Seen | None:
        if ctx.resource.moment is not None:
            return ctx.resource.moment(status)
        return notify.moment_of(status, ctx.resource.status.TERMINAL)

    def _notifiers(self, ctx: Pass) -> dict[str, NotifierSpec]:
        found: dict[str, NotifierSpec] = {}
        # Configuration, from the watch cache (core.ports): a Notifier made in the last
        # milliseconds before an operation's moment is not told of it.
        for obj in ctx.kube.list_custom(NOTIFIERS, ctx.namespace, cached=True):
            try:
                found[str(obj["metadata"]["name"])] = parse(NotifierSpec, obj.get("spec"))
            except InvalidSpec:
                continue  # its own status says why
        return found

    @staticmethod
    def _ref(ctx: Pass) -> NotifyRef | None:
        raw = (ctx.obj.get("spec") or {}).get("notify")
        if raw is None:
            return None
        try:
            return parse(NotifyRef, raw)
        except InvalidSpec:
            return None

    def forget(self, key: tuple[str, str]) -> None:
        """The object is gone."""
        self._quiet.pop(key, None)

    # --- the step ------------------------------------------------------------

    def after(self, ctx: Pass, result: Result) -> Result:
        if not ctx.resource.operation or ctx.deleting:
            return result
        try:
            wake = self._step(ctx)
        except Stale:
            raise  # decided again from a fresh read, like any write of the pass
        except KubeError as exc:
            ctx.recorder.log(f"notifications not sent yet: {exc}", level=logging.WARNING)
            wake = RETRY_AFTER_ERROR
        if wake is None:
            return result
        if result.requeue_after is not None and result.requeue_after <= wake:
            return result
        return replace(result, requeue_after=wake)

    def _step(self, ctx: Pass) -> float | None:
        ref = self._ref(ctx)
        if ref is not None and ref.disabled:
            return None
        status = dict(ctx.obj.get("status") or {})
        record = Notifications.model_validate(status.get("notifications") or {})
        for seen in self._new_moments(ctx, status, record):
            if not notify.wanted(ref, seen.moment):
                continue
            if self._quiet.get((ctx.namespace, ctx.name)) == seen.moment:
                continue
            chosen, missing = notify.selected(ref, self._notifiers(ctx))
            for name in missing:
                ctx.recorder.warn("NotifierNotFound", f"Notifier {name} does not exist")
            if not chosen:
                self._quiet[(ctx.namespace, ctx.name)] = seen.moment
                continue
            self._quiet.pop((ctx.namespace, ctx.name), None)
            text = notify.words(
                ctx.resource.kind,
                ctx.namespace,
                ctx.name,
                seen,
                why=(ctx.obj.get("spec") or {}).get("reason"),
                asked_by=asked_by(ctx.obj),
            )
            record = notify.begin(record, seen, text, chosen, ctx.tick())
            self._record(ctx, record)
            record = self._deliver(ctx, record, chosen)
        if notify.due(record, ctx.tick()):
            record = self._deliver(ctx, record, self._notifiers(ctx))
        return notify.next_due(record, ctx.tick())

    def _new_moments(self, ctx: Pass, status: Obj, record: Notifications) -> list[Seen]:
        """The moments this pass reached that the record has not told of, in order."""
        seen = [m for m in (self._moment(ctx, s) for s in ctx.writer.written) if m is not None]
        if not seen:
            current = self._moment(ctx, status)
            if current is None or current.moment == record.moment:
                return []
            if record.moment is None and current.moment in (Moment.COMPLETED, Moment.FAILED):
                return []  # finished before it was watched for notifications
            seen = [current]
        out: list[Seen] = []
        last = record.moment
        for item in seen:
            if item.moment != last:
                out.append(item)
                last = item.moment
        return out

    def _record(self, ctx: Pass, record: Notifications) -> None:
        ok, reason, message = notify.summary(record)
        raw = [
            Condition.model_validate(c)
            for c in (ctx.obj.get("status") or {}).get("conditions") or []
        ]
        conditions = set_condition(
            raw, NOTIFIED, ok, reason, message, generation=ctx.generation, now=ctx.now
        )
        ctx.writer.write_fields(
            {"notifications": record.wire(), "conditions": [c.wire() for c in conditions]}
        )

    def _deliver(
        self, ctx: Pass, record: Notifications, notifiers: dict[str, NotifierSpec]
    ) -> Notifications:
        for delivery in notify.due(record, ctx.tick()):
            spec = notifiers.get(delivery.notifier)
            incident: str | None = None
            resolved = False
            if spec is None:
                error: str | None = f"Notifier {delivery.notifier} no longer exists"
            else:
                try:
                    incident, resolved = self._send(ctx, spec, delivery.notifier, record)
                    error = None
                except (webhooks.DeliveryError, CredentialsError) as exc:
                    error = str(exc)
            record = notify.after_attempt(
                record, delivery.notifier, error, ctx.tick(), incident, resolved
            )
            self._record(ctx, record)
            if error is not None:
                ctx.recorder.log(
                    f"telling {delivery.notifier} of {record.moment}: {error}",
                    level=logging.WARNING,
                )
        return record

    def _send(
        self, ctx: Pass, spec: NotifierSpec, name: str, record: Notifications
    ) -> tuple[str | None, bool]:
        """Send the record's message through one Notifier: (incident id, resolved)."""
        text = record.message or ""
        timeout = float(spec.timeout_seconds)

        def secret(ref: Any) -> str:
            return secret_value(ctx.kube, ctx.namespace, ref.name, ref.key).strip()

        if spec.slack is not None:
            self.transport.slack(secret(spec.slack.webhook_url), text, timeout)
            return None, False
        if spec.webhook is not None:
            hook = spec.webhook
            url = hook.url if hook.url is not None else secret(hook.url_from)
            document = {
                "kind": ctx.resource.kind,
                "namespace": ctx.namespace,
                "name": ctx.name,
                "moment": record.moment,
                "phase": record.phase,
                "text": text,
                "at": record.at.isoformat() if record.at else None,
            }
            self.transport.post_json(url, document, timeout)
            return None, False
        page = spec.statuspage
        assert page is not None  # the CRD requires exactly one
        key = secret(page.api_key)
        open_id = notify.incident_of(record, name)
        if record.moment == Moment.COMPLETED:
            if open_id is None:
                return None, False  # nothing was opened: nothing to resolve
            self.transport.update_incident(
                page.api_base,
                page.page_id,
                key,
                open_id,
                status="resolved",
                body=text,
                timeout=timeout,
            )
            return open_id, True
        if open_id is not None:
            self.transport.update_incident(
                page.api_base,
                page.page_id,
                key,
                open_id,
                status="identified",
                body=text,
                timeout=timeout,
            )
            return open_id, False
        title = f"{ctx.resource.kind} {ctx.namespace}/{ctx.name}: {record.moment}"
        opened = self.transport.open_incident(
            page.api_base,
            page.page_id,
            key,
            name=title,
            body=text,
            impact=page.impact,
            component_ids=list(page.component_ids),
            timeout=timeout,
        )
        return opened, False
