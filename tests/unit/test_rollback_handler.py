"""The Rollback handler's own decisions, with a fake Kube (the e2e tests use the real one)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from runbook_operator.adapters.kube import Conflict, NotFound
from runbook_operator.api.rollback import (
    RollbackPhase,
    RollbackSpec,
    RollbackStatus,
    TargetState,
    TargetStatus,
)
from runbook_operator.handlers import rollback as handler
from runbook_operator.logic import rollback as logic
from runbook_operator.names import HOLD_ANNOTATION
from support.rollback_objects import history

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOLDER = "Rollback/undo"
Obj = dict[str, Any]


class FakeKube:
    """Holds and patches recorded in memory, with the real Kube's contract."""

    def __init__(self, holders: dict[str, str] | None = None) -> None:
        self.holders = dict(holders or {})
        self.released: list[str] = []
        self.patched: list[tuple[str, list[Obj]]] = []
        self.rs_patches: list[tuple[str, Obj]] = []
        self.stored: Obj = {}
        self.conflict = False
        self.deployments: dict[str, Obj] = {}
        self.replica_sets: list[Obj] = []

    def acquire_hold(self, kind: str, namespace: str, name: str, holder: str) -> str | None:
        if name == "gone":
            raise NotFound("deployments.apps gone not found")
        current = self.holders.get(name)
        if current and current != holder:
            return current
        self.holders[name] = holder
        return None

    def release_hold(self, kind: str, namespace: str, name: str, holder: str) -> None:
        if self.holders.get(name) == holder:
            del self.holders[name]
            self.released.append(name)

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj:
        return self.stored

    def json_patch_deployment(self, namespace: str, name: str, operations: list[Obj]) -> Obj:
        if self.conflict:
            raise Conflict("the object has been modified")
        self.patched.append((name, operations))
        return {}

    def patch_replicaset(self, namespace: str, name: str, patch: Obj) -> Obj:
        self.rs_patches.append((name, patch))
        return {}

    def get_deployment(self, namespace: str, name: str) -> Obj:
        if name not in self.deployments:
            raise NotFound(f"deployments.apps {name} not found")
        return self.deployments[name]

    def list_replicasets(self, namespace: str, label_selector: str) -> list[Obj]:
        return self.replica_sets


class Body:
    """Just enough of kopf.Body for the helpers."""

    class metadata:
        namespace = "ns"
        name = "undo"


def test_merge_patch_sets_changes_and_removes_what_is_gone() -> None:
    old = {"phase": "Armed", "trigger": {"value": 1.0, "since": "t"}, "startedAt": "x"}
    new = {"phase": "Armed", "trigger": {"value": 2.0}, "targets": [{"name": "a"}]}
    assert handler.merge_patch(old, new) == {
        "startedAt": None,
        "trigger": {"value": 2.0, "since": None},
        "targets": [{"name": "a"}],
    }
    assert handler.merge_patch(new, new) == {}


def test_holds_are_taken_all_or_none() -> None:
    kube = FakeKube({"b": "EmergencyScale/surge"})
    plan = logic.Plan(RollbackStatus(phase=RollbackPhase.ROLLING_BACK), hold=("a", "b", "c"))
    result = handler._hold(kube, "ns", plan, RollbackStatus(), HOLDER, 1, NOW)  # type: ignore[arg-type]
    assert result.status is not None and result.status.phase == RollbackPhase.PENDING
    assert "EmergencyScale/surge" in result.status.conditions[0].message
    assert kube.holders == {"b": "EmergencyScale/surge"}  # "a" was given back, "c" never taken
    assert kube.released == ["a"]


def test_holds_taken_return_the_plan() -> None:
    kube = FakeKube()
    plan = logic.Plan(RollbackStatus(phase=RollbackPhase.ROLLING_BACK), hold=("a", "b"))
    assert handler._hold(kube, "ns", plan, RollbackStatus(), HOLDER, 1, NOW) is plan  # type: ignore[arg-type]
    assert kube.holders == {"a": HOLDER, "b": HOLDER}


