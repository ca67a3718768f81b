"""CacheFlush on the real test bed against a real Redis: guarded, recorded, never twice.

The runbook's P2 `redis-cli flushdb` ("USE WITH CAUTION"). Redis is Debian's
redis-server on loopback with a password; the test fills it with redis-py and counts
what the operator left. Crashes are the operator dying at a failpoint: right after the
flush is recorded (not yet sent), and right after it was sent (not yet recorded).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.crs import cond, create_cr, get_cr, patch_cr, wait_phase
from support.events import events, wait_reasons
from support.kube import Cluster
from support.operator import OperatorProcess
from support.redis import RedisProcess
from support.redis import redis_server as redis_server  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

KIND = "CacheFlush"
SECRET = "redis-credentials"


def fill(redis: RedisProcess, sessions: int = 200, others: int = 50) -> None:
    conn = redis.client()
    conn.mset({f"session:{i}": "token" for i in range(sessions)})
    conn.mset({f"user:{i}": "profile" for i in range(others)})


def credentials(kube: Cluster, namespace: str, redis: RedisProcess) -> None:
    client.CoreV1Api(kube.api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET), string_data={"password": redis.password}
        ),
    )


def spec(redis: RedisProcess, **extra: Any) -> dict[str, Any]:
    return {
        "redis": {
            "host": redis.host,
            "port": redis.port,
            "credentials": {"secretName": SECRET},
        },
        **extra,
    }


def address(redis: RedisProcess) -> str:
    return f"{redis.host}:{redis.port}/0"


def assert_password_nowhere(
    kube: Cluster, operator: OperatorProcess, namespace: str, redis: RedisProcess
) -> None:
    assert redis.password not in operator.raw_log()
    for event in events(kube.api, namespace):
        assert redis.password not in (event.get("message") or "")
    listing = client.CustomObjectsApi(kube.api).list_namespaced_custom_object(
        "ops.mailscore.com", "v1alpha1", namespace, "cacheflushes"
    )
    assert redis.password not in json.dumps(listing)


def test_a_confirmed_flush_empties_the_database_and_records_before_and_after(
    kube: Cluster, operator: OperatorProcess, namespace: str, redis_server: RedisProcess
) -> None:
    fill(redis_server)
    credentials(kube, namespace, redis_server)
    create_cr(kube.api, namespace, KIND, "p2", spec(redis_server, confirm=address(redis_server)))
    done = wait_phase(kube.api, namespace, KIND, "p2", "Completed", timeout=60)
    st = done["status"]
    assert (st["before"]["keys"], st["after"]["keys"]) == (250, 0)
    assert st["before"]["usedMemory"] > 0 and st["command"] == "FLUSHDB ASYNC"
    assert st["authorizedBy"] == "confirm" and cond(done, "Ready")["reason"] == "Flushed"
    assert redis_server.client().dbsize() == 0
    posted = wait_reasons(kube.api, namespace, "p2", {"Flushing", "Completed"})
    assert posted.count("Flushing") == 1 and posted.count("Completed") == 1
    table = kube.run_kubectl("get", "runbook", "-n", namespace).stdout
    assert "p2" in table and "Completed" in table
    assert_password_nowhere(kube, operator, namespace, redis_server)


def test_a_pattern_flush_removes_only_the_matching_keys(
    kube: Cluster, operator: OperatorProcess, namespace: str, redis_server: RedisProcess
) -> None:
    fill(redis_server, sessions=1200)  # more than one SCAN step
    credentials(kube, namespace, redis_server)
    body = spec(redis_server, confirm=address(redis_server), keyPattern="session:*")
    create_cr(kube.api, namespace, KIND, "sessions", body)
    done = wait_phase(kube.api, namespace, KIND, "sessions", "Completed", timeout=60)
    st = done["status"]
    assert st["removed"] == 1200 and (st["before"]["keys"], st["after"]["keys"]) == (1200, 0)
    conn = redis_server.client()
    assert conn.dbsize() == 50 and not list(conn.scan_iter(match="session:*"))


def test_without_a_guard_nothing_is_flushed(
    kube: Cluster, operator: OperatorProcess, namespace: str, redis_server: RedisProcess
) -> None:
    fill(redis_server)
    credentials(kube, namespace, redis_server)
    with pytest.raises(ApiException) as refused:
        create_cr(kube.api, namespace, KIND, "unguarded", spec(redis_server))
    assert "name the maintenanceWindow that must be Active, or set confirm" in str(
        refused.value.body
    )
    create_cr(kube.api, namespace, KIND, "typo", spec(redis_server, confirm="redis:6379/0"))
    typo = wait_phase(kube.api, namespace, KIND, "typo", "Refused", timeout=30)
    assert f"but this flush is of '{address(redis_server)}'" in cond(typo, "Ready")["message"]
    create_cr(kube.api, namespace, KIND, "later", spec(redis_server, maintenanceWindow="p2"))
    blocked = wait_phase(kube.api, namespace, KIND, "later", "Blocked", timeout=30)
    assert "MaintenanceWindow p2 does not exist" in cond(blocked, "Ready")["message"]
    assert redis_server.client().dbsize() == 250

    # The window it names becomes Active: the blocked flush goes ahead by itself.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    window = {
        "start": start.isoformat(),
        "duration": "2m",
        "reason": "P2: cache full of stale sessions",
        "emergency": {"reason": "users cannot log in"},
    }
    create_cr(kube.api, namespace, "MaintenanceWindow", "p2", window)
    done = wait_phase(kube.api, namespace, KIND, "later", "Completed", timeout=90)
    assert done["status"]["authorizedBy"] == "MaintenanceWindow/p2"
    assert redis_server.client().dbsize() == 0
    assert get_cr(kube.api, namespace, KIND, "typo")["status"]["phase"] == "Refused"


@pytest.mark.parametrize("failpoint", ["cacheflush-Flushing", "cacheflush-flushed"])
def test_dying_mid_flush_flushes_exactly_once(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    redis_server: RedisProcess,
    failpoint: str,
) -> None:
    """Recorded but not sent: the resumed pass sends it. Sent but not recorded: the keys
    the app writes before the operator is back survive, since nothing is flushed again."""
    fill(redis_server)
    credentials(kube, namespace, redis_server)
    operator.stop()
    operator.env["RUNBOOK_FAILPOINTS"] = failpoint
    try:
        operator.start(wait=False)
        create_cr(
            kube.api, namespace, KIND, "crashy", spec(redis_server, confirm=address(redis_server))
        )
        wait_for(lambda: not operator.running, timeout=60, what=f"a death at {failpoint}")
        assert operator.exit_code() == 137, operator.tail()
    finally:
        operator.env.pop("RUNBOOK_FAILPOINTS")
    flushed = failpoint == "cacheflush-flushed"
    assert redis_server.client().dbsize() == (0 if flushed else 251)  # 250 + the marker
    redis_server.client().mset({"written:meanwhile": "1"})
    operator.start()
    done = wait_phase(kube.api, namespace, KIND, "crashy", "Completed", timeout=60)
    left = redis_server.client().dbsize()
    assert left == (1 if flushed else 0), "flushed a second time" if flushed else "never flushed"
    assert done["status"]["after"]["keys"] == left
    assert done["status"]["before"]["keys"] == 250


OK: dict[str, Any] = {"redis": {"host": "redis"}, "confirm": "redis:6379/0"}
MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("no-redis", {"confirm": "redis:6379/0"}, "redis"),
    ("no-guard", {"redis": {"host": "redis"}}, "set confirm"),
    ("bad-host", {**OK, "redis": {"host": "red is"}}, "host"),
    ("port-zero", {**OK, "redis": {"host": "redis", "port": 0}}, "port"),
    ("port-too-big", {**OK, "redis": {"host": "redis", "port": 70000}}, "port"),
    ("negative-db", {**OK, "redis": {"host": "redis", "db": -1}}, "db"),
    ("db-words", {**OK, "redis": {"host": "redis", "db": "zero"}}, "db"),
    ("secret-no-name", {**OK, "redis": {"host": "redis", "credentials": {}}}, "secretName"),
    (
        "secret-empty-key",
        {**OK, "redis": {"host": "redis", "credentials": {"secretName": "r", "passwordKey": ""}}},
        "passwordKey",
    ),
    ("pattern-with-space", {**OK, "keyPattern": "session *"}, "keyPattern"),
    ("empty-pattern", {**OK, "keyPattern": ""}, "keyPattern"),
    ("bad-window-name", {**OK, "maintenanceWindow": "Tonight_1"}, "maintenanceWindow"),
]


@pytest.mark.parametrize(
    ("body", "words"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_cache_flushes_are_refused_by_the_api_server(
    kube: Cluster, namespace: str, body: dict[str, Any], words: str
) -> None:
    with pytest.raises(ApiException) as refused:
        create_cr(kube.api, namespace, KIND, "bad", body)
    assert refused.value.status == 422, refused.value.body
    assert words.lower() in str(refused.value.body).lower(), refused.value.body


def test_a_cache_flush_cannot_be_changed_once_created(kube: Cluster, namespace: str) -> None:
    create_cr(kube.api, namespace, KIND, "once", OK)
    with pytest.raises(ApiException) as refused:
        patch_cr(kube.api, namespace, KIND, "once", {"spec": {"keyPattern": "x:*"}})
    assert "cannot be changed once created" in str(refused.value.body)
