"""Cron schedules in an IANA time zone: the one engine for windows and backups.

Cron speaks in wall-clock times; a run starts at an instant. Around
daylight-saving changes the two disagree, and the rules here are the ones an
SRE would expect (RFC 5545 says the same):

- a wall time that does not exist (clocks jump from 02:00 to 03:00) starts at
  the instant it would have been without the jump: 02:30 becomes 03:30 of the
  new offset, the same number of minutes after the change;
- a wall time that happens twice (clocks go from 03:00 back to 02:00) starts
  once, at the first of the two.

Everything is pure: instants in, instants out (aware datetimes, UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

__all__ = [
    "cron_starts",
    "instant",
    "local_time",
    "next_start",
    "previous_start",
    "to_instant",
    "zone",
]

_DST_MARGIN = timedelta(hours=3)
"""Wall-clock slack when searching: no zone shifts its clocks by more than this at once."""
_MAX_STEPS = 100_000


def zone(name: str | None) -> ZoneInfo:
    """The zone of a validated name (core.fields.TimeZone); UTC when unset."""
    return ZoneInfo(name or "UTC")


def to_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant of a naive wall-clock time in `tz` (fold=0: gaps move forward, repeats once)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def local_time(at: datetime, tz: ZoneInfo) -> str:
    """A wall-clock reading for messages, e.g. '2025-03-30 03:30 CEST'."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def instant(at: datetime) -> str:
    """An instant for people and machines: 2025-03-02T01:00:00Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cron_starts(schedule: str, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Start instants of `schedule` at or after `after`, in order, each once."""
    wall = after.astimezone(tz).replace(tzinfo=None) - _DST_MARGIN
    it = croniter(schedule, wall)
    last: datetime | None = None
    for _ in range(_MAX_STEPS):
        start = to_instant(it.get_next(datetime), tz)
        if start < after or (last is not None and start <= last):
            continue  # before the anchor, or the same instant as a gap-shifted wall time
        last = start
        yield start
    raise ValueError(f"schedule {schedule!r} has no start after {after.isoformat()}")


def next_start(schedule: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first start strictly after `after`."""
    return next(s for s in cron_starts(schedule, tz, after) if s > after)


def previous_start(schedule: str, tz: ZoneInfo, at: datetime) -> datetime:
    """The latest start at or before `at`."""
    wall = at.astimezone(tz).replace(tzinfo=None) + _DST_MARGIN
    it = croniter(schedule, wall)
    for _ in range(_MAX_STEPS):
        start = to_instant(it.get_prev(datetime), tz)
        if start <= at:
            return start
    raise ValueError(f"schedule {schedule!r} has no start before {at.isoformat()}")
