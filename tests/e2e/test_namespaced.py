"""Namespaced mode (deploy/namespaced): the operator serves its namespaces and holds nothing
cluster-wide.

An operator process runs as a ServiceAccount of this module's own that holds exactly what
deploy/namespaced grants: its rendered RBAC (kubectl kustomize), with the RoleBindings
pointed at this account and at this module's namespaces instead of the example ones. It
serves those namespaces by exact name, as deploy/namespaced/args.yaml does, and carries
out an EmergencyScale, the runbook's MaintenanceWindow, and a DatabaseBackup with its
restore there. It cannot read a Secret anywhere else, and an operation in a namespace it
does not serve is left untouched.

The namespaces are named `rbns-<hex>-*`: the session's shared operator (conftest) serves
only `rbe2e-<hex>-*`, so nothing here is acted on by two operators.
"""

from __future__ import annotations

import copy
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.alertmanager import (
    Alertmanager,
    alertmanager,  # noqa: F401  (fixture)
)
from support.app import deploy_app
from support.crs import cond, condition, create_cr, get_cr, wait_condition, wait_phase
from support.kube import (
    Cluster,
    api_client_from_kubeconfig,
    apply_objects,
    create_namespace,
    delete_namespace,
    mint_service_account_kubeconfig,
    render_kustomization,
)
from support.operator import LEASE_NAMESPACE, REPO, OperatorProcess
from support.postgres import AppDatabase, artifact, backup_spec, create_credentials
from support.postgres import mail_score as mail_score  # noqa: PLC0414  (a fixture)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

from .test_emergencyscale import (
    FRONTEND,
    example_spec,
    held_by,
    hpa_bounds,
    make_deployment,
    replicas,
    wait_es,
)
from .test_maintenancewindow import (
    BACKEND,
    approve,
    example_window,
    flag,
    ready_app_with_backup,
    snapshot,
)
from .test_maintenancewindow import deployment as deployment_obj

pytestmark = pytest.mark.timeout(300)

NAMESPACED = REPO / "deploy" / "namespaced"
AGGREGATE = "runbook-operator-namespaced"
DEPLOY_ACCOUNT = {
    "kind": "ServiceAccount",
    "name": "runbook-operator",
    "namespace": "runbook-system",
}


@dataclass
class Install:
    """The namespaced operator: its account, the namespaces it serves, one it does not."""

    operator: OperatorProcess
    kubeconfig: Path
    kubectl: str
    account: str
    scale: str
    window: str
    backup: str
    other: str

    @property
    def served(self) -> list[str]:
        return [self.scale, self.window, self.backup]


