"""A schedule's retention must outlive one run: keep.maxAge shorter than the interval
between runs would delete every backup before the next one exists.

The API server cannot read a cron expression, so the operator judges it: such a spec
is invalid (Stalled, reason InvalidSpec, saying both durations), never run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from ....core import schedule as cron
from ....core.fields import parse_duration
from ..api import DatabaseBackupSpec

__all__ = ["max_age_problem"]

SAMPLES = 16
"""Consecutive runs looked at: the longest gap among them is the interval (cron gaps vary)."""


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def max_age_problem(spec: DatabaseBackupSpec, now: datetime) -> str | None:
    """Why spec.keep.maxAge cannot work with spec.schedule; None when it can (or is unset)."""
    if spec.schedule is None or spec.keep is None or spec.keep.max_age is None:
        return None
    max_age = parse_duration(spec.keep.max_age)
    try:
        starts = cron.cron_starts(spec.schedule, cron.zone(spec.time_zone), now)
        runs = [next(starts) for _ in range(SAMPLES)]
    except (ValueError, KeyError, StopIteration):
        return None  # a schedule without runs is reported as such, by the schedule's pass
    interval = max(b - a for a, b in pairwise(runs))
    if max_age < interval:
        return (
            f"keep.maxAge {spec.keep.max_age} is shorter than the time between runs of "
            f"{spec.schedule!r} (up to {_human(interval)}): every backup would be deleted "
            f"before the next one exists; set maxAge to at least {_human(interval)}"
        )
    return None
