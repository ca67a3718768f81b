"""The operator under test and the namespaces it serves.

`operator` (session): CRDs from crds/ and the RBAC from deploy/ applied as
admin, a token minted for the deploy/ ServiceAccount, and `runbook-operator
run` started as that account, serving only namespaces named `<prefix>-*` so
that several test sessions can share one cluster without acting on each
other's objects.

`namespace` (per test): a fresh namespace served by that operator, deleted
afterwards (in the background, so the operator can still run finalizers).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.kube import (
    Cluster,
    create_namespace,
    delete_namespace,
    mint_service_account_kubeconfig,
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
    """The access-control part of deploy/ exactly as users get it (not the Deployment)."""
    rendered = kube.run_kubectl("kustomize", str(ROOT / "deploy")).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in RBAC_KINDS]
    subprocess.run(
        [
            kube.kubectl,
            f"--kubeconfig={kube.kubeconfig}",
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
        ],
        input=yaml.safe_dump_all(docs),
        text=True,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def operator_credentials(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the operator's ServiceAccount, bound by deploy/'s RBAC."""
    apply_crds(kube)
    apply_rbac(kube)
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
