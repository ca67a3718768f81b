"""Notifications: who is told, of which moments, and what was sent (pure).

Every operation, of every kind, passes through four moments people want to hear of:
it *started*, it is *blocked*, it *failed*, it *completed*. `moment_of` reads which one
an object is in from its status (phase and kstatus conditions); a kind whose phases do
not fit the common reading gives its own (`Resource.moment`).

An operation names the `Notifier`s to tell in `spec.notify` (and which moments); one
that names none is covered by the Notifiers of its namespace marked `default: true`.
What was sent is recorded in `status.notifications`: the last moment told, and one
`Delivery` per notifier with its state, attempts, and error. The record is written
before anything is sent (Pending), and again after each attempt, so:

- a moment is told once: a pass that finds it recorded does not start it again, and a
  restarted operator finds the record;
- delivery is at least once: a Pending delivery is sent again until it is Sent or has
  used its attempts (with growing delays), after which it is Failed, which the
  `Notified` condition says; the operation itself never waits for it or fails by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from .fields import ObjectName, SecretKeyRef
from .model import ApiModel, cel

__all__ = [
    "BACKOFF",
    "DEFAULT_MOMENTS",
    "Delivery",
    "DeliveryState",
    "Incident",
    "Moment",
    "Notifications",
    "NotifierSpec",
    "NotifyRef",
    "Seen",
    "Slack",
    "Statuspage",
    "Webhook",
    "after_attempt",
    "begin",
    "due",
    "moment_of",
    "next_due",
    "summary",
]

Obj = dict[str, Any]


class Moment(StrEnum):
    STARTED = "started"
    BLOCKED = "blocked"
    FAILED = "failed"
    COMPLETED = "completed"


DEFAULT_MOMENTS = (Moment.STARTED, Moment.BLOCKED, Moment.FAILED, Moment.COMPLETED)
BACKOFF = (2.0, 4.0, 8.0, 16.0, 32.0, 60.0)
"""Seconds before a failed delivery is tried again, growing with each failure."""

_URL = r"^https?://[^\s]+$"

# --- the Notifier's spec ------------------------------------------------------


class Slack(ApiModel):
    """A Slack incoming webhook (https://hooks.slack.com/services/…)."""

    webhook_url: SecretKeyRef
    """The Secret key holding the webhook URL (it is a credential: never shown)."""


class Webhook(ApiModel):
    """Any HTTP endpoint that takes a JSON POST."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.url) != has(self.urlFrom)",
                    "set exactly one of url and urlFrom",
                )
            ]
        }
    }

    url: Annotated[str, Field(max_length=2048, pattern=_URL)] | None = None
    """The URL, when it is no secret (http or https)."""
    url_from: SecretKeyRef | None = None
    """The Secret key holding the URL, when it carries a token."""


class Statuspage(ApiModel):
    """A Statuspage page: an incident is opened, updated, and resolved."""

    api_base: Annotated[str, Field(max_length=2048, pattern=_URL)] = "https://api.statuspage.io/v1"
    """The API's base URL."""
    page_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
    """The page the incidents go to."""
    api_key: SecretKeyRef
    """The Secret key holding the API key (sent as `Authorization: OAuth <key>`)."""
    component_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    """Components the incident affects."""
    impact: Annotated[str, Field(pattern=r"^(none|minor|major|critical)$")] = "major"
    """The incident's impact."""


class NotifierSpec(ApiModel):
    """Where to tell people: exactly one of slack, webhook and statuspage."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "[has(self.slack), has(self.webhook), has(self.statuspage)]"
                    ".filter(x, x).size() == 1",
                    "set exactly one of slack, webhook and statuspage",
                )
            ]
        }
    }

    slack: Slack | None = None
    """Post to a Slack channel through an incoming webhook."""
    webhook: Webhook | None = None
    """POST a JSON document to any URL."""
    statuspage: Statuspage | None = None
    """Open a Statuspage incident when an operation fails or is blocked, and resolve it
    when it completes."""
    moments: list[Moment] | None = Field(default=None, min_length=1, max_length=4)
    """The moments to send: started, blocked, failed, completed. Default: all four
    (Statuspage: failed, blocked and completed)."""
    default: bool = False
    """Tell of every operation in this namespace that names no notifier."""
    attempts: Annotated[int, Field(ge=1, le=20)] = 5
    """Attempts per message before it is marked Failed."""
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    """How long one attempt may take."""

    def sends(self) -> frozenset[Moment]:
        """The moments it sends, defaults applied."""
        if self.moments is not None:
            return frozenset(self.moments)
        if self.statuspage is not None:
            return frozenset({Moment.BLOCKED, Moment.FAILED, Moment.COMPLETED})
        return frozenset(DEFAULT_MOMENTS)


# --- what an operation asks for --------------------------------------------------


class NotifyRef(ApiModel):
    """`spec.notify` of any operation."""

    notifiers: list[ObjectName] = Field(default_factory=list, max_length=10)
    """Notifiers in this namespace to tell. Empty: the namespace's default notifiers."""
    moments: list[Moment] | None = Field(default=None, min_length=1, max_length=4)
    """Only these moments (each notifier's own list applies too)."""
    disabled: bool = False
    """Tell nobody, not even the namespace's default notifiers."""


# --- the record in status ------------------------------------------------------


class DeliveryState(StrEnum):
    PENDING = "Pending"
    SENT = "Sent"
    FAILED = "Failed"


class Delivery(ApiModel):
    notifier: str
    """The Notifier."""
    state: DeliveryState = DeliveryState.PENDING
    """Pending (to be sent, or tried again), Sent, or Failed (attempts used up)."""
    attempts: int = 0
    """Attempts so far."""
    max_attempts: int = 5
    """Attempts before Failed."""
    next_attempt: datetime | None = None
    """When a Pending delivery is tried (again)."""
    sent_at: datetime | None = None
    """When it was accepted."""
    error: str | None = None
    """Why the last attempt failed."""


class Incident(ApiModel):
    notifier: str
    """The Statuspage Notifier."""
    id: str
    """The incident it opened for this operation, until it is resolved."""


class Notifications(ApiModel):
    moment: Moment | None = None
    """The last moment told (or being told)."""
    phase: str | None = None
    """The phase it was told of."""
    message: str | None = None
    """What was said."""
    at: datetime | None = None
    """When the moment was recorded."""
    deliveries: list[Delivery] = Field(default_factory=list)
    """One per notifier told of the moment."""
    incidents: list[Incident] = Field(default_factory=list)
    """Statuspage incidents opened for this operation and not yet resolved."""


# --- decisions ---------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """The moment an object is in, with what to say of it."""

    moment: Moment
    phase: str
    reason: str
    message: str


def _conditions(status: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, dict)}


