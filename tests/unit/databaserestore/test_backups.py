"""What a restore reads from other kinds' objects: backups and windows as the API serves them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runbook_operator.kinds.databaserestore import logic

NOW = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)
POSTGRES = {
    "host": "pg",
    "port": 5433,
    "database": "mail_score",
    "sslMode": "disable",
    "credentials": {"secretName": "pg"},
}


def backup(name: str, spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"postgres": POSTGRES, "verify": "readable", **(spec or {})},
        "status": status,
    }


def test_a_completed_backup() -> None:
    view = logic.backup_view(
        backup(
            "nightly",
            phase="Completed",
            completedAt="2025-01-01T03:00:00Z",
            location="file:///b/x.dump",
            sha256="ab" * 32,
            tables=[{"schema": "public", "name": "messages", "rows": 150}],
            conditions=[
                {
                    "type": "Verified",
                    "status": "True",
                    "reason": "Verified",
                    "lastTransitionTime": "2025-01-01T03:00:00Z",
                }
            ],
            unknownField="ignored",
        )
    )
    assert view.name == "nightly" and not view.scheduled and view.verified
    assert view.completed_at == NOW and view.location == "file:///b/x.dump"
    assert view.postgres is not None and view.postgres.port == 5433
    assert view.database == "mail_score"
    assert [(t.schema_, t.name, t.rows) for t in view.tables] == [("public", "messages", 150)]


def test_a_schedule_and_a_fresh_object() -> None:
    view = logic.backup_view(backup("nightly", {"schedule": "@daily"}))
    assert view.scheduled and view.phase is None and not view.verified and view.tables == ()


def test_a_spec_the_models_cannot_read_is_no_crash() -> None:
    view = logic.backup_view(backup("odd", {"postgres": {"host": "-bad"}, "schedule": "@daily"}))
    assert view.postgres is None and view.scheduled and view.database is None
    found = logic.backup_view(
        backup("odd", {"postgres": {"port": "x"}}, phase="Completed", location="l")
    )
    refusal = logic.resolve_backup("odd", found, [])
    assert isinstance(refusal, logic.Refusal) and refusal.reason == "BackupUnusable"
    assert not refusal.final


def test_active_windows() -> None:
    windows = [
        {"metadata": {"name": "a"}, "status": {"phase": "Active"}},
        {"metadata": {"name": "b"}, "status": {"phase": "Pending"}},
        {"metadata": {"name": "c"}},
    ]
    assert logic.active_windows(windows) == ["a"]


def test_safety_backup_phase() -> None:
    failed = backup(
        "s",
        phase="Failed",
        conditions=[
            {
                "type": "Ready",
                "status": "False",
                "reason": "AuthenticationFailed",
                "message": "rejected",
                "lastTransitionTime": "2025-01-01T03:00:00Z",
            }
        ],
    )
    assert logic.safety_backup_phase(failed) == ("Failed", "rejected")
    assert logic.safety_backup_phase(backup("s")) == (None, "")
