"""When a MaintenanceWindow happens: one start, or a cron schedule in an IANA time zone.

Cron speaks in wall-clock times; a window starts at an instant. Around
daylight-saving changes the two disagree, and the rules here are the ones an
SRE would expect (RFC 5545 says the same):

- a wall time that does not exist (clocks jump from 02:00 to 03:00) starts the
  window at the instant it would have been without the jump: 02:30 becomes
  03:30 of the new offset, the same number of minutes after the change;
- a wall time that happens twice (clocks go from 03:00 back to 02:00) starts
  the window once, at the first of the two;
- a duration is elapsed time: a 3h window that starts at 01:00 on the night
  the clocks jump forward ends at 05:00 local time.

Everything is pure: instants in, instants out (aware datetimes, UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from ..api.common import parse_duration
from ..api.maintenancewindow import MaintenanceWindowSpec

__all__ = [
    "Occurrence",
    "cron_starts",
    "first_occurrence",
    "local_time",
    "next_occurrence",
    "occurrence_at",
    "to_instant",
    "zone",
]

_DST_MARGIN = timedelta(hours=3)
"""Wall-clock slack when searching: no zone shifts its clocks by more than this at once."""
_MAX_STEPS = 100_000


@dataclass(frozen=True)
class Occurrence:
    start: datetime
    """When it starts (aware, UTC)."""
    end: datetime
    """When it ends (start + duration)."""


def zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


def to_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant of a naive wall-clock time in `tz` (fold=0: gaps move forward, repeats once)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def local_time(instant: datetime, tz: ZoneInfo) -> str:
    """A wall-clock reading for messages, e.g. '2025-03-30 03:30 CEST'."""
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def cron_starts(schedule: str, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Start instants of `schedule` at or after `after`, in order, each once."""
    wall = after.astimezone(tz).replace(tzinfo=None) - _DST_MARGIN
    it = croniter(schedule, wall)
    last: datetime | None = None
    for _ in range(_MAX_STEPS):
        instant = to_instant(it.get_next(datetime), tz)
        if instant < after or (last is not None and instant <= last):
            continue  # before the anchor, or the same instant as a gap-shifted wall time
        last = instant
        yield instant
    raise ValueError(f"schedule {schedule!r} has no start after {after.isoformat()}")


def occurrence_at(spec: MaintenanceWindowSpec, start: datetime) -> Occurrence:
    """The occurrence starting at `start`, with the spec's current duration."""
    start = start.astimezone(UTC)
    return Occurrence(start=start, end=start + parse_duration(spec.duration))


def next_occurrence(spec: MaintenanceWindowSpec, anchor: datetime) -> Occurrence:
    """The first occurrence starting at or after `anchor` (a one-off window has just one)."""
    if spec.start is not None:
        return occurrence_at(spec, spec.start)
    assert spec.schedule is not None  # the schema requires start or schedule
    start = next(cron_starts(spec.schedule, zone(spec.time_zone), anchor))
    return occurrence_at(spec, start)


def first_occurrence(spec: MaintenanceWindowSpec, created: datetime, now: datetime) -> Occurrence:
    """The first occurrence of a new window.

    A recurring window's first occurrence is the first one that still gives the
    minimum notice counted from creation: earlier ones are skipped, not Blocked,
    because nobody asked for them. A late operator may still start one that
    began less than startingDeadline ago.
    """
    notice = parse_duration(spec.policy.minimum_notice)
    late = now - parse_duration(spec.starting_deadline)
    return next_occurrence(spec, max(created + notice, late))
