"""deploy/argocd and deploy/flux cover every kind the operator serves, under the right keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runbook_operator.apigroup import GROUP, VERSION
from runbook_operator.kinds import kinds

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
KINDS = sorted(k.resource.kind for k in kinds())


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_one_argocd_cm_patch_per_kind_with_its_health_key() -> None:
    for kind in KINDS:
        (doc,) = load(DEPLOY / "argocd" / f"{kind.lower()}.yaml")
        assert (doc["kind"], doc["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
        assert list(doc["data"]) == [f"resource.customizations.health.{GROUP}_{kind}"]
        script = doc["data"][f"resource.customizations.health.{GROUP}_{kind}"]
        assert "return" in script and "obj.status" in script


def test_the_argocd_kustomization_applies_every_patch() -> None:
    (k,) = load(DEPLOY / "argocd" / "kustomization.yaml")
    assert k["resources"] == ["argocd-cm.yaml"] and k["namespace"] == "argocd"
    assert sorted(p["path"] for p in k["patches"]) == sorted(f"{n.lower()}.yaml" for n in KINDS)


def test_the_flux_example_waits_and_has_expressions_for_every_kind() -> None:
    (k,) = load(DEPLOY / "flux" / "mail-score-runbook.yaml")
    assert k["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1" and k["kind"] == "Kustomization"
    assert k["spec"]["wait"] is True
    exprs = k["spec"]["healthCheckExprs"]
    assert sorted(e["kind"] for e in exprs) == KINDS
    for e in exprs:
        assert e["apiVersion"] == f"{GROUP}/{VERSION}"
        assert {"current", "inProgress", "failed"} <= set(e)


def test_the_operator_deploy_kustomization_leaves_gitops_pieces_out() -> None:
    (k,) = load(DEPLOY / "kustomization.yaml")
    assert not any(r.startswith(("argocd", "flux")) for r in k["resources"])
