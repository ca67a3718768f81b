"""DatabaseBackup's models: defaults, bounds, the CRD they render, what status records."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from runbook_operator.core.postgres import SslMode
from runbook_operator.crdgen import crd, render_all
from runbook_operator.kinds import RESOURCES
from runbook_operator.kinds.databasebackup.api import (
    DATABASE_BACKUP,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
    DeletionPolicy,
    VerifyMethod,
)

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
    assert s.postgres.ssl_mode is None and s.postgres.sslmode == SslMode.PREFER
    assert s.postgres.require_auth == "scram-sha-256"
    assert s.postgres.credentials.username_key == "username"
    assert s.postgres.credentials.password_key == "password"
    assert s.verify == VerifyMethod.READABLE
    assert s.schedule is None and not s.suspend
    assert s.deletion_policy == DeletionPolicy.DELETE


def test_wire_is_camel_case() -> None:
    wire = spec(schedule="0 2 * * *", timeZone="Europe/Paris", keep={"maxAge": "720h"}).wire()
    assert "sslMode" not in wire["postgres"]  # prefer, or verify-full with a CA
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


def _schema() -> dict[str, Any]:
    return crd(DATABASE_BACKUP)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_crd_carries_the_rules_the_api_server_enforces() -> None:
    rules = _rules(_schema())
    assert "has(oldSelf.schedule) || self == oldSelf" in rules  # one-shots are immutable
    assert "has(self.schedule) || !has(self.keep)" in rules
    assert any("self.matches(" in r for r in rules)  # cron and durations
    assert any("duration(self) >= duration('1s')" in r for r in rules)  # 0.0000001s refused


def test_time_zone_is_checked_by_the_api_server_and_by_the_operator() -> None:
    zone = _schema()["properties"]["spec"]["properties"]["timeZone"]
    assert zone["pattern"] == r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        spec(schedule="@daily", timeZone="Mars/Olympus")  # the API server cannot tell
    assert spec(schedule="@daily", timeZone="Europe/Paris").time_zone == "Europe/Paris"


@pytest.mark.parametrize("field", ["startingDeadline", "keep"])
def test_durations_shorter_than_a_second_are_refused(field: str) -> None:
    value: Any = "0.0000001s" if field == "startingDeadline" else {"maxAge": "0.0000001s"}
    with pytest.raises(ValidationError, match="shorter than 1s"):
        spec(schedule="@daily", **{field: value})


def test_crd_is_structural_and_registered() -> None:
    assert DATABASE_BACKUP in RESOURCES
    text = render_all()["ops.mailscore.com_databasebackups.yaml"]
    assert "$ref" not in text and "anyOf" not in text and "title:" not in text
    doc = yaml.safe_load(text)
    assert doc["spec"]["names"]["categories"] == ["runbook"]
    columns = [c["name"] for c in doc["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == [
        "Phase",
        "Database",
        "Schedule",
        "Size",
        "Verified",
        "Completed",
        "Next",
        "Reason",
        "Location",
        "Age",
    ]


def test_every_status_field_is_documented() -> None:
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

    assert undocumented(_schema()["properties"]["status"], "status") == []


def test_status_records_what_deletion_needs() -> None:
    status = DatabaseBackupStatus.model_validate(
        {
            "scheduled": False,
            "deletionPolicy": "Retain",
            "connection": POSTGRES,
            "verification": {"method": "restore", "scratchDatabase": "runbook_verify_x"},
        }
    )
    assert status.deletion_policy == DeletionPolicy.RETAIN
    assert status.connection is not None and status.connection.host == "postgres"
    assert status.wire()["connection"]["credentials"] == {
        "secretName": "postgres-credentials",
        "usernameKey": "username",
        "passwordKey": "password",
    }


@pytest.mark.parametrize(
    ("phase", "scheduled", "done"),
    [
        ("Completed", False, True),
        ("Failed", None, True),
        ("Running", False, False),
        ("Failed", True, False),  # a schedule whose spec was unusable carries on once fixed
        ("Scheduled", True, False),
    ],
)
def test_only_a_finished_one_shot_is_done(phase: str, scheduled: bool | None, done: bool) -> None:
    status = DatabaseBackupStatus.model_validate({"phase": phase, "scheduled": scheduled})
    assert status.is_done() is done


def test_a_ca_makes_verify_full_the_default() -> None:
    s = spec(postgres={**POSTGRES, "ca": {"name": "pg-ca"}})
    assert s.postgres.ca is not None and s.postgres.ca.key == "ca.crt"
    assert s.postgres.sslmode == "verify-full"


def test_an_explicit_ssl_mode_wins_over_the_ca_default() -> None:
    s = spec(postgres={**POSTGRES, "ca": {"name": "pg-ca"}, "sslMode": "verify-ca"})
    assert s.postgres.sslmode == "verify-ca"
