"""A CacheFlush's decisions: (spec, status, the window, what Redis holds, now) -> status.

Blocked -> Flushing -> Completed, or Refused (confirm names another database) or Failed
(Redis unreachable, credentials refused, the command disabled). The guard is asked only
before the flush is recorded; once Flushing, the flush finishes even if the window ends.

Never twice. A whole-database flush sets a marker key, records it (Flushing), then sends
FLUSHDB, which removes every key and the marker with them. A resumed pass that finds the
marker knows the FLUSHDB was not sent and sends it; one that finds it gone knows it was
and only measures. A keyPattern flush is a SCAN + UNLINK, which a resumed pass simply
continues (the keys already gone are not found again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...core.draft import Draft
from ...core.events import NORMAL, WARNING, Event
from .api import CacheFlushSpec, CacheFlushStatus, FlushPhase, Measure

__all__ = [
    "ACTIVE",
    "MARKER_TTL",
    "Authorization",
    "Refusal",
    "blocked_or_refused",
    "command",
    "completed",
    "failed",
    "flushing",
    "guard",
    "marker_key",
    "measure",
    "summary",
]

Obj = dict[str, Any]
ACTIVE = "Active"
MARKER_TTL = 24 * 3600
"""Seconds the marker key lives if the flush never comes (the CacheFlush was deleted)."""
ASYNC_SINCE = 4
"""FLUSHDB ASYNC exists from Redis 4.0."""


@dataclass(frozen=True)
class Authorization:
    by: str
    """MaintenanceWindow/<name>, or confirm."""
    message: str


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str
    final: bool
    """True when waiting cannot help (Refused); False: Blocked until the window is Active."""


def guard(spec: CacheFlushSpec, window: Obj | None) -> Authorization | Refusal:
    """Allowed by the named window being Active, or by confirm naming this database."""
    address = spec.redis.address
    name = spec.maintenance_window
    phase = ((window or {}).get("status") or {}).get("phase")
    if name is not None and phase == ACTIVE:
        return Authorization(f"MaintenanceWindow/{name}", f"MaintenanceWindow {name} is Active")
    if spec.confirm == address:
        return Authorization("confirm", f"confirm names {address}")
    if name is None:
        typed = "is not set" if spec.confirm is None else f"is {spec.confirm!r}"
        message = (
            f"spec.confirm {typed}, but this flush is of {address!r}: nothing was flushed; "
            "create a new CacheFlush with the address typed out"
        )
        return Refusal("NotAuthorized", message, final=True)
    state = "does not exist" if window is None else f"is {phase or 'not started'}"
    message = f"MaintenanceWindow {name} {state}; the flush of {address} waits until it is Active"
    return Refusal("WaitingForWindow", message, final=False)


def command(spec: CacheFlushSpec, version_major: int) -> str:
    if spec.key_pattern is not None:
        return f"SCAN MATCH {spec.key_pattern} + UNLINK"
    return "FLUSHDB ASYNC" if version_major >= ASYNC_SINCE else "FLUSHDB"


def marker_key(uid: str) -> str:
    return f"runbook-operator:cacheflush:{uid}"


def measure(keys: int, used_memory: int, human: str, now: datetime) -> Measure:
    return Measure(keys=keys, used_memory=used_memory, used_memory_human=human or None, at=now)


def summary(spec: CacheFlushSpec) -> str:
    what = f"keys matching {spec.key_pattern!r} in" if spec.key_pattern else "every key of"
    return f"{what} Redis {spec.redis.address}"


@dataclass
class _Draft(Draft[CacheFlushStatus]):
    spec: CacheFlushSpec | None = None

    def summed(self, status: CacheFlushStatus) -> CacheFlushStatus:
        if self.spec is None:
            return status
        return status.model_copy(update={"address": self.spec.redis.address})


def _draft(
    spec: CacheFlushSpec, status: CacheFlushStatus, generation: int | None, now: datetime
) -> _Draft:
    return _Draft(status, generation, now, spec)


def blocked_or_refused(
    spec: CacheFlushSpec,
    status: CacheFlushStatus,
    refusal: Refusal,
    *,
    generation: int | None,
    now: datetime,
) -> tuple[CacheFlushStatus, list[Event]]:
    """Blocked (waiting for the window) or Refused (for good); an event when it is news."""
    d = _draft(spec, status, generation, now)
    if refusal.final:
        new = d.write(
            phase=FlushPhase.REFUSED,
            completed_at=now,
            conditions=d.conditions("stalled", refusal.reason, refusal.message),
        )
    else:
        new = d.write(
            phase=FlushPhase.BLOCKED,
            conditions=d.conditions("waiting", refusal.reason, refusal.message),
        )
    news = status.message() != refusal.message
    return new, [Event(WARNING, refusal.reason, refusal.message)] if news else []


def flushing(
    spec: CacheFlushSpec,
    status: CacheFlushStatus,
    authorization: Authorization,
    before: Measure,
    how: str,
    marker: str | None,
    *,
    generation: int | None,
    now: datetime,
) -> tuple[CacheFlushStatus, list[Event]]:
    """Recorded before the flush: what allowed it, what was there, how, and the marker."""
    d = _draft(spec, status, generation, now)
    message = (
        f"flushing {summary(spec)} ({how}): {before.keys} keys, "
        f"{before.used_memory_human or before.used_memory} in use; {authorization.message}"
    )
    new = d.write(
        phase=FlushPhase.FLUSHING,
        command=how,
        authorized_by=authorization.by,
        marker=marker,
        before=before,
        started_at=now,
        conditions=d.conditions("progressing", "Flushing", message),
    )
    return new, [Event(NORMAL, "Flushing", message)]


def completed(
    spec: CacheFlushSpec,
    status: CacheFlushStatus,
    after: Measure,
    removed: int | None,
    *,
    generation: int | None,
    now: datetime,
) -> tuple[CacheFlushStatus, list[Event]]:
    d = _draft(spec, status, generation, now)
    before = status.before
    was = f"{before.keys} keys before, " if before is not None else ""
    gone = f"{removed} keys removed, " if removed is not None else ""
    message = f"flushed {summary(spec)}: {was}{gone}{after.keys} after"
    total = removed if status.removed is None or removed is None else status.removed + removed
    new = d.write(
        phase=FlushPhase.COMPLETED,
        after=after,
        removed=total,
        completed_at=now,
        conditions=d.conditions("ready", "Flushed", message),
    )
    return new, [Event(NORMAL, "Completed", message)]


def failed(
    spec: CacheFlushSpec,
    status: CacheFlushStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> tuple[CacheFlushStatus, list[Event]]:
    d = _draft(spec, status, generation, now)
    new = d.write(
        phase=FlushPhase.FAILED,
        completed_at=now,
        conditions=d.conditions("stalled", reason, message),
    )
    return new, [Event(WARNING, reason, message)]