def test_a_target_gone_while_holding_gives_everything_back() -> None:
    kube = FakeKube()
    plan = logic.Plan(RollbackStatus(), hold=("a", "gone"))
    with pytest.raises(Exception, match="disappeared"):
        handler._hold(kube, "ns", plan, RollbackStatus(), HOLDER, 1, NOW)  # type: ignore[arg-type]
    assert kube.holders == {}


def _planned() -> RollbackStatus:
    target = TargetStatus(name="web", state=TargetState.PLANNED, to_replica_set="web-abc")
    return RollbackStatus(phase=RollbackPhase.ROLLING_BACK, targets=[target])


def test_a_template_is_restored_only_once_its_decision_is_stored() -> None:
    kube = FakeKube()
    before = _planned()
    plan = logic.Plan(
        before.model_copy(update={"phase": RollbackPhase.ROLLING_BACK}),
        apply=("web", [{"op": "replace"}]),
    )
    kube.stored = {"status": {}}  # the decision has not reached the API server yet
    result = handler._apply(kube, Body, plan, before)  # type: ignore[arg-type]
    assert kube.patched == []
    assert result.status is before  # write the decision; restore on the next pass

    kube.stored = {"status": before.wire()}
    assert handler._apply(kube, Body, plan, before) is plan  # type: ignore[arg-type]
    assert kube.patched == [("web", [{"op": "replace"}])]


def test_a_conflict_while_restoring_writes_nothing() -> None:
    kube = FakeKube()
    before = _planned()
    kube.stored = {"status": before.wire()}
    kube.conflict = True
    plan = logic.Plan(before, apply=("web", []))
    result = handler._apply(kube, Body, plan, before)  # type: ignore[arg-type]
    assert result.status is None


def test_release_removes_our_hold_from_the_deployment_and_its_replica_sets() -> None:
    dep, sets = history()
    marked = copy.deepcopy(sets)
    marked[1]["metadata"]["annotations"][HOLD_ANNOTATION] = HOLDER
    marked[2]["metadata"]["annotations"][HOLD_ANNOTATION] = "EmergencyScale/other"
    kube = FakeKube({"web": HOLDER})
    handler._release(kube, "ns", "web", logic.Observed(dep, tuple(marked)), HOLDER)  # type: ignore[arg-type]
    assert kube.released == ["web"]
    assert kube.rs_patches == [
        (
            marked[1]["metadata"]["name"],
            {"metadata": {"resourceVersion": "500", "annotations": {HOLD_ANNOTATION: None}}},
        )
    ]


def _complete() -> RollbackStatus:
    target = TargetStatus(name="web", state=TargetState.COMPLETE, to_revision=2, message="done")
    return RollbackStatus(phase=RollbackPhase.ROLLING_BACK, targets=[target])


def test_after_release_a_clean_deployment_completes_in_the_same_pass() -> None:
    dep, sets = history()
    kube = FakeKube()
    kube.deployments, kube.replica_sets = {"web": dep}, sets
    spec = RollbackSpec.model_validate({"targets": [{"name": "web"}]})
    plan = logic.Plan(_complete(), release=("web",))
    result = handler._after_release(kube, "ns", spec, plan, HOLDER, 1, NOW)  # type: ignore[arg-type]
    assert result.status is not None and result.status.phase == RollbackPhase.COMPLETED
    assert [e.reason for e in result.events] == ["Completed"]


def test_after_release_a_mark_still_there_waits_for_the_next_pass() -> None:
    dep, sets = history()
    sets[2]["metadata"]["annotations"][HOLD_ANNOTATION] = HOLDER  # copied back meanwhile
    kube = FakeKube()
    kube.deployments, kube.replica_sets = {"web": dep}, sets
    spec = RollbackSpec.model_validate({"targets": [{"name": "web"}]})
    plan = logic.Plan(_complete(), release=("web",))
    assert handler._after_release(kube, "ns", spec, plan, HOLDER, 1, NOW) is plan  # type: ignore[arg-type]
