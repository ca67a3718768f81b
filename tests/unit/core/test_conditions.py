"""kstatus rules of the condition helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runbook_operator.core import conditions as c
from runbook_operator.core.conditions import ConditionStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def _types(conds: list[c.Condition]) -> dict[str, str]:
    return {x.type: x.status.value for x in conds}


def test_progressing_sets_reconciling_and_clears_stalled() -> None:
    conds = c.stalled([], "Bad", "bad input", generation=1, now=T0)
    conds = c.progressing(conds, "Scaling", "scaling", generation=2, now=T1)
    assert _types(conds) == {"Ready": "False", "Reconciling": "True"}
    assert all(x.observed_generation == 2 for x in conds)


def test_ready_clears_reconciling_and_stalled() -> None:
    conds = c.progressing([], "Working", "w", generation=1, now=T0)
    conds = c.ready(conds, "Done", "all done", generation=1, now=T1)
    assert _types(conds) == {"Ready": "True"}
    assert c.is_true(conds, c.READY)


def test_stalled_means_not_ready_and_not_reconciling() -> None:
    conds = c.progressing([], "Working", "w", generation=1, now=T0)
    conds = c.stalled(conds, "TargetMissing", "Deployment x not found", generation=1, now=T1)
    assert _types(conds) == {"Ready": "False", "Stalled": "True"}
    stalled = c.find(conds, c.STALLED)
    assert stalled is not None and stalled.message == "Deployment x not found"


def test_waiting_is_neither_reconciling_nor_stalled() -> None:
    conds = c.progressing([], "Working", "w", generation=1, now=T0)
    conds = c.waiting(conds, "Scheduled", "starts at 02:00", generation=1, now=T1)
    assert _types(conds) == {"Ready": "False"}


def test_transition_time_kept_while_status_unchanged() -> None:
    conds = c.set_condition([], "Ready", False, "A", "a", generation=1, now=T0)
    conds = c.set_condition(conds, "Ready", False, "B", "b", generation=1, now=T1)
    ready = c.find(conds, "Ready")
    assert ready is not None
    assert ready.last_transition_time == T0 and ready.reason == "B"
    conds = c.set_condition(conds, "Ready", True, "C", "c", generation=1, now=T1)
    ready = c.find(conds, "Ready")
    assert ready is not None and ready.last_transition_time == T1


def test_other_conditions_are_kept_in_order() -> None:
    conds = c.set_condition([], "NoticeGiven", True, "Ok", "", generation=1, now=T0)
    conds = c.ready(conds, "Done", "", generation=1, now=T0)
    assert [x.type for x in conds] == ["NoticeGiven", "Ready"]


def test_unknown_status_and_wire_format() -> None:
    conds = c.set_condition(
        [], "Verified", ConditionStatus.UNKNOWN, "Pending", "", generation=None, now=T0
    )
    wire = c.to_wire(conds)
    assert wire == [
        {
            "type": "Verified",
            "status": "Unknown",
            "reason": "Pending",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
