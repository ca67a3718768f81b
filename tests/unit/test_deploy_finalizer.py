"""deploy/admission/finalizer.yaml: the operator's finalizer on every operation at its
creation, for exactly the kinds the operator carries out (the e2e suite shows the API
server applying it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runbook_operator.apigroup import GROUP
from runbook_operator.core.names import FINALIZER
from runbook_operator.kinds import KINDS

ADMISSION = Path(__file__).resolve().parents[2] / "deploy" / "admission"


def documents() -> list[dict[str, Any]]:
    text = (ADMISSION / "finalizer.yaml").read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def test_it_matches_the_creation_of_every_kind_the_operator_carries_out() -> None:
    policy, _ = documents()
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == [GROUP]
    assert rule["operations"] == ["CREATE"]  # removed by hand later, it is not put back
    assert sorted(rule["resources"]) == sorted(k.resource.plural for k in KINDS())
    assert "maintenancepolicies" not in rule["resources"]  # read only: nothing would remove it


def test_it_adds_the_operators_own_finalizer_once() -> None:
    policy, _ = documents()
    (variable,) = policy["spec"]["variables"]
    assert variable["expression"] == repr(FINALIZER)
    (mutation,) = policy["spec"]["mutations"]
    expression = mutation["jsonPatch"]["expression"]
    assert expression.startswith("variables.finalizer in object.metadata.?finalizers")
    assert policy["spec"]["failurePolicy"] == "Fail"


def test_its_binding_covers_every_namespace_and_is_installed() -> None:
    policy, binding = documents()
    assert binding["kind"] == "MutatingAdmissionPolicyBinding"
    assert binding["spec"] == {"policyName": policy["metadata"]["name"]}
    kustomization = yaml.safe_load((ADMISSION / "kustomization.yaml").read_text())
    assert "finalizer.yaml" in kustomization["resources"]
