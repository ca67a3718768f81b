"""Holds: stale ones are taken over, and taking or releasing never loops without end."""

from __future__ import annotations

import copy

import pytest

import runbook_operator.kinds  # noqa: F401  (every kind's Resource registered)
from runbook_operator.adapters.kube import Conflict
from runbook_operator.core.holding import (
    ATTEMPTS,
    acquire_hold,
    clean_replicaset_holds,
    hold_with,
    release_hold,
)
from runbook_operator.core.holds import hold_is_stale, parse_holder, same_holder
from runbook_operator.core.names import HOLD_ANNOTATION, HOLD_INSTANCE_ANNOTATION, holder_id
from runbook_operator.core.resource import by_kind
from support.fake_kube import NS, FakeKube

ME = "EmergencyScale/black-friday"


def test_parse_holder_knows_our_kinds() -> None:
    for holder, plural in [
        ("EmergencyScale/black-friday", "emergencyscales"),
        ("MaintenanceWindow/db", "maintenancewindows"),
        ("Rollback/undo", "rollbacks"),
    ]:
        parsed = parse_holder(holder)
        assert parsed is not None and parsed[0].plural == plural


@pytest.mark.parametrize("holder", ["", "Deployment/x", "EmergencyScale/", "someone-else"])
def test_parse_holder_refuses_what_is_not_ours(holder: str) -> None:
    assert parse_holder(holder) is None


def _resource(kind: str):  # type: ignore[no-untyped-def]
    resource = by_kind(kind)
    assert resource is not None
    return resource


def test_missing_holder_is_stale() -> None:
    assert hold_is_stale(_resource("EmergencyScale"), None)


@pytest.mark.parametrize(
    ("kind", "phase"),
    [
        ("EmergencyScale", "Completed"),
        ("EmergencyScale", "Failed"),
        ("MaintenanceWindow", "Cancelled"),
        ("Rollback", "Refused"),
    ],
)
def test_finished_holder_is_stale(kind: str, phase: str) -> None:
    assert hold_is_stale(_resource(kind), {"metadata": {}, "status": {"phase": phase}})


@pytest.mark.parametrize("phase", [None, "Pending", "Active", "Reverting"])
def test_working_holder_is_not_stale(phase: str | None) -> None:
    assert not hold_is_stale(
        _resource("EmergencyScale"), {"metadata": {}, "status": {"phase": phase}}
    )


def test_holder_being_deleted_still_holds() -> None:
    obj = {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Failed"}}
    assert not hold_is_stale(_resource("EmergencyScale"), obj)


def test_acquire_takes_over_the_hold_of_a_finished_operation() -> None:
    kube = FakeKube()
    kube.add_deployment("web", 2)
    kube.obj("Deployment", "web")["metadata"]["annotations"][HOLD_ANNOTATION] = "Rollback/old"
    kube.add_custom("rollbacks", {"metadata": {"name": "old"}, "status": {"phase": "Completed"}})
    assert acquire_hold(kube, "Deployment", NS, "web", ME) is None
    assert kube.annotations("Deployment", "web")[HOLD_ANNOTATION] == ME


def test_acquire_reports_a_live_holder() -> None:
    kube = FakeKube()
    kube.add_deployment("web", 2)
    kube.obj("Deployment", "web")["metadata"]["annotations"][HOLD_ANNOTATION] = "Rollback/now"
    kube.add_custom("rollbacks", {"metadata": {"name": "now"}, "status": {"phase": "RollingBack"}})
    assert acquire_hold(kube, "Deployment", NS, "web", ME) == "Rollback/now"


def test_a_hold_of_an_operation_created_again_under_its_name_is_stale() -> None:
    """The hold names the operation's uid: the new object of the same name neither
    inherits it (it is taken over) nor is blocked by it."""
    kube = FakeKube()
    kube.add_deployment("web", 2)
    held = "Rollback/undo/uid-of-the-deleted-one"
    kube.obj("Deployment", "web")["metadata"]["annotations"][HOLD_ANNOTATION] = held
    kube.add_custom("rollbacks", {"metadata": {"name": "undo"}, "status": {"phase": "Pending"}})
    uid = kube.obj("rollbacks", "undo")["metadata"]["uid"]
    mine = holder_id("Rollback", "undo", uid)
    assert mine == f"Rollback/undo/{uid}"
    assert acquire_hold(kube, "Deployment", NS, "web", mine, "replica-b") is None
    annotations = kube.annotations("Deployment", "web")
    assert annotations[HOLD_ANNOTATION] == mine
    assert annotations[HOLD_INSTANCE_ANNOTATION] == "replica-b"
    release_hold(kube, "Deployment", NS, "web", mine)
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "web")
    assert HOLD_INSTANCE_ANNOTATION not in kube.annotations("Deployment", "web")


def test_a_hold_from_before_uids_is_still_its_operations() -> None:
    """Upgraded with an operation in flight: its `Kind/name` hold is its own, rewritten."""
    assert same_holder("Rollback/undo", "Rollback/undo/u1")
    assert same_holder("Rollback/undo/u1", "Rollback/undo/u1")
    assert not same_holder("Rollback/undo/u0", "Rollback/undo/u1")
    assert not same_holder("Rollback/other", "Rollback/undo/u1")
    assert not same_holder(None, "Rollback/undo/u1")
    kube = FakeKube()
    kube.add_deployment("web", 2)
    kube.obj("Deployment", "web")["metadata"]["annotations"][HOLD_ANNOTATION] = "Rollback/undo"
    kube.add_custom("rollbacks", {"metadata": {"name": "undo"}, "status": {"phase": "Pending"}})
    assert acquire_hold(kube, "Deployment", NS, "web", "Rollback/undo/u1") is None
    assert kube.annotations("Deployment", "web")[HOLD_ANNOTATION] == "Rollback/undo/u1"