def moment_of(status: Obj, terminal: Iterable[str]) -> Seen | None:
    """The moment the status shows, or None (waiting, or nothing yet).

    Blocked (the phase) is blocked; Stalled=True is failed; a terminal phase is completed
    when Ready=True and failed otherwise; Reconciling=True (work in flight) is started."""
    phase = str(status.get("phase") or "")
    conditions = _conditions(status)
    ready = conditions.get("Ready") or {}
    reason, message = str(ready.get("reason") or ""), str(ready.get("message") or "")

    def true(type_: str) -> bool:
        return (conditions.get(type_) or {}).get("status") == "True"

    if reason == "AlreadyRan":
        return None  # a copy Git created again, not run: nothing happened to tell of
    if phase == "Blocked":
        stalled = conditions.get("Stalled") or {}
        if true("Stalled"):
            reason, message = str(stalled.get("reason") or reason), str(stalled.get("message"))
        return Seen(Moment.BLOCKED, phase, reason, message)
    if true("Stalled"):
        stalled = conditions["Stalled"]
        return Seen(
            Moment.FAILED, phase, str(stalled.get("reason")), str(stalled.get("message") or "")
        )
    if phase and phase in set(terminal):
        moment = Moment.COMPLETED if true("Ready") else Moment.FAILED
        return Seen(moment, phase, reason, message)
    if true("Reconciling"):
        return Seen(Moment.STARTED, phase, reason, message)
    return None


def wanted(ref: NotifyRef | None, moment: Moment) -> bool:
    if ref is None or ref.moments is None:
        return True
    return moment in ref.moments


def begin(
    record: Notifications,
    seen: Seen,
    text: str,
    notifiers: Mapping[str, NotifierSpec],
    now: datetime,
) -> Notifications:
    """The record of a new moment: a Pending delivery for each notifier that wants it."""
    deliveries = [
        Delivery(notifier=name, max_attempts=spec.attempts, next_attempt=now)
        for name, spec in sorted(notifiers.items())
        if seen.moment in spec.sends()
    ]
    return record.model_copy(
        update={
            "moment": seen.moment,
            "phase": seen.phase,
            "message": text,
            "at": now,
            "deliveries": deliveries,
        }
    )


