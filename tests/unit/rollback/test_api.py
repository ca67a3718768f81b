"""The Rollback's models and the CRD rendered from them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from runbook_operator.crdgen import crd
from runbook_operator.kinds import RESOURCES
from runbook_operator.kinds.rollback.api import (
    ROLLBACK,
    RollbackPhase,
    RollbackSpec,
    RollbackStatus,
    TargetState,
)


def _schema() -> dict[str, Any]:
    return crd(ROLLBACK)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_registered() -> None:
    assert ROLLBACK in RESOURCES
    names = crd(ROLLBACK)["spec"]["names"]
    assert names["shortNames"] == ["rb"] and names["categories"] == ["runbook"]


def test_minimal_spec_rolls_back_to_the_previous_revision() -> None:
    spec = RollbackSpec.model_validate({"targets": [{"name": "mail-score-backend"}]})
    assert spec.targets[0].to_revision is None and spec.trigger is None


@pytest.mark.parametrize(
    "body",
    [
        {"targets": []},
        {"targets": [{"name": "Bad_Name"}]},
        {"targets": [{"name": "web", "toRevision": 0}]},
        {"targets": [{"name": "web"}], "trigger": {"query": "up", "threshold": 1}},  # no window
        {"targets": [{"name": "web"}], "trigger": {"query": "up", "threshold": 1, "window": "0s"}},
        {"targets": [{"name": "web"}], "trigger": {"query": "", "threshold": 1, "window": "1m"}},
    ],
)
def test_invalid_specs_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RollbackSpec.model_validate(body)


def test_armed_spec_reads_the_prometheus_condition_and_window() -> None:
    spec = RollbackSpec.model_validate(
        {
            "targets": [{"name": "web"}],
            "trigger": {"query": "errors", "threshold": 0.05, "for": "2m", "window": "30m"},
        }
    )
    assert spec.trigger is not None
    assert (spec.trigger.for_, spec.trigger.window, spec.trigger.comparison.value) == (
        "2m",
        "30m",
        ">",
    )


def test_cel_rules_carry_plain_messages() -> None:
    rules = {
        r["message"]: r["rule"] for r in _schema()["properties"]["spec"]["x-kubernetes-validations"]
    }
    assert "each Deployment may be listed only once in targets" in rules
    assert any("toRevision cannot be combined with trigger" in m for m in rules)
    assert any(m.startswith("targets cannot be changed") for m in rules)
    assert any(m.startswith("trigger cannot be added, removed or changed") for m in rules)


def test_every_field_is_documented() -> None:
    def walk(node: dict[str, Any], path: str) -> list[str]:
        missing = []
        for name, sub in (node.get("properties") or {}).items():
            if name not in {"apiVersion", "kind", "metadata"} and not sub.get("description"):
                missing.append(f"{path}.{name}")
            missing += walk(sub, f"{path}.{name}")
            if isinstance(sub.get("items"), dict):
                missing += walk(sub["items"], f"{path}.{name}[]")
        return missing

    assert walk(_schema(), "") == []


def test_printer_columns_answer_where_is_it() -> None:
    columns = [c["name"] for c in crd(ROLLBACK)["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Phase", "Targets", "Ready", "Reason", "Completed", "Age"]


def test_status_round_trips_through_the_wire() -> None:
    wire = {
        "phase": "RollingBack",
        "targets": [
            {
                "name": "web",
                "state": "RollingOut",
                "fromRevision": 3,
                "toRevision": 2,
                "fromImages": ["app=web:3"],
                "appliedAt": "2024-05-01T12:00:00Z",
            }
        ],
        "trigger": {"holds": True, "firedAt": "2024-05-01T11:59:00Z"},
    }
    status = RollbackStatus.model_validate(wire)
    assert status.phase == RollbackPhase.ROLLING_BACK
    assert status.targets[0].state == TargetState.ROLLING_OUT
    again = RollbackStatus.model_validate(status.wire())
    assert again == status
