"""CacheFlush through the core against the FakeKube and FakeRedis: guard, once, failures."""

from __future__ import annotations

from typing import Any

import pytest

from runbook_operator.adapters import rediscache as rc
from runbook_operator.core.names import FINALIZER
from runbook_operator.kinds.cacheflush.handlers import CacheFlushKind
from runbook_operator.kinds.cacheflush.logic import marker_key
from support.fake_kube import FakeKube
from support.fake_redis import FakeRedis
from support.passes import Harness

PLURAL = "cacheflushes"
NAME = "flush"
ADDRESS = "redis:6379/0"


def keys(n: int, prefix: str = "session") -> dict[bytes, bytes]:
    return {f"{prefix}:{i}".encode(): b"v" for i in range(n)}


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_secret("redis-credentials", {"password": "s3cr3t-pw"})
    return k


def create(kube: FakeKube, **spec: Any) -> None:
    spec.setdefault("redis", {"host": "redis", "credentials": {"secretName": "redis-credentials"}})
    kube.add_custom(
        PLURAL,
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "CacheFlush",
            "metadata": {"name": NAME},
            "spec": spec,
        },
    )


def window(kube: FakeKube, phase: str) -> None:
    kube.add_custom(
        "maintenancewindows",
        {"metadata": {"name": "tonight"}, "spec": {}, "status": {"phase": phase}},
    )


def status(h: Harness) -> dict[str, Any]:
    return dict(h.obj(NAME).get("status") or {})


def test_confirmed_flush_records_before_and_after_and_logs_in(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(5)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS)
    h.run(NAME)
    st = status(h)
    assert st["phase"] == "Completed" and st["command"] == "FLUSHDB ASYNC"
    assert (st["before"]["keys"], st["after"]["keys"]) == (5, 0)
    assert st["authorizedBy"] == "confirm" and st["address"] == ADDRESS
    assert redis.dbs[0] == {}
    assert [c for c, _ in redis.calls].count("flush_async") == 1
    assert set(redis.logins) == {(None, "s3cr3t-pw")}
    assert [e.reason for e in h.events] == ["Flushing", "Completed"]
    assert all("s3cr3t" not in e.message for e in h.events)
    assert "s3cr3t" not in str(st)


def test_a_pattern_flush_removes_only_matching_keys(kube: FakeKube) -> None:
    redis = FakeRedis({0: {**keys(3), **keys(2, "user")}})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS, keyPattern="session:*")
    h.run(NAME)
    st = status(h)
    assert st["phase"] == "Completed" and st["removed"] == 3
    assert (st["before"]["keys"], st["after"]["keys"]) == (3, 0)
    assert sorted(redis.dbs[0]) == [b"user:0", b"user:1"]
    assert "marker" not in st and st["command"] == "SCAN MATCH session:* + UNLINK"


def test_a_wrong_confirm_is_refused_and_nothing_is_touched(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(2)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm="redis:6379/1")
    h.run(NAME)
    st = status(h)
    assert st["phase"] == "Refused"
    assert "spec.confirm is 'redis:6379/1', but this flush is of 'redis:6379/0'" in str(st)
    assert redis.calls == [] and len(redis.dbs[0]) == 2


def test_waits_blocked_for_its_window_then_flushes(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(2)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, maintenanceWindow="tonight")
    result = h.run(NAME)
    assert status(h)["phase"] == "Blocked" and redis.calls == []
    assert result is not None and ("MaintenanceWindow", "tonight") in result.watch
    assert "MaintenanceWindow tonight does not exist" in str(status(h))
    window(kube, "Pending")
    h.run(NAME)
    assert "is Pending" in str(status(h)) and [e.reason for e in h.events] == [
        "WaitingForWindow",
        "WaitingForWindow",
    ]
    h.run(NAME)  # the same words: no third event
    assert len(h.events) == 2
    kube.obj("maintenancewindows", "tonight")["status"]["phase"] = "Active"
    h.run(NAME)
    st = status(h)
    assert st["phase"] == "Completed" and st["authorizedBy"] == "MaintenanceWindow/tonight"


def test_resumed_after_the_flush_was_sent_never_flushes_again(kube: FakeKube) -> None:
    """The marker is gone with the FLUSHDB: a pass resumed after it only measures."""
    redis = FakeRedis({0: keys(4)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS)
    h.run(NAME)
    obj = h.obj(NAME)
    obj["status"]["phase"] = "Flushing"  # as if the operator died before recording the end
    del obj["status"]["after"]
    redis.dbs[0].update(keys(3, "new"))  # written by the app meanwhile
    h.run(NAME)
    assert status(h)["phase"] == "Completed" and status(h)["after"]["keys"] == 3
    assert [c for c, _ in redis.calls].count("flush_async") == 1


def test_redis_failing_mid_flush_fails_it_with_the_reason(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(4)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS)
    redis.fail["flush_async"] = rc.RedisUnreachable("cannot reach Redis at redis:6379/0")
    h.run(NAME)
    assert status(h)["phase"] == "Failed"  # a failure ends it, with the reason
    assert "RedisUnreachable" in str(status(h)["conditions"])


def test_the_marker_tells_a_resumed_pass_the_flush_is_still_due(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(4)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS)
    uid = kube.obj(PLURAL, NAME)["metadata"]["uid"]
    marker = marker_key(uid)
    kube.obj(PLURAL, NAME)["status"] = {
        "phase": "Flushing",
        "command": "FLUSHDB ASYNC",
        "marker": marker,
        "before": {"keys": 4, "usedMemory": 1, "at": "2026-12-03T02:00:00Z"},
    }
    redis.dbs[0][marker.encode()] = b"pending"  # set, recorded, then the operator died
    h.run(NAME)
    st = status(h)
    assert st["phase"] == "Completed" and st["after"]["keys"] == 0
    assert [c for c, _ in redis.calls].count("flush_async") == 1


def test_old_redis_gets_a_plain_flushdb(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(1)}, version="3.2.12")
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS)
    h.run(NAME)
    assert status(h)["command"] == "FLUSHDB" and ("flush", ADDRESS) in redis.calls


def test_a_missing_secret_fails_naming_it_and_flushes_nothing(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(1)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS, redis={"host": "redis", "credentials": {"secretName": "nope"}})
    h.run(NAME)
    st = status(h)
    assert st["phase"] == "Failed" and "CredentialsNotFound" in str(st["conditions"])
    assert "Secret nope" in str(st["conditions"]) and redis.calls == []


def test_a_finished_flush_does_nothing_more(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(1)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS)
    h.run(NAME)
    calls = list(redis.calls)
    redis.dbs[0].update(keys(2))
    h.run(NAME)
    assert redis.calls == calls and len(redis.dbs[0]) == 2


def test_deleted_before_the_flush_was_sent_removes_its_marker(kube: FakeKube) -> None:
    redis = FakeRedis({0: keys(2)})
    h = Harness(CacheFlushKind(redis), kube)
    create(kube, confirm=ADDRESS)
    marker = marker_key(kube.obj(PLURAL, NAME)["metadata"]["uid"])
    kube.obj(PLURAL, NAME)["status"] = {"phase": "Flushing", "marker": marker}
    kube.obj(PLURAL, NAME)["metadata"]["finalizers"] = [FINALIZER]  # as the first pass left it
    redis.dbs[0][marker.encode()] = b"pending"
    h.delete(NAME)
    h.run(NAME)
    assert marker.encode() not in redis.dbs[0] and len(redis.dbs[0]) == 2  # nothing flushed
    assert ("clear_marker", ADDRESS) in redis.calls
