"""keep.maxAge shorter than the time between runs is refused, saying both durations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runbook_operator.kinds.databasebackup.api import DatabaseBackupSpec
from runbook_operator.kinds.databasebackup.logic.retention import max_age_problem

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PG = {"host": "pg", "database": "db", "credentials": {"secretName": "pg"}}


def spec(**extra: Any) -> DatabaseBackupSpec:
    return DatabaseBackupSpec.model_validate({"postgres": PG, **extra})


def test_max_age_under_the_interval_is_a_problem() -> None:
    problem = max_age_problem(spec(schedule="0 2 * * *", keep={"maxAge": "12h"}), NOW)
    assert problem is not None
    assert "keep.maxAge 12h is shorter than the time between runs of '0 2 * * *'" in problem
    assert "(up to 24h)" in problem and "set maxAge to at least 24h" in problem


def test_the_longest_gap_counts() -> None:
    weekdays = spec(schedule="0 2 * * 1-5", keep={"maxAge": "48h"})
    problem = max_age_problem(weekdays, NOW)
    assert problem is not None and "up to 72h" in problem
    assert max_age_problem(spec(schedule="0 2 * * 1-5", keep={"maxAge": "72h"}), NOW) is None


def test_no_problem_without_max_age_or_schedule() -> None:
    assert max_age_problem(spec(schedule="*/5 * * * *", keep={"maxAge": "5m"}), NOW) is None
    assert max_age_problem(spec(schedule="0 2 * * *", keep={"last": 3}), NOW) is None
    assert max_age_problem(spec(), NOW) is None
