"""The MaintenanceWindow model: defaults, validation, and what the CRD carries."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from runbook_operator.crdgen import crd
from runbook_operator.kinds import RESOURCES
from runbook_operator.kinds.maintenancewindow.api import (
    MAINTENANCE_WINDOW,
    MaintenanceWindowSpec,
    MaintenanceWindowStatus,
    WindowPhase,
)


def spec(**fields: Any) -> MaintenanceWindowSpec:
    return MaintenanceWindowSpec.model_validate(
        {"start": "2025-03-02T02:00:00Z", "duration": "2h", **fields}
    )


def schema() -> dict[str, Any]:
    version = crd(MAINTENANCE_WINDOW)["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_registered() -> None:
    assert MAINTENANCE_WINDOW in RESOURCES


def test_defaults_are_the_runbooks() -> None:
    s = spec(maintenanceMode={}, scaleDown=[{"name": "mail-score-backend", "replicas": 1}])
    assert s.policy.minimum_notice == "24h"
    assert s.starting_deadline == "5m"
    assert s.rollout_timeout == "10m"
    assert s.maintenance_mode is not None
    assert (s.maintenance_mode.config_map, s.maintenance_mode.key, s.maintenance_mode.value) == (
        "frontend-config",
        "MAINTENANCE_MODE",
        "true",
    )
    assert s.cancel is False and s.approvals == [] and s.silence is None


def test_camel_case_on_the_wire() -> None:
    s = spec(policy={"backup": {"name": "nightly", "maxAge": "12h"}}, timeZone=None)
    wire = s.wire()
    assert wire["policy"]["backup"] == {"name": "nightly", "maxAge": "12h"}
    assert "minimumNotice" in wire["policy"] and "startingDeadline" in wire


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"duration": "0s"}, "shorter than 1s"),
        ({"duration": "two hours"}, "not a duration"),
        ({"timeZone": "Mars/Olympus"}, "IANA time zone"),
        ({"start": "2025-03-02T02:00:00"}, "timezone"),
        ({"scaleDown": [{"name": "x", "replicas": -1}]}, "greater than or equal"),
        ({"emergency": {"reason": "   "}}, "pattern"),
        ({"schedule": "every sunday"}, "cron"),
        (
            {"silence": {"url": "alertmanager:9093", "matchers": [{"name": "a", "value": "b"}]}},
            "pattern",
        ),
        ({"silence": {"url": "http://am:9093", "matchers": []}}, "at least 1"),
    ],
)
def test_rejected_by_the_model(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        spec(**fields)


def test_spec_rules_on_the_crd() -> None:
    spec_schema = schema()["properties"]["spec"]
    messages = [r["message"] for r in spec_schema["x-kubernetes-validations"]]
    assert any("either start" in m for m in messages)
    assert any("timeZone applies to schedule" in m for m in messages)
    assert any("emergency window is a one-off" in m for m in messages)
    assert any("start cannot be changed" in m for m in messages)
    assert any("cannot be resumed" in m for m in messages)
    assert spec_schema["required"] == ["duration"]


def test_lists_are_maps_keyed_by_name() -> None:
    props = schema()["properties"]["spec"]["properties"]
    assert props["approvals"]["x-kubernetes-list-map-keys"] == ["approver"]
    assert props["scaleDown"]["x-kubernetes-list-map-keys"] == ["name"]
    restart = props["maintenanceMode"]["properties"]["restart"]
    assert restart["x-kubernetes-list-type"] == "map"


def test_health_check_needs_exactly_one_kind() -> None:
    health = schema()["properties"]["spec"]["properties"]["healthCheck"]
    assert health["x-kubernetes-validations"][0]["rule"] == "has(self.http) != has(self.prometheus)"


def test_every_field_is_documented() -> None:
    def walk(node: dict[str, Any], path: str) -> list[str]:
        missing = []
        for name, sub in node.get("properties", {}).items():
            if name not in ("apiVersion", "kind", "metadata") and not sub.get("description"):
                missing.append(f"{path}.{name}")
            missing += walk(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            missing += walk(node["items"], f"{path}[]")
        return missing

    assert walk(schema(), "") == []


def test_printer_columns_answer_where_is_it() -> None:
    columns = crd(MAINTENANCE_WINDOW)["spec"]["versions"][0]["additionalPrinterColumns"]
    names = [c["name"] for c in columns]
    assert names[:4] == ["Phase", "Start", "End", "Reason"] and names[-1] == "Age"
    # Future instants as strings: kubectl shows a `date` column in the future as <invalid>.
    assert {c["type"] for c in columns if c["name"] in ("Start", "End")} == {"string"}


def test_status_phase_contract_with_databaserestore() -> None:
    assert WindowPhase.ACTIVE == "Active"
    status = MaintenanceWindowStatus.model_validate({"phase": "Active"})
    assert status.wire()["phase"] == "Active"
