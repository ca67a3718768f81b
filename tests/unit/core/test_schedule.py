"""The one cron engine: forward and backward, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime

from runbook_operator.core.schedule import instant, next_start, previous_start, zone

BERLIN = zone("Europe/Berlin")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_previous_includes_a_start_exactly_now() -> None:
    now = utc("2026-03-01T02:00:00")
    assert previous_start("0 2 * * *", zone(None), now) == now
    assert next_start("0 2 * * *", zone(None), now) == utc("2026-03-02T02:00:00")


def test_a_skipped_wall_time_starts_after_the_jump_both_ways() -> None:
    # 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    after = previous_start("30 2 * * *", BERLIN, utc("2026-03-29T12:00:00"))
    assert instant(after) == "2026-03-29T01:30:00Z"  # 03:30 CEST
    assert next_start("30 2 * * *", BERLIN, utc("2026-03-28T12:00:00")) == after


def test_a_repeated_wall_time_starts_once() -> None:
    # 2026-10-25: Berlin goes back from 03:00 CEST to 02:00 CET; 02:30 happens twice.
    first = next_start("30 2 * * *", BERLIN, utc("2026-10-24T12:00:00"))
    assert instant(first) == "2026-10-25T00:30:00Z"  # the first 02:30 (CEST)
    assert next_start("30 2 * * *", BERLIN, first) == utc("2026-10-26T01:30:00")
    assert previous_start("30 2 * * *", BERLIN, utc("2026-10-25T12:00:00")) == first
