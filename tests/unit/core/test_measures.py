"""core.measures: the domain metrics read off statuses, and the adapter that shows them."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from runbook_operator.adapters.metrics import Domain
from runbook_operator.core import measures
from runbook_operator.core.measures import Sample, counts, gauges

Obj = dict[str, Any]


def obj(
    name: str = "x",
    *,
    spec: Obj | None = None,
    status: Obj | None = None,
    labels: dict[str, str] | None = None,
) -> Obj:
    meta: Obj = {"namespace": "ns", "name": name}
    if labels:
        meta["labels"] = labels
    return {"metadata": meta, "spec": spec or {}, "status": status or {}}


def by_name(samples: list[Sample]) -> dict[str, list[tuple[tuple[str, ...], float]]]:
    out: dict[str, list[tuple[tuple[str, ...], float]]] = {}
    for s in samples:
        out.setdefault(s.metric.name, []).append((s.labels, s.value))
    return out


def stalled(reason: str) -> list[Obj]:
    return [{"type": "Stalled", "status": "True", "reason": reason, "message": "m"}]


# --- gauges ---------------------------------------------------------------------------------


def test_phase_gauge_is_the_current_phase_only() -> None:
    found = by_name(gauges("Restart", obj(status={"phase": "Restarting"})))
    assert found == {"runbook_operation_phase": [(("Restart", "ns", "x", "Restarting"), 1.0)]}


def test_rollback_counters_start_at_zero_for_every_result() -> None:
    found = by_name(gauges("Rollback", obj(status={"phase": "Pending"})))
    assert found["runbook_rollback_total"] == [
        (("ns", "x", "Completed"), 0.0),
        (("ns", "x", "Failed"), 0.0),
        (("ns", "x", "Refused"), 0.0),
    ]


def test_no_phase_no_series() -> None:
    assert gauges("Restart", obj()) == []


def test_window_and_emergency_active() -> None:
    active = by_name(gauges("MaintenanceWindow", obj(status={"phase": "Active"})))
    assert active["runbook_maintenance_window_active"] == [(("ns", "x"), 1.0)]
    pending = by_name(gauges("MaintenanceWindow", obj(status={"phase": "Pending"})))
    assert pending["runbook_maintenance_window_active"] == [(("ns", "x"), 0.0)]
    scaled = by_name(gauges("EmergencyScale", obj(status={"phase": "Active"})))
    assert scaled["runbook_emergency_scale_active"] == [(("ns", "x"), 1.0)]
    waiting = by_name(gauges("EmergencyScale", obj(status={"phase": "Waiting"})))
    assert waiting["runbook_emergency_scale_active"] == [(("ns", "x"), 0.0)]


def test_completed_one_shot_backup() -> None:
    status = {
        "phase": "Completed",
        "startedAt": "2026-01-01T02:00:00Z",
        "completedAt": "2026-01-01T02:01:30Z",
        "sizeBytes": 4096,
    }
    found = by_name(gauges("DatabaseBackup", obj(status=status)))
    assert found["runbook_backup_last_success_timestamp_seconds"] == [(("ns", "x"), 1767232890.0)]
    assert found["runbook_backup_duration_seconds"] == [(("ns", "x"), 90.0)]
    assert found["runbook_backup_size_bytes"] == [(("ns", "x"), 4096.0)]
    assert found["runbook_backup_failures_total"] == [(("ns", "x"), 0.0)]


def test_running_backup_has_no_success_yet() -> None:
    found = by_name(gauges("DatabaseBackup", obj(status={"phase": "Running"})))
    assert "runbook_backup_last_success_timestamp_seconds" not in found
    assert "runbook_backup_size_bytes" not in found


def test_a_scheduled_run_counts_failures_under_its_schedule_not_itself() -> None:
    run = obj("nightly-1", status={"phase": "Pending"}, labels={measures.SCHEDULE_LABEL: "nightly"})
    assert "runbook_backup_failures_total" not in by_name(gauges("DatabaseBackup", run))


def test_schedule_max_age_is_its_interval_plus_starting_deadline() -> None:
    spec = {"schedule": "0 2 * * *", "startingDeadline": "30m"}
    status = {
        "phase": "Scheduled",
        "lastScheduleTime": "2026-01-01T02:00:00Z",
        "nextScheduleTime": "2026-01-02T02:00:00Z",
        "lastSuccessfulTime": "2026-01-01T02:05:00Z",
    }
    found = by_name(gauges("DatabaseBackup", obj(spec=spec, status=status)))
    assert found["runbook_backup_max_age_seconds"] == [(("ns", "x"), 24 * 3600 + 1800.0)]
    assert found["runbook_backup_last_success_timestamp_seconds"] == [(("ns", "x"), 1767233100.0)]
    assert found["runbook_backup_failures_total"] == [(("ns", "x"), 0.0)]


def test_schedule_default_deadline_and_no_max_age_when_suspended_or_before_its_first_slot() -> None:
    status = {
        "lastScheduleTime": "2026-01-01T02:00:00Z",
        "nextScheduleTime": "2026-01-01T03:00:00Z",
    }
    found = by_name(gauges("DatabaseBackup", obj(spec={"schedule": "0 * * * *"}, status=status)))
    assert found["runbook_backup_max_age_seconds"] == [(("ns", "x"), 7200.0)]
    suspended = obj(spec={"schedule": "0 * * * *", "suspend": True}, status=status)
    assert "runbook_backup_max_age_seconds" not in by_name(gauges("DatabaseBackup", suspended))
    first = obj(spec={"schedule": "0 * * * *"}, status={"nextScheduleTime": "2026-01-01T03:00:00Z"})
    assert "runbook_backup_max_age_seconds" not in by_name(gauges("DatabaseBackup", first))


# --- counts ---------------------------------------------------------------------------------


def test_a_transition_counts_once_and_a_pass_that_wrote_nothing_counts_nothing() -> None:
    failed = {"phase": "Failed"}
    assert by_name(counts("DatabaseBackup", obj(), [{"phase": "Running"}, failed])) == {
        "runbook_backup_failures_total": [(("ns", "x"), 1.0)]
    }
    assert counts("DatabaseBackup", obj(), [failed]) == []  # the same pass, run again
    assert counts("DatabaseBackup", obj(), [failed, {**failed, "attempt": 2}]) == []


def test_scheduled_run_failure_counts_for_the_schedule() -> None:
    run = obj("nightly-1", labels={measures.SCHEDULE_LABEL: "nightly"})
    [sample] = counts("DatabaseBackup", run, [None, {"phase": "Running"}, {"phase": "Failed"}])
    assert sample.labels == ("ns", "nightly")
    assert sample.owner == ("DatabaseBackup", "ns", "nightly")


def test_rollback_results() -> None:
    went = [{"phase": "Pending"}, {"phase": "RollingBack"}, {"phase": "Completed"}]
    assert by_name(counts("Rollback", obj(), went)) == {
        "runbook_rollback_total": [(("ns", "x", "Completed"), 1.0)]
    }
    assert by_name(counts("Rollback", obj(), [None, {"phase": "Refused"}])) == {
        "runbook_rollback_total": [(("ns", "x", "Refused"), 1.0)]
    }
    assert counts("Rollback", obj(), [None, {"phase": "Armed"}]) == []


def test_a_block_counts_the_rule_that_blocked() -> None:
    blocked = {"phase": "Blocked", "conditions": stalled("NoticeTooShort")}
    found = by_name(counts("MaintenanceWindow", obj(), [{"phase": "Pending"}, blocked]))
    assert found == {
        "runbook_policy_block_total": [(("MaintenanceWindow", "ns", "x", "NoticeTooShort"), 1.0)]
    }
    assert counts("MaintenanceWindow", obj(), [blocked, blocked]) == []


# --- the adapter ----------------------------------------------------------------------------


def exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def domain() -> tuple[Domain, CollectorRegistry]:
    registry = CollectorRegistry()
    shown = Domain(registry)
    shown.declare(measures.METRICS)
    shown.declare(measures.METRICS)  # twice is harmless
    return shown, registry


def test_every_metric_is_listed_before_any_object() -> None:
    _, registry = domain()
    text = exposition(registry)
    for metric in measures.METRICS:
        assert f"# TYPE {metric.name} {metric.type}" in text


def test_a_left_phase_disappears_and_a_deleted_object_leaves_nothing() -> None:
    shown, registry = domain()
    owner = ("Rollback", "ns", "x")
    shown.show(owner, gauges("Rollback", obj(status={"phase": "RollingBack"})))
    assert 'phase="RollingBack"' in exposition(registry)
    shown.show(owner, gauges("Rollback", obj(status={"phase": "Completed"})))
    shown.count(counts("Rollback", obj(), [{"phase": "RollingBack"}, {"phase": "Completed"}]))
    text = exposition(registry)
    assert 'phase="RollingBack"' not in text and 'phase="Completed"' in text
    assert 'runbook_rollback_total{name="x",namespace="ns",result="Completed"} 1.0' in text
    shown.forget(owner)
    text = exposition(registry)
    assert 'name="x"' not in text


def test_a_run_deleted_by_retention_leaves_its_schedules_counter() -> None:
    shown, registry = domain()
    run = obj("nightly-1", status={"phase": "Failed"}, labels={measures.SCHEDULE_LABEL: "nightly"})
    schedule = ("DatabaseBackup", "ns", "nightly")
    shown.show(schedule, gauges("DatabaseBackup", obj("nightly", spec={"schedule": "0 2 * * *"})))
    shown.show(("DatabaseBackup", "ns", "nightly-1"), gauges("DatabaseBackup", run))
    shown.count(counts("DatabaseBackup", run, [{"phase": "Running"}, {"phase": "Failed"}]))
    shown.forget(("DatabaseBackup", "ns", "nightly-1"))
    text = exposition(registry)
    assert 'runbook_backup_failures_total{name="nightly",namespace="ns"} 1.0' in text
    assert "nightly-1" not in text
    shown.forget(schedule)
    assert "nightly" not in exposition(registry)
