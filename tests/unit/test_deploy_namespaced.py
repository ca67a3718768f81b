"""deploy/namespaced: the operator's rules bound per served namespace, none cluster-wide.

The files as written (rendering them is the e2e module's job, with the test bed's
kubectl): every operation's ClusterRole is gathered into the namespaced one, each served
namespace has its RoleBinding and its --namespace, and the ClusterRoleBindings go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAMESPACED = DEPLOY / "namespaced"
LABEL = "ops.mailscore.com/aggregate-to-operator"
SERVICE_ACCOUNT = {
    "kind": "ServiceAccount",
    "name": "runbook-operator",
    "namespace": "runbook-system",
}


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def operator_cluster_roles() -> dict[str, dict[str, Any]]:
    """The ClusterRoles deploy/ binds cluster-wide to the operator's ServiceAccount."""
    files = sorted(f for f in (DEPLOY / "rbac").glob("*.yaml") if f.name != "kustomization.yaml")
    docs = [d for f in files for d in load(f)]
    bound = {
        d["roleRef"]["name"]
        for d in docs
        if d["kind"] == "ClusterRoleBinding" and SERVICE_ACCOUNT in d["subjects"]
    }
    roles = [d for d in docs if d["kind"] == "ClusterRole"]
    return {r["metadata"]["name"]: r for r in roles if r["metadata"]["name"] in bound}


def test_every_operator_cluster_role_is_gathered_into_the_namespaced_one() -> None:
    roles = operator_cluster_roles()
    assert len(roles) >= 10
    unlabelled = [
        n for n, r in roles.items() if r["metadata"].get("labels", {}).get(LABEL) != "true"
    ]
    assert unlabelled == []
    (aggregate,) = load(NAMESPACED / "operator-role.yaml")
    selectors = aggregate["aggregationRule"]["clusterRoleSelectors"]
    assert selectors == [{"matchLabels": {LABEL: "true"}}]


def test_each_served_namespace_has_its_rolebinding_and_its_argument() -> None:
    bindings = load(NAMESPACED / "served.yaml")
    assert {b["kind"] for b in bindings} == {"RoleBinding"}
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "ClusterRole"
        assert binding["roleRef"]["name"] == "runbook-operator-namespaced"
        assert binding["subjects"] == [SERVICE_ACCOUNT]
    (patch,) = load(NAMESPACED / "args.yaml")
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[0] == "run"
    served = [a.removeprefix("--namespace=") for a in args[1:]]
    assert served == [b["metadata"]["namespace"] for b in bindings]
    assert not any(c in n for n in served for c in "*?[")  # exact names: no cluster-wide watch
    # The finalizer is put on at creation in these namespaces and no other.
    (binding,) = load(NAMESPACED / "finalizer-binding.yaml")
    assert binding["kind"] == "MutatingAdmissionPolicyBinding"
    assert binding["metadata"]["name"] == binding["spec"]["policyName"] == "runbook-finalizer"
    (names,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert (names["key"], names["operator"]) == ("kubernetes.io/metadata.name", "In")
    assert names["values"] == served
    (kustomization,) = load(NAMESPACED / "kustomization.yaml")
    assert {"path": "finalizer-binding.yaml"} in kustomization["patches"]


def test_the_cluster_role_bindings_of_deploy_are_removed() -> None:
    (kustomization,) = load(NAMESPACED / "kustomization.yaml")
    assert "namespace" not in kustomization  # each served RoleBinding keeps its own
    deletions = [p for p in kustomization["patches"] if "$patch: delete" in p.get("patch", "")]
    assert [p["target"] for p in deletions] == [
        {"kind": "ClusterRoleBinding", "name": "runbook-operator-.*"}
    ]


def test_the_one_cluster_wide_grant_reads_policies_and_namespaces_only() -> None:
    role, binding = load(NAMESPACED / "cluster-read.yaml")
    assert binding["kind"] == "ClusterRoleBinding" and binding["subjects"] == [SERVICE_ACCOUNT]
    assert not binding["metadata"]["name"].startswith("runbook-operator-")  # not deleted
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {
        (resource, verb)
        for resource in ("maintenancepolicies", "namespaces")
        for verb in ("get", "list", "watch")
    }
