"""HealthReport through the core against the FakeKube and fake probes: parallel checks,
timeouts, events on change only, the next run scheduled."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from runbook_operator.adapters import httpcheck
from runbook_operator.adapters import pghealth as pgh
from runbook_operator.adapters import postgres as pg
from runbook_operator.adapters import rediscache as rc
from runbook_operator.kinds.healthreport.handlers import HealthReportKind, Probes
from support.fake_kube import NS, FakeKube, deployment
from support.passes import Harness

PLURAL = "healthreports"
NAME = "p1"
PASSWORD = "s3cr3t-pw"


class World:
    """What the fake servers answer; `hang` makes one of them never answer."""

    def __init__(self) -> None:
        self.http = 200
        self.value = 0.01
        self.used = 10
        self.hang: set[str] = set()
        self.released = threading.Event()
        self.logins: list[tuple[str, str]] = []

    def _maybe_hang(self, what: str) -> None:
        if what in self.hang:
            self.released.wait(5)

    def probes(self) -> Probes:
        def http_status(url: str, timeout: float) -> int:
            self._maybe_hang("http")
            if self.http == 0:
                raise httpcheck.HttpCheckError(f"{url} cannot be reached (refused)")
            return self.http

        def query(url: str, promql: str) -> float:
            self._maybe_hang("prometheus")
            return self.value

        def memory(server: rc.RedisServer, timeout: float) -> rc.Memory:
            self._maybe_hang("redis")
            self.logins.append(("redis", server.password or ""))
            return rc.Memory(self.used, f"{self.used}B", 100, 0.001)

        def health(server: pg.Server, long: float, show: bool, timeout: float) -> pgh.PgHealth:
            self._maybe_hang("postgres")
            self.logins.append((server.user, server.password))
            return pgh.PgHealth(5, 100, [], 0, 0, None)

        return Probes(http_status, query, memory, health)


CHECKS: list[dict[str, Any]] = [
    {"name": "backend", "workloads": {"deployments": ["backend"]}},
    {
        "name": "database",
        "postgres": {"host": "pg", "database": "m", "credentials": {"secretName": "pg"}},
    },
    {"name": "cache", "redis": {"host": "redis", "credentials": {"secretName": "redis"}}},
    {"name": "frontend", "http": {"url": "http://frontend/health"}},
    {"name": "errors", "prometheus": {"url": "http://prom:9090", "query": "q", "threshold": 0.05}},
]


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.put("Deployment", deployment("backend", 2))
    k.add_credentials("pg", {"username": "app", "password": PASSWORD})
    k.add_secret("redis", {"password": PASSWORD})
    return k


def create(kube: FakeKube, **spec: Any) -> None:
    spec.setdefault("checks", CHECKS)
    kube.add_custom(
        PLURAL,
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "HealthReport",
            "metadata": {"name": NAME, "generation": 1},
            "spec": spec,
        },
    )


def status(h: Harness) -> dict[str, Any]:
    return dict(h.obj(NAME).get("status") or {})


def test_all_passing_is_ready_and_runs_once(kube: FakeKube) -> None:
    world = World()
    h = Harness(HealthReportKind(world.probes()), kube)
    create(kube)
    result = h.run(NAME)
    st = status(h)
    assert st["summary"] == "5/5" and st["phase"] == "Passing" and "nextRun" not in st
    assert [c["name"] for c in st["checks"]] == [c["name"] for c in CHECKS]
    assert all(c["passed"] for c in st["checks"])
    assert h.reasons() == ["AllPassed"]
    assert result is not None and result.requeue_after is None
    assert ("app", PASSWORD) in world.logins and ("redis", PASSWORD) in world.logins
    h.run(NAME)  # nothing new: no run, no event
    assert h.reasons() == ["AllPassed"]
    assert PASSWORD not in str(h.obj(NAME)) and PASSWORD not in str(h.events)


def test_a_hanging_check_times_out_and_the_others_still_report(kube: FakeKube) -> None:
    world = World()
    world.hang = {"redis"}
    h = Harness(HealthReportKind(world.probes()), kube)
    checks = [dict(c) for c in CHECKS]
    checks[2]["timeout"] = "1s"
    create(kube, checks=checks)
    started = time.monotonic()
    h.run(NAME)
    took = time.monotonic() - started
    world.released.set()
    assert took < 3
    st = status(h)
    cache = next(c for c in st["checks"] if c["name"] == "cache")
    assert not cache["passed"] and cache["message"] == "timed out after 1s"
    assert st["summary"] == "4/5" and st["firstFailing"] == "cache"
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "CheckFailed" and ready["message"].startswith("check cache failed")
    assert h.reasons() == ["CheckFailed"]


def test_interval_schedules_the_next_run_and_events_come_only_on_change(kube: FakeKube) -> None:
    world = World()
    clock = [datetime(2026, 12, 3, 3, 0, tzinfo=UTC)]
    h = Harness(HealthReportKind(world.probes()), kube, clock=lambda: clock[0])
    create(kube, interval="1m")
    first = h.run(NAME)
    assert first is not None and first.requeue_after == pytest.approx(60, abs=1)
    assert status(h)["nextRun"] == "2026-12-03T03:01:00Z"
    clock[0] = clock[0].replace(second=30)
    waiting = h.run(NAME)
    assert waiting is not None and waiting.requeue_after == pytest.approx(30, abs=1)

    world.http = 503
    clock[0] = clock[0].replace(minute=1, second=0)
    h.run(NAME)
    clock[0] = clock[0].replace(minute=2)
    h.run(NAME)  # still failing: no second Warning
    world.http = 200
    clock[0] = clock[0].replace(minute=3)
    h.run(NAME)
    assert h.reasons() == ["AllPassed", "CheckFailed", "CheckRecovered", "AllPassed"]


def test_an_unreachable_server_fails_its_check_in_its_own_words(kube: FakeKube) -> None:
    world = World()
    world.http = 0
    h = Harness(HealthReportKind(world.probes()), kube)
    create(kube)
    h.run(NAME)
    frontend = next(c for c in status(h)["checks"] if c["name"] == "frontend")
    assert frontend["message"] == "http://frontend/health cannot be reached (refused)"
    assert frontend["value"] == "error"


def test_missing_credentials_fail_the_check_not_the_report(kube: FakeKube) -> None:
    del kube.store[("Secret", NS, "pg")]
    h = Harness(HealthReportKind(World().probes()), kube)
    create(kube)
    h.run(NAME)
    database = next(c for c in status(h)["checks"] if c["name"] == "database")
    assert not database["passed"] and "Secret pg" in database["message"]
    assert status(h)["summary"] == "4/5"


def test_pods_not_running_fail_the_workloads_check(kube: FakeKube) -> None:
    kube.put("Deployment", deployment("backend", 2))
    obj = kube.obj("Deployment", "backend")
    obj["status"]["readyReplicas"] = 1
    kube.put(
        "Pod",
        {
            "metadata": {"name": "backend-x", "labels": {"app": "backend"}},
            "status": {"phase": "Pending"},
        },
    )
    h = Harness(HealthReportKind(World().probes()), kube)
    create(kube)
    h.run(NAME)
    backend = status(h)["checks"][0]
    assert not backend["passed"] and backend["value"] == "1/2 ready"
    assert backend["message"] == "backend 1/2 ready, 1 pods not running (1 Pending)"
