"""ReplicaSets from the watch cache when it already holds the Deployment's current
revision, else from a consistent list (core.reading.replica_sets)."""

from __future__ import annotations

import copy

from runbook_operator.core.names import REVISION_ANNOTATION
from runbook_operator.core.reading import observe_deployment, replica_sets
from support.fake_kube import NS, FakeKube, Obj


def _rs(kube: FakeKube, name: str, owner: Obj, revision: str) -> Obj:
    return kube.put(
        "ReplicaSet",
        {
            "metadata": {
                "name": name,
                "labels": {"app": "web"},
                "annotations": {REVISION_ANNOTATION: revision},
                "ownerReferences": [{"uid": owner["metadata"]["uid"], "controller": True}],
            }
        },
    )


def _at_revision(kube: FakeKube, revision: str) -> Obj:
    web = kube.obj("Deployment", "web")
    web["metadata"]["annotations"][REVISION_ANNOTATION] = revision
    return copy.deepcopy(web)


def _names(items: list[Obj]) -> list[str]:
    return sorted(i["metadata"]["name"] for i in items)


def test_a_cache_that_holds_the_current_revision_is_enough() -> None:
    kube = FakeKube()
    web = kube.add_deployment("web", 2)
    old, new = _rs(kube, "web-1", web, "1"), _rs(kube, "web-2", web, "2")
    kube.cache["ReplicaSet"] = [copy.deepcopy(old), copy.deepcopy(new)]
    kube.reads.clear()
    assert _names(replica_sets(kube, NS, _at_revision(kube, "2"))) == ["web-1", "web-2"]
    assert kube.reads == [("list", "ReplicaSet", "cached")]


def test_a_cache_without_the_newest_replica_set_is_not_trusted() -> None:
    kube = FakeKube()
    web = kube.add_deployment("web", 2)
    old = _rs(kube, "web-1", web, "1")
    _rs(kube, "web-2", web, "2")  # made a moment ago: not in the cache yet
    kube.cache["ReplicaSet"] = [copy.deepcopy(old)]
    kube.reads.clear()
    assert _names(replica_sets(kube, NS, _at_revision(kube, "2"))) == ["web-1", "web-2"]
    assert kube.reads == [("list", "ReplicaSet", "cached"), ("list", "ReplicaSet")]


def test_the_current_revision_of_another_deployment_does_not_count() -> None:
    kube = FakeKube()
    web = kube.add_deployment("web", 2)
    twin = {"metadata": {"uid": "someone-else"}}
    stranger = _rs(kube, "other-2", twin, "2")
    _rs(kube, "web-2", web, "2")
    kube.cache["ReplicaSet"] = [copy.deepcopy(stranger)]
    kube.reads.clear()
    assert _names(replica_sets(kube, NS, _at_revision(kube, "2"))) == ["other-2", "web-2"]
    assert kube.reads[-1] == ("list", "ReplicaSet")


def test_a_deployment_without_a_revision_yet_reads_the_cache_only() -> None:
    kube = FakeKube()
    web = kube.add_deployment("web", 2)
    del web["metadata"]["annotations"][REVISION_ANNOTATION]
    kube.cache["ReplicaSet"] = []
    kube.reads.clear()
    assert replica_sets(kube, NS, copy.deepcopy(web)) == []
    assert kube.reads == [("list", "ReplicaSet", "cached")]


def test_a_deployment_that_selects_nothing_lists_nothing() -> None:
    kube = FakeKube()
    web = kube.add_deployment("web", 2)
    web["spec"]["selector"] = {}
    kube.reads.clear()
    assert replica_sets(kube, NS, copy.deepcopy(web)) == []
    assert kube.reads == []


def test_observing_a_deployment_reads_it_fresh_and_its_replica_sets_checked() -> None:
    kube = FakeKube()
    web = kube.add_deployment("web", 2)
    _rs(kube, "web-1", web, "1")
    kube.cache["ReplicaSet"] = []  # behind: the revision-1 ReplicaSet is not there
    kube.reads.clear()
    seen = observe_deployment(kube, NS, "web")
    assert seen.deployment is not None
    assert _names(list(seen.replica_sets)) == ["web-1"]
    assert kube.reads == [
        ("get", "Deployment", "web"),
        ("list", "ReplicaSet", "cached"),
        ("list", "ReplicaSet"),
    ]
