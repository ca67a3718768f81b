"""The watch cache: what the operator's watches delivered, read from the passes."""

from __future__ import annotations

from typing import Any

from runbook_operator.core.watchcache import WatchCache, lean


def deployment(name: str, replicas: int = 2, uid: str = "u1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"replicas": replicas},
    }


def test_a_kept_copy_has_everything_but_managed_fields() -> None:
    body = deployment("web")
    kept = lean(body)
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["resourceVersion"] == "7" and kept["spec"] == {"replicas": 2}
    assert "managedFields" in body["metadata"]  # the watch's own copy is left as it was


def test_an_empty_cache_knows_nothing() -> None:
    assert WatchCache().workload("Deployment", "ns", "web") is None


def test_the_newest_copy_is_answered_and_the_caller_may_change_it() -> None:
    cache = WatchCache()
    cache.observe("Deployment", None, deployment("web", 2))  # from the first listing
    cache.observe("Deployment", "MODIFIED", deployment("web", 5))
    got = cache.workload("Deployment", "ns", "web")
    assert got is not None and got["spec"]["replicas"] == 5
    assert "managedFields" not in got["metadata"]
    got["spec"]["replicas"] = 9
    again = cache.workload("Deployment", "ns", "web")
    assert again is not None and again["spec"]["replicas"] == 5
    assert cache.workload("StatefulSet", "ns", "web") is None  # another kind, same name
    assert cache.workload("Deployment", "other", "web") is None


def test_only_workloads_are_kept() -> None:
    cache = WatchCache()
    cache.observe("Namespace", "ADDED", {"metadata": {"name": "ns"}})
    cache.observe("MaintenancePolicy", "ADDED", {"metadata": {"name": "p"}})
    cache.observe("StatefulSet", "ADDED", deployment("db"))
    assert len(cache) == 1
    assert cache.workload("StatefulSet", "ns", "db") is not None


def test_a_deleted_workload_is_dropped_but_never_its_successor() -> None:
    cache = WatchCache()
    cache.observe("Deployment", "ADDED", deployment("web", uid="old"))
    cache.observe("Deployment", "DELETED", deployment("web", uid="old"))
    assert cache.workload("Deployment", "ns", "web") is None
    # Re-created under the name; the old one's deletion is delivered late.
    cache.observe("Deployment", "ADDED", deployment("web", 3, uid="new"))
    cache.observe("Deployment", "DELETED", deployment("web", uid="old"))
    got = cache.workload("Deployment", "ns", "web")
    assert got is not None and got["metadata"]["uid"] == "new"


def test_a_deletion_the_watch_missed_is_forgotten_when_the_api_server_says_so() -> None:
    cache = WatchCache()
    cache.observe("Deployment", "ADDED", deployment("web"))
    cache.forget("Deployment", "ns", "web")
    cache.forget("Deployment", "ns", "never-seen")
    assert cache.workload("Deployment", "ns", "web") is None
