"""A MaintenancePolicy through the real MaintenanceWindow kind on the core (FakeKube).

The logic's tests (test_minimums.py) judge every combination; these prove the handler
reads the cluster's policies and the namespace's labels, records which govern the
window, watches them, and that the window starts only once the cluster's minimum is met.
"""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.adapters.kube import Forbidden, NotFound
from support.maintenancewindow_fakes import NS, Sim, mail_score

START = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
POLICIES = "maintenancepolicies"
SOURCE = "cluster policy production-minimums for namespaces tier=production"
WINDOW: dict[str, Any] = {
    "start": START.isoformat(),
    "duration": "1h",
    "policy": {
        "minimumNotice": "1h",
        "approvals": {"required": 1, "approvers": ["alice", "bob"]},
    },
    "approvals": [{"approver": "alice", "planRevision": 1}],
    "scaleDown": [{"name": "mail-score-backend", "replicas": 1}],
}


def production(approvals: int = 2, notice: str = "24h") -> dict[str, Any]:
    return {
        "metadata": {"name": "production-minimums"},
        "spec": {
            "namespaceSelector": {"matchLabels": {"tier": "production"}},
            "minimumNotice": notice,
            "approvals": {"required": approvals},
        },
    }


def sim(labels: dict[str, str] | None = None, policy: dict[str, Any] | None = None) -> Sim:
    s = Sim(
        spec=copy.deepcopy(WINDOW),
        now=START - timedelta(minutes=2),
        created=START - timedelta(days=2),
    )
    mail_score(s.kube)
    s.kube.label_namespace(NS, {"tier": "production"} if labels is None else labels)
    s.kube.add_cluster_custom(POLICIES, policy or production())
    return s


def condition(s: Sim, kind: str) -> dict[str, Any]:
    return next(c for c in s.status["conditions"] if c["type"] == kind)


def test_one_approval_is_not_enough_where_the_cluster_demands_two() -> None:
    s = sim()
    result = s.one()
    approved = condition(s, "Approved")
    assert approved["status"] == "False" and approved["reason"] == "NotApproved"
    assert approved["message"] == (
        f"Needs 2 approvals ({SOURCE}); has 1 (alice); waiting for 1 more from bob."
    )
    assert s.status["governedBy"] == ["production-minimums"]
    assert result is not None
    assert {("MaintenancePolicy", "*"), ("Namespace", NS)} <= result.watch
    ready = condition(s, "Ready")
    assert ready["reason"] == "PolicyNotMet" and SOURCE in ready["message"]


def test_without_the_second_approval_it_is_blocked_at_the_start() -> None:
    s = sim()
    s.run_until(lambda s: s.phase == "Blocked")
    stalled = condition(s, "Stalled")
    assert stalled["reason"] == "NotApproved"
    assert f"Needs 2 approvals ({SOURCE}); has 1 (alice)" in stalled["message"]
    assert s.kube.obj("Deployment", "mail-score-backend")["spec"]["replicas"] == 3


def test_the_second_approval_lets_it_start() -> None:
    s = sim()
    s.one()
    s.edit(approvals=[*WINDOW["approvals"], {"approver": "bob", "planRevision": 1}])
    s.one()
    assert condition(s, "Approved")["status"] == "True"
    s.run_until(lambda s: s.phase == "Active")
    assert s.kube.obj("Deployment", "mail-score-backend")["spec"]["replicas"] == 1


def test_an_unlabelled_namespace_is_not_governed() -> None:
    s = sim(labels={})
    s.one()
    assert condition(s, "Approved")["status"] == "True"
    assert s.status.get("governedBy", []) == []


def test_the_cluster_notice_applies_to_a_window_asking_for_less() -> None:
    s = sim(policy=production(approvals=1, notice="72h"))
    s.one()
    notice = condition(s, "NoticeGiven")
    assert notice["status"] == "False"
    assert notice["message"] == (
        f"Created only 48h before the start; needs at least 72h of notice ({SOURCE})."
    )


def test_policies_that_cannot_be_read_block_rather_than_waive() -> None:
    s = sim()
    s.kube.read_errors[(POLICIES, "*")] = Forbidden("maintenancepolicies is forbidden")
    s.run_until(lambda s: s.phase == "Blocked")
    assert condition(s, "Approved")["reason"] == "ClusterPolicyUnknown"
    assert "maintenancepolicies is forbidden" in condition(s, "NoticeGiven")["message"]


def test_without_the_kind_installed_there_is_no_cluster_minimum() -> None:
    s = sim()
    s.kube.read_errors[(POLICIES, "*")] = NotFound("the server could not find the resource")
    s.one()
    assert condition(s, "Approved")["status"] == "True"


def test_a_window_already_active_is_not_stopped_by_a_new_policy() -> None:
    s = sim(labels={})
    s.run_until(lambda s: s.phase == "Active")
    s.kube.label_namespace(NS, {"tier": "production"})
    result = s.one()
    assert s.phase == "Active"
    assert result is not None and ("MaintenancePolicy", "*") not in result.watch


def test_the_example_policy_is_valid_and_governs_production() -> None:
    from pathlib import Path

    import yaml

    from runbook_operator.kinds.maintenancewindow.api import MaintenancePolicySpec

    root = Path(__file__).resolve().parents[3]
    doc = yaml.safe_load((root / "examples/maintenancewindow/production-minimums.yaml").read_text())
    assert doc["kind"] == "MaintenancePolicy" and "namespace" not in doc["metadata"]
    spec = MaintenancePolicySpec.model_validate(doc["spec"])
    assert spec.approvals is not None and spec.approvals.required == 2
    s = sim(policy=doc)
    s.one()
    assert s.status["governedBy"] == ["production-minimums"]


def test_the_namespace_and_the_policies_are_read_side_by_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neither read needs the other: one after another, they were two round trips before
    the window's first change. Each waits here until the other has begun too."""
    s = sim()
    both = threading.Barrier(2, timeout=2)
    for name in ("get_namespace", "list_cluster_custom"):
        real = getattr(s.kube, name)
        waited: list[bool] = []

        def meeting(*args: Any, real: Any = real, waited: list[bool] = waited, **kw: Any) -> Any:
            if not waited:
                waited.append(True)
                both.wait()
            return real(*args, **kw)

        monkeypatch.setattr(s.kube, name, meeting)
    s.one()
    assert condition(s, "Approved")["reason"] != "ClusterPolicyUnknown"
    assert s.status["governedBy"] == ["production-minimums"]
