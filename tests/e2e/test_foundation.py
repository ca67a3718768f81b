"""The API server accepts what we ship, and the operator runs with least privilege."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from support.kube import Cluster
from support.operator import OperatorProcess
from support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
SA = "system:serviceaccount:runbook-system:runbook-operator"


def test_every_crd_is_established_with_descriptions(
    kube: Cluster, operator_credentials: Path
) -> None:
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        got = kube.run_kubectl("get", "crd", name, "-o", "yaml").stdout
        status = yaml.safe_load(got)["status"]
        established = {c["type"]: c["status"] for c in status["conditions"]}
        assert established.get("Established") == "True", name
        assert established.get("NonStructuralSchema") != "True", name
        plural = crd["spec"]["names"]["plural"]
        explained = kube.run_kubectl("explain", f"{plural}.spec").stdout
        assert "DESCRIPTION" in explained or "FIELDS" in explained
        assert (
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
                "description"
            ].split()[0]
            in explained
        )


def test_runbook_category_lists_every_operation(kube: Cluster, operator_credentials: Path) -> None:
    kinds = kube.run_kubectl("api-resources", "--categories=runbook", "-o", "name").stdout.split()
    names = [yaml.safe_load(p.read_text())["spec"]["names"] for p in (ROOT / "crds").glob("*.yaml")]
    operations = {n["plural"] for n in names if "runbook" in (n.get("categories") or [])}
    assert {"emergencyscales", "rollbacks", "healthreports"} <= operations
    assert "notifiers" not in operations  # configuration, not an operation
    assert {k.split(".")[0] for k in kinds} == operations


def _examples() -> list[Path]:
    return sorted(p for p in (ROOT / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", _examples(), ids=lambda p: str(p.relative_to(ROOT / "examples")))
def test_every_example_is_accepted(kube: Cluster, namespace: str, path: Path) -> None:
    result = kube.run_kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(path), check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("list", "secrets", "no"),
        ("watch", "secrets", "no"),
        ("delete", "deployments.apps", "no"),
        ("create", "deployments.apps", "no"),
        ("delete", "namespaces", "no"),
        ("create", "events", "yes"),
        ("watch", "emergencyscales.ops.mailscore.com", "yes"),
        ("patch", "emergencyscales.ops.mailscore.com/status", "yes"),
        ("watch", "maintenancepolicies.ops.mailscore.com", "yes"),
        ("patch", "maintenancepolicies.ops.mailscore.com", "no"),
    ],
)
def test_service_account_rbac(
    kube: Cluster, operator_credentials: Path, verb: str, resource: str, allowed: str
) -> None:
    sub = resource.split("/")
    args = ["auth", "can-i", verb, sub[0], "--as", SA, "-n", "default"]
    if len(sub) > 1:
        args += ["--subresource", sub[1]]
    result = kube.run_kubectl(*args, check=False)
    assert result.stdout.strip() == allowed, (verb, resource, result.stdout, result.stderr)


def test_operator_starts_serves_metrics_and_stops_cleanly(
    operator_credentials: Path, tmp_path: Path
) -> None:
    process = OperatorProcess(
        kubeconfig=operator_credentials,
        namespaces=["rbe2e-idle-*"],
        log_path=tmp_path / "operator.log",
        backup_root=tmp_path,
        prefix="rbe2e-idle",
    )
    began = time.monotonic()
    process.start()
    started_in = time.monotonic() - began
    try:
        metrics = wait_for(process.metrics, timeout=10, what="/metrics")
        assert "runbook_reconciliations_total" in metrics
        records = wait_for(
            lambda: [r for r in process.logs() if "started" in r.get("message", "")],
            timeout=10,
            what="a JSON start-up log line",
        )
        assert records[0]["message"]
    finally:
        code = process.stop()
    assert code == 0, process.tail()
    print(f"operator ready in {started_in:.2f} s")  # figure for the closing note
    assert "Traceback" not in process.raw_log()


def test_operator_refuses_nothing_it_needs(operator: OperatorProcess) -> None:
    """Every request the operator made so far was allowed by deploy/'s RBAC.

    An RBAC refusal reads `User "system:serviceaccount:..." cannot list resource ...`;
    other 403s (e.g. writing events into a namespace being deleted) are not about RBAC.
    """
    denied = re.findall(r"cannot \w+ resource \\?\"[\w./]+", operator.raw_log())
    assert not denied, sorted(set(denied))
