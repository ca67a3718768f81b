"""DatabaseBackup and DatabaseRestore models: defaults, bounds, and the CRDs they render."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from runbook_operator.api import RESOURCES
from runbook_operator.api.databasebackup import (
    DATABASE_BACKUP,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
    DeletionPolicy,
    SslMode,
    VerifyMethod,
)
from runbook_operator.api.databaserestore import DATABASE_RESTORE, DatabaseRestoreSpec
from runbook_operator.crdgen import crd, render_all

POSTGRES = {
    "host": "postgres",
    "database": "mail_score",
    "credentials": {"secretName": "postgres-credentials"},
}


def spec(**extra: Any) -> DatabaseBackupSpec:
    return DatabaseBackupSpec.model_validate({"postgres": POSTGRES, **extra})


def test_defaults_are_what_the_runbook_needs() -> None:
    s = spec()
    assert s.postgres.port == 5432
    assert s.postgres.ssl_mode == SslMode.PREFER
    assert s.postgres.credentials.username_key == "username"
    assert s.postgres.credentials.password_key == "password"
    assert s.verify == VerifyMethod.READABLE
    assert s.schedule is None and not s.suspend
    assert s.deletion_policy == DeletionPolicy.DELETE


def test_wire_is_camel_case() -> None:
    wire = spec(schedule="0 2 * * *", timeZone="Europe/Paris", keep={"maxAge": "720h"}).wire()
    assert wire["postgres"]["sslMode"] == "prefer"
    assert wire["postgres"]["credentials"]["secretName"] == "postgres-credentials"
    assert wire["timeZone"] == "Europe/Paris"
    assert wire["keep"] == {"last": 7, "maxAge": "720h", "failed": 3}
    assert wire["deletionPolicy"] == "Delete"


@pytest.mark.parametrize(
    "postgres",
    [
        {**POSTGRES, "port": 0},
        {**POSTGRES, "port": 70000},
        {**POSTGRES, "host": "-bad"},
        {**POSTGRES, "host": "has space"},
        {**POSTGRES, "database": "mail;score"},
        {**POSTGRES, "database": "x" * 64},
        {**POSTGRES, "database": "a=b"},
        {**POSTGRES, "sslMode": "sometimes"},
        {k: v for k, v in POSTGRES.items() if k != "credentials"},
        {**POSTGRES, "credentials": {"secretName": "Not_A_Name"}},
    ],
)
def test_bad_connections_are_refused(postgres: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DatabaseBackupSpec.model_validate({"postgres": postgres})


@pytest.mark.parametrize(
    "extra",
    [
        {"verify": "sometimes"},
        {"schedule": "every night"},
        {"schedule": "0 2 * *"},
        {"startingDeadline": "0s"},
        {"keep": {"last": 0}},
        {"keep": {"failed": -1}},
        {"keep": {"maxAge": "1d"}},
        {"timeZone": "Europe Paris"},
        {"deletionPolicy": "Keep"},
    ],
)
def test_bad_options_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        spec(**extra)


def test_status_reads_what_the_operator_writes() -> None:
    status = DatabaseBackupStatus.model_validate(
        {
            "phase": "Completed",
            "startedAt": "2025-01-01T02:00:00Z",
            "completedAt": "2025-01-01T02:01:00Z",
            "tables": [{"schema": "public", "name": "messages", "rows": 3}],
            "sizeBytes": 10,
        }
    )
    assert status.tables[0].schema_ == "public"
    assert status.wire()["tables"] == [{"schema": "public", "name": "messages", "rows": 3}]


def test_restore_spec() -> None:
    restore = DatabaseRestoreSpec.model_validate({"backup": "nightly"})
    assert restore.safety_backup is True
    assert restore.target_database is None and restore.confirm is None
    with pytest.raises(ValidationError):
        DatabaseRestoreSpec.model_validate({"backup": "nightly", "targetDatabase": "bad name"})
    with pytest.raises(ValidationError):
        DatabaseRestoreSpec.model_validate({})


def _rules(node: Any) -> list[str]:
    """Every CEL rule anywhere in a schema."""
    found: list[str] = []
    if isinstance(node, dict):
        found += [r["rule"] for r in node.get("x-kubernetes-validations", [])]
        for value in node.values():
            found += _rules(value)
    elif isinstance(node, list):
        for value in node:
            found += _rules(value)
    return found


def test_crds_carry_the_rules_the_api_server_enforces() -> None:
    backup = crd(DATABASE_BACKUP)["spec"]["versions"][0]
    rules = _rules(backup["schema"])
    assert "has(oldSelf.schedule) || self == oldSelf" in rules  # one-shots are immutable
    assert "has(self.schedule) || !has(self.keep)" in rules
    assert any("self.matches(" in r for r in rules)  # cron and durations
    restore = crd(DATABASE_RESTORE)["spec"]["versions"][0]
    assert _rules(restore["schema"]).count("self == oldSelf") == 2  # backup, targetDatabase


def test_crds_are_structural_and_registered() -> None:
    assert DATABASE_BACKUP in RESOURCES and DATABASE_RESTORE in RESOURCES
    rendered = render_all()
    for plural in ("databasebackups", "databaserestores"):
        text = rendered[f"ops.mailscore.com_{plural}.yaml"]
        assert "$ref" not in text and "anyOf" not in text and "title:" not in text
        doc = yaml.safe_load(text)
        assert doc["spec"]["names"]["categories"] == ["runbook"]
        columns = [c["name"] for c in doc["spec"]["versions"][0]["additionalPrinterColumns"]]
        assert columns[0] == "Phase"


def test_every_field_is_documented() -> None:
    def undocumented(node: Any, path: str) -> list[str]:
        out = []
        if isinstance(node, dict):
            for name, child in (node.get("properties") or {}).items():
                if "description" not in child:
                    out.append(f"{path}.{name}")
                out += undocumented(child, f"{path}.{name}")
            if "items" in node:
                out += undocumented(node["items"], f"{path}[]")
        return out

    for resource in (DATABASE_BACKUP, DATABASE_RESTORE):
        schema = crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert undocumented(schema["properties"]["spec"], "spec") == []
        missing = undocumented(schema["properties"]["status"], "status")
        assert missing == [], missing
