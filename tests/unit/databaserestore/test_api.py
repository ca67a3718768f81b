"""DatabaseRestore's models: defaults, bounds, the CRD they render."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from runbook_operator.crdgen import crd, render_all
from runbook_operator.kinds import RESOURCES
from runbook_operator.kinds.databaserestore.api import (
    DATABASE_RESTORE,
    DatabaseRestoreSpec,
    DatabaseRestoreStatus,
)


def test_restore_spec() -> None:
    restore = DatabaseRestoreSpec.model_validate({"backup": "nightly"})
    assert restore.safety_backup is True
    assert restore.target_database is None and restore.confirm is None
    with pytest.raises(ValidationError):
        DatabaseRestoreSpec.model_validate({"backup": "nightly", "targetDatabase": "bad name"})
    with pytest.raises(ValidationError):
        DatabaseRestoreSpec.model_validate({})


def _schema() -> dict[str, Any]:
    return crd(DATABASE_RESTORE)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_backup_and_target_are_immutable() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    for field in ("backup", "targetDatabase"):
        assert [r["rule"] for r in spec[field]["x-kubernetes-validations"]] == ["self == oldSelf"]
    assert "x-kubernetes-validations" not in spec["confirm"]  # may be typed out later


def test_crd_is_structural_and_registered() -> None:
    assert DATABASE_RESTORE in RESOURCES
    text = render_all()["ops.mailscore.com_databaserestores.yaml"]
    assert "$ref" not in text and "anyOf" not in text and "title:" not in text
    doc = yaml.safe_load(text)
    columns = [c["name"] for c in doc["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == [
        "Phase",
        "Backup",
        "Database",
        "Ready",
        "Reason",
        "Restoring",
        "Authorized",
        "Safety Backup",
        "Age",
    ]


def test_every_status_field_is_documented() -> None:
    status = _schema()["properties"]["status"]["properties"]
    missing = [name for name, node in status.items() if "description" not in node]
    assert missing == []
    assert "description" in status["connection"]["properties"]["credentials"]


@pytest.mark.parametrize(
    ("phase", "done"), [("Completed", True), ("Failed", True), ("Blocked", False)]
)
def test_done(phase: str, done: bool) -> None:
    assert DatabaseRestoreStatus(phase=phase).is_done() is done  # type: ignore[arg-type,unused-ignore]
