"""The EmergencyScale API: pydantic validation, the generated CRD, the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from runbook_operator.adapters.urls import redact
from runbook_operator.crdgen import crd
from runbook_operator.kinds.emergencyscale.api import (
    EMERGENCY_SCALE,
    EmergencyScaleSpec,
    EmergencyScaleStatus,
    TargetKind,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples" / "emergencyscale").glob("*.yaml"))


def spec(**fields: Any) -> EmergencyScaleSpec:
    fields.setdefault("targets", [{"name": "mail-score-frontend", "replicas": 6}])
    return EmergencyScaleSpec.model_validate(fields)


def test_defaults() -> None:
    es = spec()
    assert es.targets[0].kind == TargetKind.DEPLOYMENT
    assert es.revert is True
    assert es.duration is None and es.trigger is None and es.cooldown is None


@pytest.mark.parametrize(
    "targets",
    [
        [],
        [{"name": "x", "replicas": -1}],
        [{"name": "x", "replicas": 1001}],
        [{"name": "x", "replicas": 3, "maxReplicas": 0}],
        [{"name": "Not_A_Name", "replicas": 3}],
        [{"kind": "DaemonSet", "name": "x", "replicas": 3}],
        [{"name": f"d{i}", "replicas": 1} for i in range(51)],
    ],
)
def test_bad_targets_are_refused(targets: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        spec(targets=targets)


@pytest.mark.parametrize("duration", ["2 hours", "0s", "-5m", ""])
def test_bad_durations_are_refused(duration: str) -> None:
    with pytest.raises(ValidationError):
        spec(duration=duration)


def test_wire_format_is_camel_case() -> None:
    es = spec(
        targets=[{"name": "mail-score-backend", "replicas": 10, "maxReplicas": 15}],
        trigger={"query": "q", "threshold": 1, "for": "2m", "onNoData": "Activate"},
        cooldown="10m",
    )
    wire = es.wire()
    assert wire["targets"][0]["maxReplicas"] == 15
    assert wire["trigger"]["for"] == "2m"
    assert wire["trigger"]["onNoData"] == "Activate"


def test_status_round_trips() -> None:
    raw = {
        "phase": "Active",
        "originals": [
            {"name": "a", "hpa": "h", "replicas": 3, "minReplicas": 3, "maxReplicas": 10}
        ],
        "activatedAt": "2026-03-01T12:00:00Z",
        "gate": {"value": 0.2, "holds": True, "since": "2026-03-01T12:00:00Z"},
        "endReason": "Expired",
    }
    status = EmergencyScaleStatus.model_validate(raw)
    assert status.model_dump(mode="json", by_alias=True, exclude_none=True)["originals"] == [
        {
            "kind": "Deployment",
            "name": "a",
            "hpa": "h",
            "replicas": 3,
            "minReplicas": 3,
            "maxReplicas": 10,
        }
    ]


# --- the CRD ---------------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    version = crd(EMERGENCY_SCALE)["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"])


def _rules(node: dict[str, Any]) -> list[str]:
    return [r["message"] for r in node.get("x-kubernetes-validations", [])]


def test_crd_carries_the_rules_with_their_messages() -> None:
    spec_schema = _schema()["properties"]["spec"]
    assert _rules(spec_schema) == [
        "each workload may be listed only once in targets",
        "cooldown applies only with a trigger (without one, use duration)",
        "a trigger cannot be added or removed once the EmergencyScale exists; "
        "create a new one instead",
    ]
    target = spec_schema["properties"]["targets"]["items"]
    assert _rules(target) == ["maxReplicas must be at least replicas (it is the HPA's upper bound)"]
    assert target["properties"]["replicas"]["maximum"] == 1000
    assert spec_schema["properties"]["targets"]["maxItems"] == 50


def _walk(node: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, child in (node.get("properties") or {}).items():
        if name not in {"apiVersion", "kind", "metadata"} and not child.get("description"):
            missing.append(f"{path}.{name}")
        missing += _walk(child, f"{path}.{name}")
    if "items" in node:
        missing += _walk(node["items"], f"{path}[]")
    return missing


def test_every_field_is_documented() -> None:
    schema = _schema()
    assert _walk(schema["properties"]["spec"], "spec") == []
    assert _walk(schema["properties"]["status"], "status") == []


def test_printer_columns_answer_where_is_it() -> None:
    columns = {
        c["name"]: c
        for c in crd(EMERGENCY_SCALE)["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert list(columns)[:6] == ["Phase", "Targets", "Duration", "Active", "Expires", "Ready"]
    assert columns["Expires"]["type"] == "string"  # a date column shows future times as <invalid>
    names = crd(EMERGENCY_SCALE)["spec"]["names"]
    assert names["shortNames"] == ["escale", "es"]
    assert names["categories"] == ["runbook"]


def test_committed_crd_is_current() -> None:
    from runbook_operator.crdgen import render_all

    name = "ops.mailscore.com_emergencyscales.yaml"
    assert (ROOT / "crds" / name).read_text() == render_all()[name]


# --- examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_are_valid(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    assert manifest["kind"] == "EmergencyScale"
    assert manifest["apiVersion"] == "ops.mailscore.com/v1alpha1"
    EmergencyScaleSpec.model_validate(manifest["spec"])
    assert path.read_text().startswith("# Runbook:")


def test_the_runbook_example_is_the_runbook() -> None:
    manifest = yaml.safe_load((ROOT / "examples/emergencyscale/high-traffic.yaml").read_text())
    targets = {t["name"]: t for t in manifest["spec"]["targets"]}
    assert targets["mail-score-backend"] == {
        "name": "mail-score-backend",
        "replicas": 10,
        "maxReplicas": 15,
    }
    assert targets["mail-score-frontend"]["replicas"] == 6


# --- the Prometheus adapter's pure parts ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://prometheus:9090", "http://prometheus:9090"),
        ("http://user:s3cret@prometheus:9090/prom", "http://prometheus:9090/prom"),
        ("https://token@prom.example", "https://prom.example"),
    ],
)
def test_urls_are_shown_without_credentials(url: str, shown: str) -> None:
    assert redact(url) == shown
