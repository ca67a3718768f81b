"""Stale holds: an operation that is gone or finished holds nothing."""

from __future__ import annotations

import pytest

from runbook_operator.logic.holds import hold_is_stale, parse_holder


def test_parse_holder_knows_our_kinds() -> None:
    assert parse_holder("EmergencyScale/black-friday") == ("emergencyscales", "black-friday")
    assert parse_holder("MaintenanceWindow/db") == ("maintenancewindows", "db")
    assert parse_holder("Rollback/undo") == ("rollbacks", "undo")


@pytest.mark.parametrize("holder", ["", "Deployment/x", "EmergencyScale/", "someone-else"])
def test_parse_holder_refuses_what_is_not_ours(holder: str) -> None:
    assert parse_holder(holder) is None


def test_missing_holder_is_stale() -> None:
    assert hold_is_stale(None)


@pytest.mark.parametrize("phase", ["Completed", "Failed", "Cancelled", "Refused"])
def test_finished_holder_is_stale(phase: str) -> None:
    assert hold_is_stale({"metadata": {}, "status": {"phase": phase}})


@pytest.mark.parametrize("phase", [None, "Pending", "Active", "Reverting", "RollingBack"])
def test_working_holder_is_not_stale(phase: str | None) -> None:
    assert not hold_is_stale({"metadata": {}, "status": {"phase": phase}})


def test_holder_being_deleted_still_holds() -> None:
    obj = {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Failed"}}
    assert not hold_is_stale(obj)
