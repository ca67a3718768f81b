"""The draft of a step's status: conditions by state, generation, summary; held news once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from runbook_operator.core.conditions import StatusBase
from runbook_operator.core.draft import HELD, Draft, held

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


class Phase(StrEnum):
    PENDING = "Pending"
    DONE = "Done"


class Status(StatusBase):
    summary: str | None = None


@dataclass
class Summed(Draft[Status]):
    def summed(self, status: Status) -> Status:
        return status.model_copy(update={"summary": f"phase {status.phase}"})


def types(status: StatusBase) -> dict[str, str]:
    return {c.type: c.status for c in status.conditions}


def test_each_state_sets_the_kstatus_conditions() -> None:
    draft = Draft(Status(), 3, NOW)
    assert types(Status(conditions=draft.conditions("progressing", "Working", "w"))) == {
        "Ready": "False",
        "Reconciling": "True",
    }
    assert types(Status(conditions=draft.conditions("stalled", "Refused", "r"))) == {
        "Ready": "False",
        "Stalled": "True",
    }
    assert types(Status(conditions=draft.conditions("ready", "Done", "d"))) == {"Ready": "True"}
    assert types(Status(conditions=draft.conditions("waiting", "Held", "h"))) == {"Ready": "False"}


def test_write_stamps_the_generation_and_sums_up_again() -> None:
    written = Summed(Status(observed_generation=1), 4, NOW).write(phase=Phase.DONE)
    assert (written.phase, written.observed_generation) == ("Done", 4)
    assert written.summary == "phase Done"


def test_an_explicit_generation_is_kept() -> None:
    assert Draft(Status(), 4, NOW).write(observed_generation=2).observed_generation == 2


def test_held_warns_once_for_the_same_words() -> None:
    first, events = held(Draft(Status(), 1, NOW), Phase.PENDING, "web is held by Rollback/x")
    assert first.phase == "Pending" and [e.reason for e in events] == [HELD]
    assert events[0].warning
    again, quiet = held(
        Draft(first, 1, NOW + timedelta(seconds=5)), Phase.PENDING, "web is held by Rollback/x"
    )
    assert quiet == [] and again.conditions == first.conditions
    _, news = held(Draft(again, 1, NOW), Phase.PENDING, "web is held by Restart/y")
    assert [e.message for e in news] == ["web is held by Restart/y"]