def _always_conflicting(kube: FakeKube) -> None:
    def conflict(call: tuple[str, ...]) -> None:
        if call[:2] == ("patch", "Deployment"):
            raise Conflict("changed again")

    kube.before_write = conflict


def test_release_under_endless_conflicts_gives_up_after_a_few_attempts() -> None:
    """It used to call itself again on every Conflict, without end."""
    kube = FakeKube()
    kube.add_deployment("web", 2)
    kube.obj("Deployment", "web")["metadata"]["annotations"][HOLD_ANNOTATION] = ME
    _always_conflicting(kube)
    with pytest.raises(Conflict, match=f"{ATTEMPTS} attempts"):
        release_hold(kube, "Deployment", NS, "web", ME)
    assert len(kube.calls) == ATTEMPTS


def test_acquire_under_endless_conflicts_gives_up_too() -> None:
    kube = FakeKube()
    kube.add_deployment("web", 2)
    _always_conflicting(kube)
    with pytest.raises(Conflict, match=f"{ATTEMPTS} attempts"):
        acquire_hold(kube, "Deployment", NS, "web", ME)


def test_release_leaves_someone_elses_hold() -> None:
    kube = FakeKube()
    kube.add_deployment("web", 2)
    kube.obj("Deployment", "web")["metadata"]["annotations"][HOLD_ANNOTATION] = "Rollback/x"
    release_hold(kube, "Deployment", NS, "web", ME)
    assert kube.annotations("Deployment", "web")[HOLD_ANNOTATION] == "Rollback/x"


def _replicaset(
    kube: FakeKube, name: str, owner_uid: str, labels: dict[str, str], holder: str
) -> None:
    kube.put(
        "ReplicaSet",
        {
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {HOLD_ANNOTATION: holder},
                "ownerReferences": [{"uid": owner_uid, "controller": True}],
            }
        },
    )


def test_replicaset_copies_are_cleaned_for_a_selector_of_match_expressions_only() -> None:
    """A Deployment selecting by matchExpressions alone used to keep the copies."""
    kube = FakeKube()
    selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}
    uid = kube.add_deployment("web", 2, selector=selector, labels={"app": "web"})["metadata"]["uid"]
    _replicaset(kube, "web-1", uid, {"app": "web"}, ME)
    _replicaset(kube, "web-2", uid, {"app": "web"}, "Rollback/other")
    assert clean_replicaset_holds(kube, NS, "web", ME) == ["web-1"]
    assert HOLD_ANNOTATION not in kube.annotations("ReplicaSet", "web-1")
    assert kube.annotations("ReplicaSet", "web-2")[HOLD_ANNOTATION] == "Rollback/other"


def _replicas(n: int):  # type: ignore[no-untyped-def]
    return lambda w: w["spec"]["replicas"] == n


def test_hold_with_takes_the_hold_and_makes_the_change_in_one_patch() -> None:
    kube = FakeKube()
    known = copy.deepcopy(kube.add_deployment("web", 2))
    answer = hold_with(
        kube, "Deployment", known, ME, "replica-a", {"spec": {"replicas": 6}}, _replicas(2)
    )
    assert answer is not None and answer["spec"]["replicas"] == 6
    assert kube.annotations("Deployment", "web")[HOLD_ANNOTATION] == ME
    assert kube.annotations("Deployment", "web")[HOLD_INSTANCE_ANNOTATION] == "replica-a"
    assert kube.calls == [("patch", "Deployment", "web")]


def test_hold_with_goes_again_when_only_what_was_not_recorded_changed() -> None:
    """The Deployment controller wrote its status in between: a new resourceVersion, the
    same replicas. The record still stands: the patch goes again, on the fresh copy."""
    kube = FakeKube()
    known = copy.deepcopy(kube.add_deployment("web", 2))
    kube.obj("Deployment", "web")["metadata"]["resourceVersion"] = "9999"
    answer = hold_with(kube, "Deployment", known, ME, "", {"spec": {"replicas": 6}}, _replicas(2))
    assert answer is not None and kube.obj("Deployment", "web")["spec"]["replicas"] == 6
    assert kube.calls.count(("patch", "Deployment", "web")) == 2


@pytest.mark.parametrize("who", ["someone-scaled", "another-holds", "gone"])
def test_hold_with_changes_nothing_when_the_decision_no_longer_stands(who: str) -> None:
    kube = FakeKube()
    known = copy.deepcopy(kube.add_deployment("web", 2))
    live = kube.obj("Deployment", "web")
    live["metadata"]["resourceVersion"] = "9999"
    if who == "someone-scaled":
        live["spec"]["replicas"] = 3
    elif who == "another-holds":
        live["metadata"]["annotations"][HOLD_ANNOTATION] = "Rollback/now"
    else:
        kube.store.pop(("Deployment", NS, "web"))
    answer = hold_with(kube, "Deployment", known, ME, "", {"spec": {"replicas": 6}}, _replicas(2))
    assert answer is None
    if who != "gone":
        assert kube.obj("Deployment", "web")["spec"]["replicas"] in (2, 3)
        assert kube.annotations("Deployment", "web").get(HOLD_ANNOTATION) != ME


def test_hold_with_gives_up_after_its_attempts() -> None:
    kube = FakeKube()
    known = copy.deepcopy(kube.add_deployment("web", 2))

    def bump(call: tuple[str, ...]) -> None:
        meta = kube.obj("Deployment", "web")["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1000)

    kube.before_write = bump
    with pytest.raises(Conflict):
        hold_with(kube, "Deployment", known, ME, "", {"spec": {"replicas": 6}}, _replicas(2))
    assert kube.calls.count(("patch", "Deployment", "web")) == ATTEMPTS
