"""Occurrences of MaintenanceWindows: one-off, cron in a time zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise

import pytest

from runbook_operator.core.schedule import cron_starts, local_time, to_instant, zone
from runbook_operator.kinds.maintenancewindow.api import MaintenanceWindowSpec
from runbook_operator.kinds.maintenancewindow.logic.occurrences import (
    first_occurrence,
    next_occurrence,
)

BERLIN = zone("Europe/Berlin")
NEW_YORK = zone("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def spec(**fields: object) -> MaintenanceWindowSpec:
    return MaintenanceWindowSpec.model_validate({"duration": "2h", **fields})


def test_one_off_occurrence_is_start_plus_duration() -> None:
    occ = next_occurrence(spec(start="2025-03-02T02:00:00+01:00", duration="90m"), utc(2025, 1, 1))
    assert occ.start == utc(2025, 3, 2, 1, 0)
    assert occ.end == utc(2025, 3, 2, 2, 30)


def test_cron_in_utc_by_default() -> None:
    occ = next_occurrence(spec(schedule="0 2 * * 0"), utc(2025, 3, 3, 12))  # a Monday
    assert occ.start == utc(2025, 3, 9, 2, 0)  # the next Sunday 02:00 UTC
    assert occ.end == utc(2025, 3, 9, 4, 0)


def test_cron_in_a_time_zone_uses_its_offset_in_winter_and_summer() -> None:
    s = spec(schedule="0 2 * * 0", timeZone="Europe/Berlin")
    assert next_occurrence(s, utc(2025, 1, 6)).start == utc(2025, 1, 12, 1, 0)  # CET, +1
    assert next_occurrence(s, utc(2025, 7, 7)).start == utc(2025, 7, 13, 0, 0)  # CEST, +2


def test_spring_forward_moves_a_skipped_wall_time_forward_by_the_gap() -> None:
    # 2025-03-30 02:00 CET the clocks jump to 03:00 CEST: 02:30 does not exist that day.
    starts = list(islice(cron_starts("30 2 * * *", BERLIN, utc(2025, 3, 28, 12)), 4))
    assert starts == [
        utc(2025, 3, 29, 1, 30),  # 02:30 CET
        utc(2025, 3, 30, 1, 30),  # would-be 02:30 CET = 03:30 CEST
        utc(2025, 3, 31, 0, 30),  # 02:30 CEST
        utc(2025, 4, 1, 0, 30),
    ]
    assert local_time(starts[1], BERLIN) == "2025-03-30 03:30 CEST"


def test_fall_back_starts_a_repeated_wall_time_once_at_the_first() -> None:
    # 2025-10-26 03:00 CEST the clocks go back to 02:00 CET: 02:30 happens twice.
    starts = list(islice(cron_starts("30 2 * * *", BERLIN, utc(2025, 10, 25, 12)), 3))
    assert starts == [
        utc(2025, 10, 26, 0, 30),  # the first 02:30, still CEST
        utc(2025, 10, 27, 1, 30),  # 02:30 CET
        utc(2025, 10, 28, 1, 30),
    ]


def test_hourly_schedule_has_no_duplicate_or_missing_instants_across_dst() -> None:
    spring = list(islice(cron_starts("0 * * * *", BERLIN, utc(2025, 3, 29, 23)), 5))
    # 00:00 and 01:00 CET, then the skipped 02:00 (= 03:00 CEST) once, then 04:00 CEST.
    assert spring == [utc(2025, 3, 29, 23), *(utc(2025, 3, 30, h) for h in range(4))]
    autumn = list(islice(cron_starts("0 * * * *", BERLIN, utc(2025, 10, 25, 23)), 4))
    # 01:00, 02:00 CEST, then 03:00 CET: the second 02:00 (CET) is not a second start.
    assert autumn == [
        utc(2025, 10, 25, 23),
        utc(2025, 10, 26, 0),
        utc(2025, 10, 26, 2),
        utc(2025, 10, 26, 3),
    ]


def test_duration_is_elapsed_time_across_the_change() -> None:
    s = spec(schedule="0 1 * * *", timeZone="Europe/Berlin", duration="3h")
    occ = next_occurrence(s, utc(2025, 3, 29, 12))
    assert occ.start == utc(2025, 3, 30, 0, 0)  # 01:00 CET
    assert occ.end == utc(2025, 3, 30, 3, 0)  # three hours later: 05:00 CEST
    assert local_time(occ.end, BERLIN) == "2025-03-30 05:00 CEST"


def test_new_york_dst_dates_differ_from_europe() -> None:
    s = spec(schedule="30 2 * * *", timeZone="America/New_York")
    # 2025-03-09 02:00 EST -> 03:00 EDT: 02:30 is moved to 03:30 EDT = 07:30 UTC.
    assert next_occurrence(s, utc(2025, 3, 9, 0)).start == utc(2025, 3, 9, 7, 30)
    assert next_occurrence(s, utc(2025, 3, 10, 0)).start == utc(2025, 3, 10, 6, 30)  # EDT


def test_to_instant_fold_zero() -> None:
    assert to_instant(datetime(2025, 3, 30, 2, 30), BERLIN) == utc(2025, 3, 30, 1, 30)
    assert to_instant(datetime(2025, 10, 26, 2, 30), BERLIN) == utc(2025, 10, 26, 0, 30)


def test_next_occurrence_at_exactly_the_anchor_counts() -> None:
    s = spec(schedule="0 2 * * *")
    assert next_occurrence(s, utc(2025, 5, 1, 2, 0)).start == utc(2025, 5, 1, 2, 0)
    assert next_occurrence(s, utc(2025, 5, 1, 2, 0, 1)).start == utc(2025, 5, 2, 2, 0)


def test_first_occurrence_of_recurring_window_respects_notice() -> None:
    s = spec(schedule="0 2 * * *", policy={"minimumNotice": "24h"})
    created = utc(2025, 5, 1, 12)
    # The 2025-05-02 02:00 start is only 14h away: skipped, not blocked.
    assert first_occurrence(s, created, created).start == utc(2025, 5, 3, 2, 0)


def test_first_occurrence_may_be_one_that_just_began_when_the_operator_is_late() -> None:
    s = spec(schedule="0 2 * * *", policy={"minimumNotice": "1h"}, startingDeadline="10m")
    created = utc(2025, 5, 1, 0)
    assert first_occurrence(s, created, utc(2025, 5, 1, 2, 5)).start == utc(2025, 5, 1, 2, 0)
    assert first_occurrence(s, created, utc(2025, 5, 1, 2, 15)).start == utc(2025, 5, 2, 2, 0)


def test_one_off_first_occurrence_ignores_the_anchor() -> None:
    s = spec(start="2025-05-01T02:00:00Z")
    assert first_occurrence(s, utc(2025, 5, 1, 1), utc(2025, 5, 1, 1)).start == utc(2025, 5, 1, 2)


@pytest.mark.parametrize("days", [1, 7, 31])
def test_weekly_schedule_steps_a_week(days: int) -> None:
    anchor = utc(2025, 1, 1) + timedelta(days=days)
    starts = list(islice(cron_starts("0 3 * * 1", NEW_YORK, anchor), 3))
    assert [b - a for a, b in pairwise(starts)] == [timedelta(days=7)] * 2
