"""The restart stamp always changes the template, even twice in one second."""

from __future__ import annotations

from datetime import UTC, datetime

from runbook_operator.kinds.restart.logic import fresh_stamp

NOW = datetime(2026, 12, 4, 4, 23, 32, 700000, tzinfo=UTC)


def test_the_stamp_is_now_to_the_second() -> None:
    assert fresh_stamp(NOW, [None, "2026-12-04T04:00:00Z"]) == "2026-12-04T04:23:32Z"


def test_a_restart_in_the_same_second_as_the_last_one_takes_the_next_second() -> None:
    assert fresh_stamp(NOW, ["2026-12-04T04:23:32Z"]) == "2026-12-04T04:23:33Z"


def test_every_target_gets_a_stamp_it_does_not_have() -> None:
    previous = ["2026-12-04T04:23:32Z", "2026-12-04T04:23:33Z", None]
    assert fresh_stamp(NOW, previous) == "2026-12-04T04:23:34Z"
