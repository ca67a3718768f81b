"""Leader election decisions, as client-go's leaderelection package makes them.

Pure functions of plain values (the Lease as read, who we are, the clocks), so every
rule is unit-tested without a cluster; core.leader runs them in a loop against the
Lease that adapters.lease reads and writes.

The rules (client-go `tryAcquireOrRenew`):
- a Lease held by someone else is taken only once it has not changed for
  `leaseDurationSeconds`, measured on *our* monotonic clock from the moment we saw it
  change (never from its renewTime: the clocks of two nodes may differ);
- an empty holderIdentity (a leader that stepped down) may be taken at once;
- taking it over counts one more `leaseTransitions` and sets `acquireTime`;
- renewing it keeps both and moves `renewTime`.
And the fence: a leader acts only while its last successful renewal, timed from
before the request was sent, is younger than the renew deadline, which is shorter
than the lease duration, so it stops before anyone else may start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Observed",
    "Record",
    "claim",
    "fenced",
    "from_spec",
    "observe",
    "released",
    "to_spec",
]


@dataclass(frozen=True)
class Record:
    """The spec of a coordination.k8s.io/v1 Lease."""

    holder: str
    duration: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class Observed:
    """A Lease record as last seen, and when we saw it change (monotonic seconds)."""

    record: Record
    since: float


def observe(previous: Observed | None, record: Record, now: float) -> Observed:
    """Note the record read at `now`; the clock restarts only when the record changed."""
    if previous is not None and previous.record == record:
        return previous
    return Observed(record, now)


def claim(
    seen: Observed | None, me: str, duration: int, wall: datetime, now: float
) -> Record | None:
    """The record to write to acquire or renew the Lease, or None while another holds it.

    `seen` is None when no Lease exists yet; `wall` is the time written into the record,
    `now` the monotonic clock compared with `seen.since`."""
    if seen is None:
        return Record(me, duration, acquire_time=wall, renew_time=wall, transitions=0)
    current = seen.record
    if current.holder == me:
        return replace(current, duration=duration, renew_time=wall)
    if current.holder and now < seen.since + current.duration:
        return None
    return Record(
        me, duration, acquire_time=wall, renew_time=wall, transitions=current.transitions + 1
    )


def released(current: Record, wall: datetime) -> Record:
    """What a leader that steps down writes: nobody holds it, so a follower need not wait
    (client-go's ReleaseOnCancel: empty holder, a one-second lease)."""
    return replace(current, holder="", duration=1, acquire_time=wall, renew_time=wall)


def fenced(renewed_at: float | None, renew_deadline: float, now: float) -> bool:
    """True when a leader must not act: never renewed, or not within the renew deadline."""
    return renewed_at is None or now >= renewed_at + renew_deadline


def _micro(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def from_spec(spec: dict[str, Any]) -> Record:
    """A Lease's spec (wire format) as a Record."""
    return Record(
        holder=str(spec.get("holderIdentity") or ""),
        duration=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=_parse(spec.get("acquireTime")),
        renew_time=_parse(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def to_spec(record: Record) -> dict[str, Any]:
    """A Record as a Lease's spec (MicroTime: microseconds, UTC)."""
    return {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration,
        "acquireTime": _micro(record.acquire_time),
        "renewTime": _micro(record.renew_time),
        "leaseTransitions": record.transitions,
    }
