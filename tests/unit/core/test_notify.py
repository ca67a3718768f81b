"""The pure side of notifications: moments, selection, records, retries and words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core import notify
from runbook_operator.core.notify import (
    DeliveryState,
    Moment,
    Notifications,
    NotifierSpec,
    NotifyRef,
    Seen,
)

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
TERMINAL = {"Completed", "Failed", "Refused"}


def status(phase: str | None = None, **conditions: tuple[str, str]) -> dict[str, Any]:
    return {
        "phase": phase,
        "conditions": [
            {"type": t, "status": s, "reason": r, "message": f"{t} says {r}"}
            for t, (s, r) in conditions.items()
        ],
    }


def slack(default: bool = False, on: list[str] | None = None) -> NotifierSpec:
    raw: dict[str, Any] = {"slack": {"webhookUrl": {"name": "s", "key": "url"}}}
    raw["default"] = default
    if on is not None:
        raw["moments"] = on
    return NotifierSpec.model_validate(raw)


def page() -> NotifierSpec:
    return NotifierSpec.model_validate(
        {"statuspage": {"pageId": "abc123", "apiKey": {"name": "sp", "key": "key"}}}
    )


SEEN = Seen(Moment.FAILED, "Failed", "RolloutFailed", "backend did not finish")


# --- moment_of ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (status("Blocked", Ready=("False", "BackupTooOld")), Moment.BLOCKED),
        (status("Blocked", Stalled=("True", "NotApproved")), Moment.BLOCKED),
        (status("Failed", Stalled=("True", "RolloutFailed")), Moment.FAILED),
        (status("Active", Stalled=("True", "InvalidSpec")), Moment.FAILED),
        (status("Completed", Ready=("True", "Completed")), Moment.COMPLETED),
        (status("Failed", Ready=("False", "Unreachable")), Moment.FAILED),
        (status("Running", Reconciling=("True", "Dumping")), Moment.STARTED),
        (status("Pending", Ready=("False", "Scheduled")), None),
        (status(None), None),
        ({}, None),
    ],
)
def test_the_moment_a_status_shows(raw: dict[str, Any], expected: Moment | None) -> None:
    seen = notify.moment_of(raw, TERMINAL)
    assert (seen.moment if seen else None) == expected


def test_blocked_says_the_stalled_reason_when_there_is_one() -> None:
    raw = status("Blocked", Stalled=("True", "NotApproved"), Ready=("False", "NotApproved"))
    seen = notify.moment_of(raw, TERMINAL)
    assert seen is not None and seen.reason == "NotApproved"
    assert seen.message == "Stalled says NotApproved"


def test_failed_says_why() -> None:
    seen = notify.moment_of(status("Failed", Stalled=("True", "RolloutFailed")), TERMINAL)
    assert seen == Seen(Moment.FAILED, "Failed", "RolloutFailed", "Stalled says RolloutFailed")


# --- who is told ----------------------------------------------------------------


def test_an_operation_naming_none_goes_to_the_namespace_defaults() -> None:
    chosen, missing = notify.selected(None, {"ops": slack(default=True), "other": slack()})
    assert list(chosen) == ["ops"] and missing == []


def test_named_notifiers_replace_the_defaults_and_missing_ones_are_reported() -> None:
    ref = NotifyRef(notifiers=["other", "gone"])
    chosen, missing = notify.selected(ref, {"ops": slack(default=True), "other": slack()})
    assert list(chosen) == ["other"] and missing == ["gone"]


def test_disabled_tells_nobody() -> None:
    chosen, _ = notify.selected(NotifyRef(disabled=True), {"ops": slack(default=True)})
    assert chosen == {}


def test_the_operation_can_narrow_the_moments() -> None:
    ref = NotifyRef(moments=[Moment.FAILED])
    assert notify.wanted(ref, Moment.FAILED) and not notify.wanted(ref, Moment.STARTED)
    assert notify.wanted(None, Moment.STARTED)


def test_default_moments_all_four_and_statuspage_skips_started() -> None:
    assert slack().sends() == set(notify.DEFAULT_MOMENTS)
    assert Moment.STARTED not in page().sends()
    assert slack(on=["failed"]).sends() == {Moment.FAILED}


def test_a_notifier_that_does_not_want_the_moment_gets_no_delivery() -> None:
    started = Seen(Moment.STARTED, "Running", "Dumping", "")
    record = notify.begin(Notifications(), started, "text", {"sp": page(), "s": slack()}, NOW)
    assert [d.notifier for d in record.deliveries] == ["s"]


# --- the record ---------------------------------------------------------------------


def test_begin_records_a_pending_delivery_per_notifier_before_anything_is_sent() -> None:
    record = notify.begin(Notifications(), SEEN, "text", {"b": slack(), "a": slack()}, NOW)
    assert record.moment == Moment.FAILED and record.phase == "Failed"
    assert [(d.notifier, d.state) for d in record.deliveries] == [
        ("a", DeliveryState.PENDING),
        ("b", DeliveryState.PENDING),
    ]
    assert [d.notifier for d in notify.due(record, NOW)] == ["a", "b"]


def test_a_sent_delivery_is_not_due_again() -> None:
    record = notify.begin(Notifications(), SEEN, "text", {"a": slack()}, NOW)
    record = notify.after_attempt(record, "a", None, NOW)
    assert record.deliveries[0].state == DeliveryState.SENT
    assert record.deliveries[0].sent_at == NOW and record.deliveries[0].attempts == 1
    assert notify.due(record, NOW + timedelta(hours=1)) == []
    assert notify.next_due(record, NOW) is None


def test_a_failed_attempt_is_retried_later_with_growing_delays() -> None:
    record = notify.begin(Notifications(), SEEN, "text", {"a": slack()}, NOW)
    record = notify.after_attempt(record, "a", "Slack answered HTTP 500", NOW)
    first = record.deliveries[0]
    assert first.state == DeliveryState.PENDING and first.error == "Slack answered HTTP 500"
    assert notify.due(record, NOW) == []
    assert notify.next_due(record, NOW) == notify.BACKOFF[0]
    record = notify.after_attempt(record, "a", "again", NOW)
    assert record.deliveries[0].next_attempt == NOW + timedelta(seconds=notify.BACKOFF[1])


def test_after_its_attempts_a_delivery_is_failed_and_the_condition_says_so() -> None:
    spec = slack().model_copy(update={"attempts": 3})
    record = notify.begin(Notifications(), SEEN, "text", {"a": spec}, NOW)
    for _ in range(3):
        record = notify.after_attempt(record, "a", "Slack answered HTTP 500", NOW)
    assert record.deliveries[0].state == DeliveryState.FAILED
    assert record.deliveries[0].attempts == 3
    ok, reason, message = notify.summary(record)
    assert (ok, reason) == (False, "DeliveryFailed")
    assert "a (Slack answered HTTP 500)" in message


def test_summary_while_sending_and_once_delivered() -> None:
    record = notify.begin(Notifications(), SEEN, "text", {"a": slack()}, NOW)
    assert notify.summary(record)[:2] == (False, "Sending")
    record = notify.after_attempt(record, "a", None, NOW)
    assert notify.summary(record) == (True, "Delivered", "told a of failed")


def test_incidents_are_kept_until_resolved() -> None:
    record = notify.begin(Notifications(), SEEN, "text", {"sp": page()}, NOW)
    record = notify.after_attempt(record, "sp", None, NOW, incident="inc1")
    assert notify.incident_of(record, "sp") == "inc1"
    done = Seen(Moment.COMPLETED, "Completed", "Completed", "")
    record = notify.begin(record, done, "ok", {"sp": page()}, NOW)
    assert notify.incident_of(record, "sp") == "inc1"  # a new moment keeps it open
    record = notify.after_attempt(record, "sp", None, NOW, incident="inc1", resolved=True)
    assert notify.incident_of(record, "sp") is None


def test_a_failed_attempt_keeps_the_open_incident() -> None:
    record = Notifications(incidents=[notify.Incident(notifier="sp", id="inc1")])
    record = notify.begin(record, SEEN, "text", {"sp": page()}, NOW)
    record = notify.after_attempt(record, "sp", "Statuspage answered HTTP 503", NOW)
    assert notify.incident_of(record, "sp") == "inc1"


def test_the_record_round_trips_through_the_wire() -> None:
    record = notify.begin(Notifications(), SEEN, "text", {"a": slack()}, NOW)
    assert Notifications.model_validate(record.wire()) == record


# --- words ----------------------------------------------------------------------------


def test_words_say_what_to_what_why_and_who_in_kubectl_terms() -> None:
    text = notify.words(
        "Rollback", "mail-score", "undo", SEEN, why="P1: 5xx after 1.4.3", asked_by="alice"
    )
    assert text.splitlines() == [
        "Rollback mail-score/undo FAILED (Failed, RolloutFailed).",
        "backend did not finish",
        "Why: P1: 5xx after 1.4.3",
        "Asked by: alice",
        "kubectl describe rollback undo -n mail-score",
    ]


def test_words_leave_out_what_is_not_known() -> None:
    seen = Seen(Moment.BLOCKED, "Blocked", "NotAnnounced", "")
    text = notify.words("MaintenanceWindow", "ns", "mw", seen, why=None, asked_by=None)
    assert text.splitlines() == [
        "MaintenanceWindow ns/mw is BLOCKED (Blocked, NotAnnounced).",
        "kubectl describe maintenancewindow mw -n ns",
    ]


# --- the spec -----------------------------------------------------------------------


def test_a_notifier_spec_reads_camel_case_from_the_wire() -> None:
    spec = NotifierSpec.model_validate(
        {
            "statuspage": {
                "pageId": "p1",
                "apiKey": {"name": "sp", "key": "key"},
                "componentIds": ["c1"],
            },
            "timeoutSeconds": 3,
        }
    )
    assert spec.statuspage is not None and spec.statuspage.component_ids == ["c1"]
    assert spec.statuspage.api_base == "https://api.statuspage.io/v1"
    assert spec.timeout_seconds == 3 and spec.attempts == 5


def test_a_health_report_failing_is_failed_and_passing_again_is_completed() -> None:
    from runbook_operator.kinds.healthreport.api import HEALTH_REPORT

    assert HEALTH_REPORT.moment is not None
    failing = status("Failing", Stalled=("True", "CheckFailed"), Ready=("False", "CheckFailed"))
    passing = status("Passing", Ready=("True", "AllPassed"))
    assert (HEALTH_REPORT.moment(failing) or SEEN).moment == Moment.FAILED
    assert (HEALTH_REPORT.moment(passing) or SEEN).moment == Moment.COMPLETED
