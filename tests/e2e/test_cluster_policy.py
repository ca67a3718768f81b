"""The organisation's minimums (MaintenancePolicy, cluster-scoped) against the real API
server and the operator with deploy/'s RBAC.

A namespace labelled tier=production, a MaintenancePolicy demanding 2 approvals there,
and a window of rita's that asks for 1 itself: alice's approval is not enough, and the
Approved condition names the policy; bob's makes it start. A policy created, or a label
removed, while a window waits re-evaluates it at once (both are watched). The
cluster-scoped objects each test creates are deleted by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.crs import cond, get_cr, wait_condition, wait_phase
from support.identity import approve_as, create_as, grant
from support.kube import Cluster
from support.operator import OperatorProcess
from support.wait import wait_for

MW = "MaintenanceWindow"
API = "ops.mailscore.com/v1alpha1"
GROUP, VERSION, POLICIES = "ops.mailscore.com", "v1alpha1", "maintenancepolicies"


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def window(namespace: str, name: str, starts_in: timedelta, approvers: list[str]) -> Any:
    """rita's window: asks itself for 1 approval from alice or bob, 1 s of notice."""
    return {
        "apiVersion": API,
        "kind": MW,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "start": rfc3339(datetime.now(UTC) + starts_in),
            "duration": "1m",
            "policy": {
                "minimumNotice": "1s",
                "approvals": {"required": 1, "approvers": approvers},
            },
            "approvals": [],
        },
    }


class Policies:
    """MaintenancePolicies this test creates, deleted at its end (they outlive namespaces)."""

    def __init__(self, kube: Cluster, namespace: str) -> None:
        self.api = client.CustomObjectsApi(kube.api)
        self.namespace = namespace
        self.names: list[str] = []

    def create(self, suffix: str, spec: dict[str, Any]) -> str:
        name = f"{self.namespace}-{suffix}"[:253]
        body = {"apiVersion": API, "kind": "MaintenancePolicy", "metadata": {"name": name}}
        self.api.create_cluster_custom_object(GROUP, VERSION, POLICIES, {**body, "spec": spec})
        self.names.append(name)
        return name

    def delete_all(self) -> None:
        for name in self.names:
            try:
                self.api.delete_cluster_custom_object(GROUP, VERSION, POLICIES, name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture
def production(kube: Cluster, namespace: str) -> Iterator[tuple[str, Policies]]:
    """The namespace labelled tier=production (and with its own name, so the policies of
    this test govern it alone), rita who may edit it, alice and bob who may approve."""
    labels = {"tier": "production", "e2e-namespace": namespace}
    client.CoreV1Api(kube.api).patch_namespace(namespace, {"metadata": {"labels": labels}})
    grant(kube, namespace, "edit", "rita")
    grant(kube, namespace, "runbook-approve", "alice", "bob")
    policies = Policies(kube, namespace)
    try:
        yield namespace, policies
    finally:
        policies.delete_all()


def two_approvals(namespace: str) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"tier": "production", "e2e-namespace": namespace}},
        "approvals": {"required": 2},
    }


def approved_message(kube: Cluster, ns: str, name: str) -> str:
    return str(cond(get_cr(kube.api, ns, MW, name), "Approved")["message"])


def test_a_production_window_needs_the_cluster_s_two_approvals(
    kube: Cluster, operator: OperatorProcess, production: tuple[str, Policies]
) -> None:
    ns, policies = production
    name = policies.create("minimums", two_approvals(ns))
    source = f"cluster policy {name} for namespaces e2e-namespace={ns},tier=production"
    create_as(kube, "rita", window(ns, "mw", timedelta(seconds=45), ["alice", "bob"]))

    approve_as(kube, ns, "mw", "alice")
    wanted = f"Needs 2 approvals ({source}); has 1 (alice); waiting for 1 more from bob."
    wait_for(
        lambda: approved_message(kube, ns, "mw") == wanted,
        timeout=30,
        what="the Approved condition naming the cluster policy",
    )
    stored = get_cr(kube.api, ns, MW, "mw")
    assert cond(stored, "Approved")["status"] == "False"
    assert stored["status"]["phase"] == "Pending"
    assert stored["status"]["governedBy"] == [name]
    # The window's own rule (1 approval) is met; the cluster's is not, so it is not Approved.
    assert stored["status"]["approvals"][0]["counted"] is True

    approve_as(kube, ns, "mw", "bob")
    approved = wait_condition(kube.api, ns, MW, "mw", "Approved", "True", timeout=30)
    assert cond(approved, "Approved")["message"] == (
        f"Approved by alice, bob (2 of 1 needed by the window's own policy; "
        f"2 of 2 needed by {source})."
    )
    wait_phase(kube.api, ns, MW, "mw", "Active", timeout=90)


def test_a_policy_created_or_a_label_removed_re_evaluates_a_waiting_window(
    kube: Cluster, operator: OperatorProcess, production: tuple[str, Policies]
) -> None:
    ns, policies = production
    create_as(kube, "rita", window(ns, "mw", timedelta(hours=2), ["alice", "bob"]))
    approve_as(kube, ns, "mw", "alice")
    wait_condition(kube.api, ns, MW, "mw", "Approved", "True", timeout=30)

    # The cluster's minimum appears: nothing of the window changed, yet it is re-judged.
    name = policies.create("later", two_approvals(ns))
    wait_condition(kube.api, ns, MW, "mw", "Approved", "False", reason="NotApproved", timeout=40)
    assert f"Needs 2 approvals (cluster policy {name} " in approved_message(kube, ns, "mw")
    assert get_cr(kube.api, ns, MW, "mw")["status"]["governedBy"] == [name]

    # The namespace is no longer production: the policy no longer governs it.
    client.CoreV1Api(kube.api).patch_namespace(ns, {"metadata": {"labels": {"tier": None}}})
    wait_condition(kube.api, ns, MW, "mw", "Approved", "True", timeout=40)
    assert get_cr(kube.api, ns, MW, "mw")["status"].get("governedBy", []) == []