def due(record: Notifications, now: datetime) -> list[Delivery]:
    """The Pending deliveries whose time has come."""
    return [
        d
        for d in record.deliveries
        if d.state == DeliveryState.PENDING and (d.next_attempt is None or d.next_attempt <= now)
    ]


def next_due(record: Notifications, now: datetime) -> float | None:
    """Seconds until the next Pending delivery is due, or None when none is."""
    times = [d.next_attempt or now for d in record.deliveries if d.state == DeliveryState.PENDING]
    if not times:
        return None
    return max((min(times) - now).total_seconds(), 0.05)


def after_attempt(
    record: Notifications,
    notifier: str,
    error: str | None,
    now: datetime,
    incident: str | None = None,
    resolved: bool = False,
) -> Notifications:
    """The record once one delivery was attempted: Sent, Pending again later, or Failed."""
    deliveries: list[Delivery] = []
    for d in record.deliveries:
        if d.notifier != notifier:
            deliveries.append(d)
            continue
        attempts = d.attempts + 1
        if error is None:
            deliveries.append(
                d.model_copy(
                    update={
                        "state": DeliveryState.SENT,
                        "attempts": attempts,
                        "sent_at": now,
                        "next_attempt": None,
                        "error": None,
                    }
                )
            )
        elif attempts >= d.max_attempts:
            deliveries.append(
                d.model_copy(
                    update={
                        "state": DeliveryState.FAILED,
                        "attempts": attempts,
                        "next_attempt": None,
                        "error": error,
                    }
                )
            )
        else:
            delay = BACKOFF[min(attempts, len(BACKOFF)) - 1]
            deliveries.append(
                d.model_copy(
                    update={
                        "attempts": attempts,
                        "next_attempt": now + timedelta(seconds=delay),
                        "error": error,
                    }
                )
            )
    incidents = list(record.incidents)
    if resolved or incident is not None:
        incidents = [i for i in incidents if i.notifier != notifier]
    if incident is not None and not resolved:
        incidents.append(Incident(notifier=notifier, id=incident))
    return record.model_copy(update={"deliveries": deliveries, "incidents": incidents})


def incident_of(record: Notifications, notifier: str) -> str | None:
    return next((i.id for i in record.incidents if i.notifier == notifier), None)


def failed(record: Notifications) -> list[Delivery]:
    return [d for d in record.deliveries if d.state == DeliveryState.FAILED]


def summary(record: Notifications) -> tuple[bool, str, str]:
    """(status, reason, message) of the `Notified` condition."""
    lost = failed(record)
    moment = record.moment.value if record.moment else "nothing"
    if lost:
        names = ", ".join(f"{d.notifier} ({d.error})" for d in lost)
        return False, "DeliveryFailed", f"could not tell of {moment}: {names}"
    pending = [d.notifier for d in record.deliveries if d.state == DeliveryState.PENDING]
    if pending:
        return False, "Sending", f"telling {', '.join(pending)} of {moment}"
    sent = [d.notifier for d in record.deliveries]
    return True, "Delivered", f"told {', '.join(sent) or 'nobody'} of {moment}"


def words(
    kind: str,
    namespace: str,
    name: str,
    seen: Seen,
    *,
    why: str | None,
    asked_by: str | None,
) -> str:
    """What to say, in the runbook's voice: what happened, to what, why, who asked."""
    verb = {
        Moment.STARTED: "started",
        Moment.BLOCKED: "is BLOCKED",
        Moment.FAILED: "FAILED",
        Moment.COMPLETED: "completed",
    }[seen.moment]
    lines = [f"{kind} {namespace}/{name} {verb} ({seen.phase}, {seen.reason})."]
    if seen.message:
        lines.append(seen.message)
    if why:
        lines.append(f"Why: {why}")
    if asked_by:
        lines.append(f"Asked by: {asked_by}")
    lines.append(f"kubectl describe {kind.lower()} {name} -n {namespace}")
    return "\n".join(lines)


def selected(
    ref: NotifyRef | None, notifiers: Mapping[str, NotifierSpec]
) -> tuple[dict[str, NotifierSpec], list[str]]:
    """The notifiers to tell, and the names asked for that do not exist."""
    if ref is not None and ref.disabled:
        return {}, []
    if ref is None or not ref.notifiers:
        return {n: s for n, s in notifiers.items() if s.default}, []
    chosen = {n: notifiers[n] for n in ref.notifiers if n in notifiers}
    return chosen, [n for n in ref.notifiers if n not in notifiers]


def names(items: Sequence[Delivery]) -> list[str]:
    return [d.notifier for d in items]
