"""The operator under test and the namespaces it serves.

`operator` (session): CRDs from crds/, the RBAC and the admission policies from
deploy/ applied as admin (and waited for until the API server enforces them), a
token minted for the deploy/ ServiceAccount, and `runbook-operator run` started as
that account, serving only namespaces named `<prefix>-*` so that several test
sessions can share one cluster without acting on each other's objects.

`namespace` (per test): a fresh namespace served by that operator, deleted
afterwards (in the background, so the operator can still run finalizers).
"""

from __future__ import annotations

import functools
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from runbook_operator.core.names import FINALIZER
from support.identity import Refused, as_user, grant
from support.kube import (
    Cluster,
    apply_objects,
    create_namespace,
    delete_namespace,
    finalizer_where_served,
    mint_service_account_kubeconfig,
    render_kustomization,
    unique_name,
)
from support.operator import OperatorProcess, running_operator
from support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVICE_ACCOUNT = ("runbook-system", "runbook-operator")
RBAC_KINDS = {
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
}
ADMISSION_KINDS = {
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
PROBE_USER = "runbook-admission-probe"
"""Has runbook-edit in `default` and nothing else: each policy refuses something of theirs."""


def apply_crds(kube: Cluster) -> None:
    """The CRDs, usable once this returns: Established, and every kind and the `runbook`
    category served by discovery (the same script as `make run`)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-crds.sh"), kube.kubectl],
        env={**os.environ, "KUBECONFIG": str(kube.kubeconfig)},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(f"installing the CRDs failed:\n{done.stderr}")


def apply_rbac(kube: Cluster) -> None:
    """The access-control part of deploy/ exactly as users get it (not the Deployment):
    RBAC, and the admission policies, enforced once this returns."""
    rendered = render_kustomization(kube, ROOT / "deploy", RBAC_KINDS | ADMISSION_KINDS)
    apply_objects(kube, finalizer_where_served(rendered))
    wait_admission_enforced(kube)


def _probe(kind: str, spec: dict[str, object]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": kind,
            "metadata": {"name": "admission-probe", "namespace": "default"},
            "spec": spec,
        }
    )


PROBES = {
    # policy name -> an object PROBE_USER may create by RBAC that the policy refuses
    "runbook-maintenancewindow-approvals": _probe(
        "MaintenanceWindow",
        {"start": "2030-01-01T00:00:00Z", "duration": "1h", "approvals": [{"approver": "x"}]},
    ),
    "runbook-maintenancewindow-access": _probe(
        "MaintenanceWindow",
        {"start": "2030-01-01T00:00:00Z", "duration": "1h", "maintenanceMode": {}},
    ),
    "runbook-databasebackup-access": _probe(
        "DatabaseBackup",
        {"postgres": {"host": "h", "database": "d", "credentials": {"secretName": "s"}}},
    ),
    "runbook-databaserestore-access": _probe("DatabaseRestore", {"backup": "b"}),
    "runbook-workload-access": _probe(
        "EmergencyScale", {"targets": [{"name": "d", "replicas": 1}]}
    ),
    "runbook-secret-access": _probe(
        "CacheFlush",
        {"redis": {"host": "h", "credentials": {"secretName": "s"}}, "confirm": "h:6379/0"},
    ),
    "runbook-backupdestination-access": _probe(
        "BackupDestination",
        {"s3": {"endpoint": "http://h", "bucket": "bkt", "credentials": {"secretName": "s"}}},
    ),
}


def wait_admission_enforced(kube: Cluster) -> None:
    """Policies take a moment to be enforced after they are created: until each refuses
    its probe (a server-side dry run) and the requester is stamped, they are not."""
    grant(kube, "default", "runbook-edit", PROBE_USER)
    grant(kube, "default", "runbook-destinations", PROBE_USER)

    def refused(policy: str, manifest: str) -> bool:
        try:
            as_user(kube, PROBE_USER, "create", "--dry-run=server", "-f", "-", stdin=manifest)
        except Refused as refusal:
            return policy in refusal.message
        return False

    def stamped() -> bool:
        manifest = _probe("MaintenanceWindow", {"start": "2030-01-01T00:00:00Z", "duration": "1h"})
        try:
            out = as_user(
                kube,
                PROBE_USER,
                "create",
                "--dry-run=server",
                "-o",
                "yaml",
                "-f",
                "-",
                stdin=manifest,
            )
        except Refused:
            return False
        meta = yaml.safe_load(out)["metadata"]
        notes = meta.get("annotations") or {}
        finalized = FINALIZER in (meta.get("finalizers") or [])  # deploy/admission/finalizer
        return notes.get("ops.mailscore.com/requested-by") == PROBE_USER and finalized

    for policy, manifest in PROBES.items():
        wait_for(
            functools.partial(refused, policy, manifest), timeout=60, what=f"{policy} enforced"
        )
    wait_for(stamped, timeout=60, what="runbook-requested-by and runbook-finalizer stamping")


@pytest.fixture(scope="session")
def deploy_installed(kube: Cluster) -> None:
    """The CRDs, and deploy/'s RBAC and admission policies, in force."""
    apply_crds(kube)
    apply_rbac(kube)


@pytest.fixture(scope="session")
def operator_credentials(
    kube: Cluster, deploy_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig for the operator's ServiceAccount, bound by deploy/'s RBAC."""
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    namespace, name = SERVICE_ACCOUNT
    wait_for(
        lambda: (
            mint_service_account_kubeconfig(
                kube.api_client, namespace, name, path, expiration_seconds=24 * 3600
            )
            or True
        ),
        timeout=30,
        what="a token for the operator's ServiceAccount",
    )
    return path


@pytest.fixture(scope="session")
def operator(
    operator_credentials: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    prefix = f"rbe2e-{secrets.token_hex(3)}"
    workdir = tmp_path_factory.mktemp("operator-run")
    with running_operator(operator_credentials, workdir, prefix) as process:
        yield process


@pytest.fixture
def namespace(
    kube: Cluster, operator: OperatorProcess, request: pytest.FixtureRequest
) -> Iterator[str]:
    name = create_namespace(kube.api_client, unique_name(request.node.name, prefix=operator.prefix))
    try:
        yield name
    finally:
        if not operator.running:  # a crash test left it down: the next test needs it
            operator.start()
        delete_namespace(kube.api_client, name)
