"""The watch cache: what the operator's watches delivered, read from the passes."""

from __future__ import annotations

from typing import Any

from runbook_operator.core.watchcache import (
    HPA_INDEX,
    WORKLOAD_INDICES,
    WatchCache,
    by_name,
    by_namespace,
    trimmed,
)

DEPLOYMENTS = WORKLOAD_INDICES["Deployment"]


def deployment(name: str, replicas: int = 2, namespace: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"replicas": replicas},
    }


def test_a_kept_copy_has_everything_but_managed_fields() -> None:
    body = deployment("web")
    kept = trimmed(body)
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["resourceVersion"] == "7" and kept["spec"] == {"replicas": 2}
    assert "managedFields" in body["metadata"]  # the watch's own copy is left as it was


def test_workloads_are_indexed_by_namespace_and_name_hpas_by_namespace() -> None:
    assert list(by_name(deployment("web"))) == [("ns", "web")]
    assert list(by_namespace(deployment("hpa"))) == ["ns"]


def test_an_empty_cache_knows_nothing() -> None:
    cache = WatchCache()
    assert cache.workload("Deployment", "ns", "web") is None
    assert cache.hpas("ns") is None


def test_a_workload_is_answered_with_a_copy_the_caller_may_change() -> None:
    index = {("ns", "web"): [trimmed(deployment("web"))]}
    cache = WatchCache({DEPLOYMENTS: index})
    got = cache.workload("Deployment", "ns", "web")
    assert got is not None and got["spec"]["replicas"] == 2
    got["spec"]["replicas"] = 9
    again = cache.workload("Deployment", "ns", "web")
    assert again is not None and again["spec"]["replicas"] == 2


def test_what_is_not_known_for_sure_is_read_from_the_api_server() -> None:
    two = [trimmed(deployment("web", 2)), trimmed(deployment("web", 5))]
    cache = WatchCache({DEPLOYMENTS: {("ns", "web"): two}})
    # Two under one name (a deleted one's event still in flight): neither is trusted.
    assert cache.workload("Deployment", "ns", "web") is None
    assert cache.workload("Deployment", "ns", "other") is None
    assert cache.workload("Deployment", "other-ns", "web") is None
    # StatefulSets are not followed by this cache: unknown, not absent.
    assert cache.workload("StatefulSet", "ns", "web") is None
    assert cache.workload("CronJob", "ns", "web") is None


def test_a_namespace_without_hpas_has_none_once_they_are_followed() -> None:
    hpa = trimmed(deployment("web-hpa"))
    cache = WatchCache({HPA_INDEX: {"ns": [hpa]}})
    assert cache.hpas("empty") == []
    got = cache.hpas("ns")
    assert got is not None and [h["metadata"]["name"] for h in got] == ["web-hpa"]
    got[0]["spec"]["replicas"] = 9
    assert (cache.hpas("ns") or [{}])[0]["spec"] == {"replicas": 2}
