"""When a MaintenanceWindow happens: one start, or a cron schedule in an IANA time zone.

The wall-clock rules around daylight-saving changes are the core's cron engine's
(core.schedule: a skipped wall time starts right after the jump, a repeated one
once). What is the window's own: a duration is elapsed time (a 3h window that
starts at 01:00 on the night the clocks jump forward ends at 05:00 local time),
and a new recurring window's first occurrence is the first that still gives the
minimum notice. Pure: instants in, instants out (aware datetimes, UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ....core.fields import parse_duration
from ....core.schedule import cron_starts, zone
from ..api import MaintenanceWindowSpec

__all__ = ["Occurrence", "first_occurrence", "next_occurrence", "occurrence_at"]


@dataclass(frozen=True)
class Occurrence:
    start: datetime
    """When it starts (aware, UTC)."""
    end: datetime
    """When it ends (start + duration)."""


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