def namespaced_rbac(kube: Cluster, account: str, served: list[str]) -> list[dict[str, Any]]:
    """deploy/namespaced's RBAC as rendered, bound to ServiceAccount `account` (in the
    Lease's namespace) instead of deploy's, in `served` instead of the example namespaces."""
    kinds = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    docs = render_kustomization(kube, NAMESPACED, kinds)
    subject = {**DEPLOY_ACCOUNT, "name": account, "namespace": LEASE_NAMESPACE}
    out = [d for d in docs if d["kind"] in {"ClusterRole", "Role"}]
    # The one cluster-wide grant: reading MaintenancePolicies and Namespace labels.
    (reader,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    own_reader = copy.deepcopy(reader)
    own_reader["metadata"]["name"] = f"{reader['metadata']['name']}-{account}"
    out.append({**own_reader, "subjects": [subject]})
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert all(b["subjects"] == [DEPLOY_ACCOUNT] for b in bindings)
    served_binding = next(b for b in bindings if b["roleRef"]["name"] == AGGREGATE)
    for binding in bindings:
        if binding["roleRef"]["name"] == AGGREGATE:
            continue  # the example namespaces'
        # The Lease's: a binding of its own, beside deploy's (the shared operator's).
        own = copy.deepcopy(binding)
        own["metadata"]["name"] = f"{binding['metadata']['name']}-{account}"
        out.append({**own, "subjects": [subject]})
    for namespace in served:
        own = copy.deepcopy(served_binding)
        own["metadata"]["namespace"] = namespace
        out.append({**own, "subjects": [subject]})
    return out


def can_i(install: Install, *args: str) -> bool:
    """`kubectl auth can-i` as the operator's account (a SelfSubjectAccessReview)."""
    done = subprocess.run(
        [install.kubectl, f"--kubeconfig={install.kubeconfig}", "auth", "can-i", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() == "yes"


def nothing_refused(operator: OperatorProcess) -> None:
    """The operator was refused no request, and Kopf asked for no cluster-wide read."""
    log = operator.raw_log()
    assert re.findall(r"cannot \w+ resource \\?\"[\w./]+", log) == []
    assert "Not enough permissions" not in log


@pytest.fixture(scope="module")
def install(
    kube: Cluster, deploy_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Install]:
    prefix = f"rbns-{secrets.token_hex(3)}"
    workdir = tmp_path_factory.mktemp("namespaced")
    core = client.CoreV1Api(kube.api)
    account = f"runbook-operator-{prefix}"
    core.create_namespaced_service_account(LEASE_NAMESPACE, {"metadata": {"name": account}})
    names = [create_namespace(kube.api, f"{prefix}-{n}") for n in ("scale", "window", "backup")]
    other = create_namespace(kube.api, f"{prefix}-other", served=False)
    objects = namespaced_rbac(kube, account, names)
    apply_objects(kube, objects)
    kubeconfig = mint_service_account_kubeconfig(
        kube.api, LEASE_NAMESPACE, account, workdir / "kubeconfig", expiration_seconds=3600
    )
    operator = OperatorProcess(
        kubeconfig=kubeconfig,
        namespaces=names,
        log_path=REPO / ".testbed" / "logs" / f"operator-{prefix}.log",
        backup_root=workdir / "backups",
        prefix=prefix,
    )
    operator.backup_root.mkdir()
    scale, window, backup = names
    found = Install(operator, kubeconfig, kube.kubectl, account, scale, window, backup, other)
    # The aggregated ClusterRole is filled by the controller manager, a moment after.
    wait_for(
        lambda: all(can_i(found, "get", "secrets", "-n", n) for n in names),
        timeout=30,
        what=f"{AGGREGATE} in force for {account}",
    )
    operator.start()
    try:
        yield found
    finally:
        try:
            # Operations first, while the operator may still finalize them: deleting a
            # namespace deletes its RoleBinding too (README, "Namespaced mode").
            for namespace in names:
                kube.run_kubectl(
                    "delete", "runbook", "--all", "-n", namespace, "--timeout=100s", timeout=120
                )
        finally:
            operator.stop()
            for namespace in [*names, other]:
                delete_namespace(kube.api, namespace)
            rbac = client.RbacAuthorizationV1Api(kube.api)
            for obj in objects:
                if obj["kind"] == "RoleBinding" and obj["metadata"]["namespace"] == LEASE_NAMESPACE:
                    rbac.delete_namespaced_role_binding(obj["metadata"]["name"], LEASE_NAMESPACE)
                elif obj["kind"] == "ClusterRoleBinding":
                    rbac.delete_cluster_role_binding(obj["metadata"]["name"])
            core.delete_namespaced_service_account(account, LEASE_NAMESPACE)


# --- what the account may do -------------------------------------------------------------


def test_the_account_can_read_secrets_only_where_it_serves(kube: Cluster, install: Install) -> None:
    for namespace in install.served:
        assert can_i(install, "get", "secrets", "-n", namespace)
        assert not can_i(install, "list", "secrets", "-n", namespace)
        assert not can_i(install, "watch", "secrets", "-n", namespace)
        assert can_i(install, "patch", "configmaps", "-n", namespace)
        assert can_i(install, "create", "localsubjectaccessreviews", "-n", namespace)
    for namespace in (install.other, "kube-system", "default"):
        assert not can_i(install, "get", "secrets", "-n", namespace)
        assert not can_i(install, "patch", "deployments", "-n", namespace)
    assert not can_i(install, "get", "secrets", "--all-namespaces")
    assert not can_i(install, "patch", "namespaces")
    assert can_i(install, "list", "maintenancepolicies.ops.mailscore.com")
    assert not can_i(install, "patch", "maintenancepolicies.ops.mailscore.com")
    assert not can_i(install, "list", "customresourcedefinitions.apiextensions.k8s.io")
    assert not can_i(install, "create", "subjectaccessreviews.authorization.k8s.io")
    assert can_i(install, "update", "leases.coordination.k8s.io", "-n", LEASE_NAMESPACE)
    assert not can_i(install, "update", "leases.coordination.k8s.io", "-n", "kube-system")

    # A real read, refused by the API server.
    body = client.V1Secret(metadata=client.V1ObjectMeta(name="db"), string_data={"password": "x"})
    client.CoreV1Api(kube.api).create_namespaced_secret(install.other, body)
    as_operator = api_client_from_kubeconfig(install.kubeconfig)
    try:
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(as_operator).read_namespaced_secret("db", install.other)
    finally:
        as_operator.close()
    assert refused.value.status == 403
    nothing_refused(install.operator)


# --- operations where it serves -----------------------------------------------------------


def test_an_emergencyscale_scales_through_the_hpa_and_back(kube: Cluster, install: Install) -> None:
    namespace = install.scale
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, "EmergencyScale", "high-traffic", example_spec("20s"))

    wait_es(kube, namespace, "high-traffic", phase="Active", ready=("True", "Scaled"))
    assert hpa_bounds(kube, namespace) == (10, 15)
    assert replicas(kube, namespace, FRONTEND) == 6
    assert held_by(kube, namespace, FRONTEND) == "EmergencyScale/high-traffic"

    done = wait_es(kube, namespace, "high-traffic", phase="Completed", timeout=60)
    assert cond(done, "Ready")["reason"] == "Reverted"
    assert hpa_bounds(kube, namespace) == (3, 10)
    wait_for(lambda: replicas(kube, namespace, FRONTEND) == 2, timeout=10, what="frontend 2")
    assert held_by(kube, namespace, FRONTEND) is None
    nothing_refused(install.operator)


def test_the_runbook_maintenance_window_runs_and_restores_everything(
    kube: Cluster,
    install: Install,
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    namespace = install.window
    before = ready_app_with_backup(kube, namespace)
    spec = example_window(alertmanager, namespace, start_in=12, duration="20s")
    create_cr(kube.api, namespace, "MaintenanceWindow", "postgres-upgrade", spec)
    wait_for(
        lambda: condition(
            get_cr(kube.api, namespace, "MaintenanceWindow", "postgres-upgrade"), "Approved"
        ),
        timeout=20,
        what="the checklist evaluated",
    )
    approve(kube, namespace, "postgres-upgrade", "alice", "bob")

    active = wait_phase(
        kube.api, namespace, "MaintenanceWindow", "postgres-upgrade", "Active", timeout=60
    )
    assert flag(kube, namespace) == "true"
    assert deployment_obj(kube, namespace, BACKEND)["spec"]["replicas"] == 1
    assert len(alertmanager.active()) == 1
    assert active["status"]["silence"]["id"]

    done = wait_phase(
        kube.api, namespace, "MaintenanceWindow", "postgres-upgrade", "Completed", timeout=120
    )
    assert cond(done, "Ready")["status"] == "True"
    assert snapshot(kube, namespace) == before
    assert alertmanager.active() == []
    nothing_refused(install.operator)


def test_a_backup_and_its_restore(kube: Cluster, install: Install, mail_score: AppDatabase) -> None:
    api, namespace = kube.api, install.backup
    seeded = mail_score.fingerprint()
    create_credentials(api, namespace, mail_score)
    create_cr(api, namespace, "DatabaseBackup", "before-migration", backup_spec(mail_score))
    backup = wait_condition(
        api, namespace, "DatabaseBackup", "before-migration", "Ready", timeout=180
    )
    assert backup["status"]["phase"] == "Completed"
    assert artifact(backup).parent == install.operator.backup_root / namespace / "before-migration"

    mail_score.execute("DELETE FROM audit_log WHERE id > 100")
    assert mail_score.fingerprint() != seeded
    # Right before it overwrites, the operator asks again whether the requester may
    # restore: a LocalSubjectAccessReview, allowed by the RoleBinding in this namespace.
    create_cr(
        api,
        namespace,
        "DatabaseRestore",
        "recovery",
        {"backup": "before-migration", "confirm": mail_score.name},
    )
    restore = wait_condition(api, namespace, "DatabaseRestore", "recovery", "Ready", timeout=180)
    assert restore["status"]["phase"] == "Completed"
    assert mail_score.fingerprint() == seeded
    safety = get_cr(api, namespace, "DatabaseBackup", restore["status"]["safetyBackup"])
    assert safety["status"]["phase"] == "Completed"
    nothing_refused(install.operator)


# --- and nowhere else -----------------------------------------------------------------------


def test_an_operation_in_a_namespace_not_served_is_left_untouched(
    kube: Cluster, install: Install
) -> None:
    spec = {"targets": [{"name": "web", "replicas": 5}], "duration": "20s"}
    make_deployment(kube, install.other, "web", 2)
    create_cr(kube.api, install.other, "EmergencyScale", "elsewhere", spec)
    # The same operation where it serves: once that one acted, the other was seen long ago.
    make_deployment(kube, install.scale, "web", 2)
    create_cr(kube.api, install.scale, "EmergencyScale", "served", spec)
    wait_es(kube, install.scale, "served", phase="Active")

    untouched = get_cr(kube.api, install.other, "EmergencyScale", "elsewhere")
    assert "status" not in untouched
    assert not untouched["metadata"].get("finalizers")
    assert replicas(kube, install.other, "web") == 2
    assert held_by(kube, install.other, "web") is None
    posted = client.CoreV1Api(kube.api).list_namespaced_event(install.other).items
    assert [e for e in posted if e.involved_object.kind == "EmergencyScale"] == []
    assert install.other not in install.operator.raw_log()
    nothing_refused(install.operator)
