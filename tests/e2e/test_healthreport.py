"""HealthReport on the real test bed against real servers: the runbook's first look in a P1.

Deployments run on kwok's nodes; PostgreSQL, Redis and Prometheus are Debian's servers on
loopback with passwords; the health URL is a tiny HTTP server the test controls. Pods are
made not ready the way a bad scheduling change does it (a nodeSelector no node matches),
Redis is frozen (SIGSTOP) or stopped, and a long query is a real `pg_sleep`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

import pytest
from kubernetes import client
from psycopg import sql

from support.crs import cond, create_cr, get_cr, patch_cr, wait_condition
from support.events import events, reasons, wait_reasons
from support.health import Health
from support.health import health as health  # noqa: PLC0414  (the fixture)
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.postgres import (
    AppDatabase,
    PostgresServer,
    app_database,
    create_credentials,
    dbname,
)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.prometheus import Prometheus
from support.prometheus import prometheus as prometheus  # noqa: PLC0414  (the fixture)
from support.redis import RedisProcess
from support.redis import redis_server as redis_server  # noqa: PLC0414  (the fixture)
from support.rollback_cluster import create_deployment, manifest
from support.wait import wait_for

KIND = "HealthReport"
PLURAL = "healthreports"
REDIS_SECRET = "redis-credentials"
Obj = dict[str, Any]


@pytest.fixture
def db(postgres: PostgresServer) -> AppDatabase:
    return app_database(postgres, dbname("hr"), messages=None)


def redis_credentials(kube: Cluster, namespace: str, redis: RedisProcess) -> None:
    client.CoreV1Api(kube.api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=REDIS_SECRET),
            string_data={"password": redis.password},
        ),
    )


def pg_check(db: AppDatabase, **extra: Any) -> Obj:
    return {
        "name": "database",
        "postgres": {
            "host": db.server.host,
            "port": db.server.port,
            "database": db.name,
            "sslMode": "disable",
            "credentials": {"secretName": "pg"},
            **extra,
        },
    }


def redis_check(redis: RedisProcess, **extra: Any) -> Obj:
    return {
        "name": "cache",
        "redis": {
            "host": redis.host,
            "port": redis.port,
            "credentials": {"secretName": REDIS_SECRET},
        },
        **extra,
    }


def result(obj: Obj, name: str) -> Obj:
    return next(c for c in obj["status"]["checks"] if c["name"] == name)


def assert_secrets_nowhere(
    kube: Cluster, operator: OperatorProcess, namespace: str, *secrets: str
) -> None:
    log = operator.raw_log()
    told = json.dumps([e.get("message") for e in events(kube.api, namespace)])
    listing = json.dumps(
        client.CustomObjectsApi(kube.api).list_namespaced_custom_object(
            "ops.mailscore.com", "v1alpha1", namespace, PLURAL
        )
    )
    for secret in secrets:
        assert secret not in log and secret not in told and secret not in listing


def test_a_p1_first_look_passes_then_names_what_failed_and_tells_once(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    db: AppDatabase,
    redis_server: RedisProcess,
    prometheus: Prometheus,
    health: tuple[str, type[Health]],
) -> None:
    for name in ("backend", "frontend"):
        create_deployment(kube, namespace, manifest(name, image(f"{name}-1"), replicas=2))
    create_credentials(kube.api, namespace, db)
    redis_credentials(kube, namespace, redis_server)
    prometheus.exporter.set("http_errors_ratio", 0.01)
    prometheus.wait_for("http_errors_ratio", lambda v: v == [0.01])
    url, _ = health
    spec = {
        "interval": "10s",
        "checks": [
            {"name": "apps", "workloads": {"deployments": ["backend", "frontend"]}},
            pg_check(db),
            redis_check(redis_server),
            {"name": "frontend-health", "http": {"url": url, "maxLatency": "2s"}},
            {
                "name": "error-rate",
                "prometheus": {
                    "url": prometheus.url,
                    "query": "http_errors_ratio",
                    "comparison": "<",
                    "threshold": 0.05,
                },
            },
        ],
    }
    create_cr(kube.api, namespace, KIND, "p1", spec)
    ready = wait_condition(kube.api, namespace, KIND, "p1", "Ready", timeout=60)
    st = ready["status"]
    assert st["summary"] == "5/5" and st["phase"] == "Passing" and st["nextRun"]
    assert result(ready, "apps")["value"] == "4/4 ready"
    assert result(ready, "error-rate")["value"] == "0.01"
    assert result(ready, "frontend-health")["measures"]["status"] == 200
    assert result(ready, "cache")["passed"] and result(ready, "database")["passed"]
    wait_reasons(kube.api, namespace, "p1", {"AllPassed"})

    # The frontend's pods can no longer be scheduled: half of them go, the new ones wait.
    client.AppsV1Api(kube.api).patch_namespaced_deployment(
        "frontend",
        namespace,
        {"spec": {"template": {"spec": {"nodeSelector": {"ops.mailscore.com/none": "x"}}}}},
    )
    failing = wait_condition(
        kube.api, namespace, KIND, "p1", "Ready", "False", reason="CheckFailed", timeout=60
    )
    apps = result(failing, "apps")
    assert not apps["passed"] and failing["status"]["firstFailing"] == "apps"
    assert apps["measures"]["podsNotRunning"] >= 1 and apps["measures"]["ready"] < 4
    assert "frontend 1/2 ready" in apps["message"] and "Pending" in apps["message"]
    assert "backend" not in apps["message"]
    message = cond(failing, "Ready")["message"]
    assert message.startswith("check apps failed: frontend 1/2 ready") and "(4/5 passed)" in message
    assert failing["status"]["summary"] == "4/5"
    wait_reasons(kube.api, namespace, "p1", {"CheckFailed"})

    # A later run that finds the same failure tells nobody again.
    last = failing["status"]["lastRun"]
    wait_for(
        lambda: get_cr(kube.api, namespace, KIND, "p1")["status"]["lastRun"] != last,
        timeout=30,
        what="the next run",
    )
    assert reasons(kube.api, namespace, "p1").count("CheckFailed") == 1

    client.AppsV1Api(kube.api).patch_namespaced_deployment(
        "frontend",
        namespace,
        [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}],
    )
    wait_condition(kube.api, namespace, KIND, "p1", "Ready", reason="AllPassed", timeout=60)
    told = wait_reasons(kube.api, namespace, "p1", {"CheckRecovered"})
    assert told.count("CheckFailed") == 1 and told.count("CheckRecovered") == 1
    assert told.count("AllPassed") == 2
    table = kube.run_kubectl("get", "healthreport", "-n", namespace).stdout
    assert "5/5" in table and "True" in table and "AllPassed" in table
    assert_secrets_nowhere(kube, operator, namespace, db.password, redis_server.password)


def test_a_dead_redis_fails_its_check_in_time_and_the_others_still_report(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    redis_server: RedisProcess,
    health: tuple[str, type[Health]],
) -> None:
    redis_credentials(kube, namespace, redis_server)
    url, _ = health
    checks = [redis_check(redis_server, timeout="2s"), {"name": "web", "http": {"url": url}}]
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        create_cr(kube.api, namespace, KIND, "dead", {"checks": checks, "timeout": "5s"})
        failing = wait_condition(
            kube.api, namespace, KIND, "dead", "Ready", "False", reason="CheckFailed", timeout=30
        )
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    cache = result(failing, "cache")
    assert not cache["passed"] and cache["message"] == "timed out after 2s"
    assert result(failing, "web")["passed"] and failing["status"]["summary"] == "1/2"
    wait_reasons(kube.api, namespace, "dead", {"CheckFailed"})

    # Stopped for good: refused at once, in Redis's words; a spec change runs it again.
    redis_server.stop()
    patch_cr(kube.api, namespace, KIND, "dead", {"spec": {"timeout": "4s"}})

    def rerun() -> Obj | None:
        obj = get_cr(kube.api, namespace, KIND, "dead")
        return obj if "cannot reach Redis" in result(obj, "cache")["message"] else None

    try:
        refused = wait_for(rerun, timeout=30, what="the re-run after the spec changed")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n{get_cr(kube.api, namespace, KIND, 'dead')['status']}"
        ) from None
    assert result(refused, "web")["passed"] and refused["status"]["observedGeneration"] == 2
    assert_secrets_nowhere(kube, operator, namespace, redis_server.password)


def test_a_long_query_shows_up_without_its_text(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    create_credentials(kube.api, namespace, db)
    marker = "hr_marker_" + db.name

    def sleep() -> None:
        with db.connect() as conn:
            conn.execute(sql.SQL("SELECT pg_sleep(12) AS {}").format(sql.Identifier(marker)))

    sleeper = threading.Thread(target=sleep, daemon=True)
    sleeper.start()
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND now() - query_start > interval '2 seconds' AND query LIKE %s",
                (f"%{marker}%",),
            )[0][0]
            == 1
        ),
        timeout=10,
        what="the long query to run 2s",
    )
    spec = {"checks": [pg_check(db, longQuery="1s", maxConnectionsPercent=90)]}
    create_cr(kube.api, namespace, KIND, "slow", spec)
    failing = wait_condition(
        kube.api, namespace, KIND, "slow", "Ready", "False", reason="CheckFailed", timeout=30
    )
    database = result(failing, "database")
    assert database["measures"]["longQueries"] >= 1
    assert database["measures"]["longestQuerySeconds"] >= 1
    assert "queries active longer than 1s" in database["message"]
    assert database["measures"]["connections"] >= 2 and database["measures"]["maxConnections"] == 50
    assert marker not in json.dumps(failing) and "pg_sleep" not in json.dumps(failing)
    sleeper.join(timeout=20)
    assert_secrets_nowhere(kube, operator, namespace, db.password)
