"""HealthReport's pure decisions: each check's verdict, the report, its events, its timing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core.events import NORMAL, WARNING
from runbook_operator.kinds.healthreport import logic
from runbook_operator.kinds.healthreport.api import (
    CheckResult,
    CheckSpec,
    HealthReportSpec,
    HealthReportStatus,
)

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
PG = {"host": "postgres", "database": "mail_score", "credentials": {"secretName": "pg"}}


def check(**body: Any) -> CheckSpec:
    return CheckSpec.model_validate({"name": "c", **body})


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- workloads -----------------------------------------------------------------


def deployment(replicas: int, ready: int) -> dict[str, Any]:
    return {
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "backend"}}},
        "status": {"readyReplicas": ready} if ready else {},
    }


def pod(name: str, phase: str = "Running", restarted: datetime | None = None) -> dict[str, Any]:
    containers = []
    if restarted is not None:
        ended = {"terminated": {"finishedAt": stamp(restarted), "exitCode": 1}}
        containers.append({"name": "app", "restartCount": 3, "lastState": ended})
    return {
        "metadata": {"name": name},
        "status": {"phase": phase, "containerStatuses": containers},
    }


def warning(kind: str, name: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "Warning",
        "involvedObject": {"kind": kind, "name": name},
        "lastTimestamp": stamp(at),
    }


def test_the_selector_reads_labels_and_expressions() -> None:
    body = {
        "spec": {
            "selector": {
                "matchLabels": {"app": "backend", "tier": "api"},
                "matchExpressions": [
                    {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            }
        }
    }
    assert logic.selector(body) == "app=backend,tier=api,track in (stable,canary),!legacy"


def test_seen_counts_ready_pods_restarts_and_warnings_within_the_window() -> None:
    window = timedelta(minutes=15)
    pods = [
        pod("backend-1", restarted=NOW - timedelta(minutes=2)),
        pod("backend-2", restarted=NOW - timedelta(hours=2)),
        pod("backend-3", "Pending"),
    ]
    events = [
        warning("Pod", "backend-3", NOW - timedelta(minutes=1)),
        warning("ReplicaSet", "backend-7d9f", NOW - timedelta(minutes=5)),
        warning("Pod", "backend-1", NOW - timedelta(hours=1)),  # too old
        warning("Pod", "frontend-1", NOW),  # another workload's
    ]
    seen = logic.seen("Deployment", "backend", deployment(3, 2), pods, events, window, NOW)
    assert (seen.desired, seen.ready) == (3, 2)
    assert seen.not_running == Counter({"Pending": 1})
    assert (seen.restarts, seen.total_restarts, seen.warnings) == (1, 6, 2)


def test_a_terminating_pod_is_not_counted_as_not_running() -> None:
    going = pod("b-1", "Pending")
    going["metadata"]["deletionTimestamp"] = stamp(NOW)
    seen = logic.seen("Deployment", "b", deployment(1, 1), [going], [], timedelta(1), NOW)
    assert seen.pods_not_running == 0


def test_workloads_all_ready_pass() -> None:
    c = check(workloads={"deployments": ["backend", "frontend"]})
    found = [
        logic.WorkloadSeen("Deployment", "backend", desired=2, ready=2),
        logic.WorkloadSeen("Deployment", "frontend", desired=3, ready=3),
    ]
    result = logic.judge_workloads(c, found, NOW)
    assert result.passed and result.value == "5/5 ready"
    assert result.message.startswith("all ready: backend 2/2 ready")


def test_workloads_fail_with_the_numbers_of_the_bad_one_only() -> None:
    c = check(workloads={"deployments": ["backend", "frontend"]})
    found = [
        logic.WorkloadSeen("Deployment", "backend", desired=2, ready=2),
        logic.WorkloadSeen(
            "Deployment", "frontend", desired=2, ready=1, not_running=Counter({"Pending": 1})
        ),
    ]
    result = logic.judge_workloads(c, found, NOW)
    assert not result.passed and result.value == "3/4 ready"
    assert result.message == "frontend 1/2 ready, 1 pods not running (1 Pending)"
    assert result.measures["podsNotRunning"] == 1


def test_a_missing_workload_fails() -> None:
    c = check(workloads={"statefulSets": ["postgres"]})
    result = logic.judge_workloads(c, [logic.WorkloadSeen("StatefulSet", "postgres", False)], NOW)
    assert not result.passed and result.message == "StatefulSet postgres not found"


def test_restarts_and_warnings_fail_only_with_a_limit() -> None:
    found = [logic.WorkloadSeen("Deployment", "b", desired=1, ready=1, restarts=4, warnings=2)]
    relaxed = logic.judge_workloads(check(workloads={"deployments": ["b"]}), found, NOW)
    assert relaxed.passed and "4 restarts in 15m" in relaxed.message
    strict = check(workloads={"deployments": ["b"], "maxRestarts": 3, "maxWarningEvents": 2})
    result = logic.judge_workloads(strict, found, NOW)
    assert not result.passed and "4 restarts in 15m (at most 3)" in result.message
    assert "Warning events" not in result.message.split(";")[-1]


# --- postgres ------------------------------------------------------------------


def pg_result(**measured: Any) -> CheckResult:
    values: dict[str, Any] = {
        "connections": 10,
        "max_connections": 100,
        "long_queries": 0,
        "longest": None,
        "queries": [],
        "replicas": 0,
        "replication_lag": None,
        "now": NOW,
    }
    values.update(measured)
    extra = values.pop("probe", {})
    return logic.judge_postgres(check(postgres={**PG, **extra}), **values)


def test_postgres_healthy() -> None:
    result = pg_result()
    assert result.passed and result.value == "10/100 connections (10%)"
    assert (
        result.message
        == "mail_score on postgres:5432 answers: 10/100 connections (10%), 0 long queries"
    )
    assert result.threshold == "<= 80%, no query over 30s"


def test_postgres_too_many_connections() -> None:
    result = pg_result(connections=85)
    assert not result.passed and "85/100 connections (85%) is over 80%" in result.message


def test_postgres_long_queries_fail_and_their_text_stays_out() -> None:
    result = pg_result(long_queries=2, longest=42.25, queries=["SELECT pg_sleep(60)"])
    assert not result.passed
    assert "2 queries active longer than 30s (longest 42.2s)" in result.message
    assert result.measures["longQueries"] == 2 and result.measures["longestQuerySeconds"] == 42.2
    assert result.queries == [] and "pg_sleep" not in result.model_dump_json()


def test_postgres_queries_shown_when_asked() -> None:
    result = pg_result(
        long_queries=1, longest=40.0, queries=["SELECT 1"], probe={"showQueries": True}
    )
    assert result.queries == ["SELECT 1"]


def test_replication_lag_reported_and_judged_with_a_limit() -> None:
    reported = pg_result(replicas=1, replication_lag=12.0)
    assert reported.passed and "1 standbys (lag 12.0s)" in reported.message
    judged = pg_result(replicas=1, replication_lag=12.0, probe={"maxReplicationLag": "10s"})
    assert not judged.passed and "replication lag 12.0s is over 10s" in judged.message


# --- redis, http, prometheus ------------------------------------------------------------


def test_redis_memory_against_maxmemory() -> None:
    c = check(redis={"host": "redis", "maxMemoryPercent": 50})
    ok = logic.judge_redis(
        c, used_memory=40, used_memory_human="40B", maxmemory=100, ping_seconds=0.002, now=NOW
    )
    assert ok.passed and ok.value == "40% of maxmemory" and ok.threshold == "<= 50%"
    full = logic.judge_redis(
        c, used_memory=60, used_memory_human="60B", maxmemory=100, ping_seconds=0.002, now=NOW
    )
    assert not full.passed and "(60%) is over 50%" in full.message


def test_redis_without_maxmemory_passes_on_ping() -> None:
    result = logic.judge_redis(
        check(redis={"host": "redis"}),
        used_memory=1 << 20,
        used_memory_human="1.00M",
        maxmemory=0,
        ping_seconds=0.001,
        now=NOW,
    )
    assert result.passed and result.value == "1.00M (no maxmemory)"


@pytest.mark.parametrize(
    ("expected", "status", "latency", "passed"),
    [
        (None, 200, 0.05, True),
        (None, 204, 0.05, True),
        (None, 503, 0.05, False),
        (301, 301, 0.05, True),
        (None, 200, 0.8, False),
    ],
)
def test_http_status_and_latency(
    expected: int | None, status: int, latency: float, passed: bool
) -> None:
    body: dict[str, Any] = {"url": "http://frontend/health", "maxLatency": "500ms"}
    if expected is not None:
        body["expectedStatus"] = expected
    result = logic.judge_http(
        check(http=body), url="http://frontend/health", status=status, seconds=latency, now=NOW
    )
    assert result.passed is passed
    assert result.measures["status"] == status


def test_http_words() -> None:
    c = check(http={"url": "http://frontend/health", "maxLatency": "500ms"})
    result = logic.judge_http(c, url="http://frontend/health", status=503, seconds=0.8, now=NOW)
    assert result.value == "HTTP 503 in 800ms"
    assert result.threshold == "HTTP 2xx within 500ms"
    assert result.message.endswith(": expected HTTP 2xx, slower than 500ms")


@pytest.mark.parametrize(
    ("op", "value", "passed"),
    [("<", 0.01, True), ("<", 0.05, False), ("<=", 0.05, True), (">", 2, True), (">=", 0.5, False)],
)
def test_prometheus_threshold(op: str, value: float, passed: bool) -> None:
    c = check(prometheus={"query": "q", "threshold": 0.05 if op in "<=" else 1, "comparison": op})
    result = logic.judge_prometheus(c, value, NOW)
    assert result.passed is passed and result.value == f"{value:g}"


def test_a_timeout_and_a_failure_say_so() -> None:
    c = check(redis={"host": "redis"})
    assert logic.timed_out(c, 2.0, NOW).message == "timed out after 2s"
    failed = logic.failed(c, "cannot reach Redis at redis:6379/0", NOW)
    assert not failed.passed and failed.value == "error" and failed.type.value == "redis"


# --- the report ------------------------------------------------------------------


def report_spec(**extra: Any) -> HealthReportSpec:
    checks = [{"name": n, "http": {"url": f"http://{n}/"}} for n in ("a", "b", "c")]
    return HealthReportSpec.model_validate({"checks": checks, **extra})


def results(*passed: bool, at: datetime = NOW) -> list[CheckResult]:
    return [
        CheckResult(name=n, type="http", passed=p, at=at, message=f"{n} says {p}")
        for n, p in zip("abc", passed, strict=True)
    ]


def test_all_passing_is_ready_with_one_event() -> None:
    new, events = logic.report(
        report_spec(), HealthReportStatus(), results(True, True, True), generation=1, now=NOW
    )
    assert new.is_ready() and new.summary == "3/3" and new.first_failing is None
    assert new.phase == "Passing" and new.last_run == NOW and new.next_run is None
    assert [(e.type, e.reason) for e in events] == [(NORMAL, "AllPassed")]


def test_a_failing_check_names_the_first_failing_and_warns_once() -> None:
    spec = report_spec(interval="1m")
    first, events = logic.report(
        spec, HealthReportStatus(), results(True, False, False), generation=1, now=NOW
    )
    ready = first.condition("Ready")
    assert ready is not None and ready.status == "False" and ready.reason == "CheckFailed"
    assert ready.message == "check b failed: b says False; 1 more failing (1/3 passed)"
    assert first.first_failing == "b" and first.summary == "1/3"
    assert first.next_run == NOW + timedelta(minutes=1)
    assert [(e.type, e.reason) for e in events] == [(WARNING, "CheckFailed")] * 2
    later = NOW + timedelta(minutes=1)
    again, events = logic.report(
        spec, first, results(True, False, False, at=later), generation=1, now=later
    )
    assert events == [] and not again.is_ready()


def test_a_recovery_is_told_once() -> None:
    spec = report_spec()
    failing, _ = logic.report(
        spec, HealthReportStatus(), results(True, False, True), generation=1, now=NOW
    )
    fixed, events = logic.report(spec, failing, results(True, True, True), generation=2, now=NOW)
    assert fixed.is_ready()
    assert [(e.type, e.reason) for e in events] == [
        (NORMAL, "CheckRecovered"),
        (NORMAL, "AllPassed"),
    ]
    assert events[0].message == "check b passes again: b says True"


def test_due() -> None:
    once = report_spec()
    fresh = HealthReportStatus()
    assert logic.due(once, fresh, 1, NOW) == 0.0
    ran, _ = logic.report(once, fresh, results(True, True, True), generation=1, now=NOW)
    assert logic.due(once, ran, 1, NOW) is None
    assert logic.due(once, ran, 2, NOW) == 0.0  # the spec changed: run again
    every = report_spec(interval="30s")
    ran, _ = logic.report(every, fresh, results(True, True, True), generation=1, now=NOW)
    assert logic.due(every, ran, 1, NOW + timedelta(seconds=10)) == 20.0
    assert logic.due(every, ran, 1, NOW + timedelta(seconds=31)) == 0.0


def test_each_check_has_its_own_timeout() -> None:
    spec = HealthReportSpec.model_validate(
        {
            "timeout": "3s",
            "checks": [
                {"name": "a", "http": {"url": "http://a/"}},
                {"name": "b", "http": {"url": "http://b/"}, "timeout": "2s"},
            ],
        }
    )
    assert [logic.timeout_of(spec, c) for c in spec.checks] == [3.0, 2.0]
