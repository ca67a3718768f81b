"""The DatabaseBackup/Restore handlers' own helpers, with a fake Kubernetes adapter."""

from __future__ import annotations

import time
from typing import Any

import pytest

from runbook_operator.adapters.kube import Forbidden, NotFound
from runbook_operator.api.databasebackup import BackupPhase, DatabaseBackupStatus, PostgresRef
from runbook_operator.handlers import databasebackup as handlers
from runbook_operator.handlers import databasebackup_common as common
from runbook_operator.handlers import databaserestore as restore_handlers

REF = PostgresRef.model_validate(
    {
        "host": "postgres",
        "port": 5433,
        "database": "mail_score",
        "sslMode": "require",
        "credentials": {"secretName": "pg", "passwordKey": "pw"},
    }
)


class FakeKube:
    def __init__(self, data: dict[str, bytes] | None = None, error: Exception | None = None):
        self.data = data or {}
        self.error = error
        self.reads: list[tuple[str, str, str]] = []

    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        self.reads.append((namespace, name, key))
        if self.error:
            raise self.error
        if key not in self.data:
            raise NotFound(f"Secret {name} has no key {key!r}")
        return self.data[key]


def test_credentials_read_the_named_keys() -> None:
    kube = FakeKube({"username": b"backup", "pw": b"s3cret"})
    server = common.credentials(kube, "team-a", REF)  # type: ignore[arg-type]
    assert (server.host, server.port, server.database) == ("postgres", 5433, "mail_score")
    assert (server.user, server.password, server.sslmode) == ("backup", "s3cret", "require")
    assert kube.reads == [("team-a", "pg", "username"), ("team-a", "pg", "pw")]
    assert "s3cret" not in repr(server)


def test_missing_credentials_say_which() -> None:
    with pytest.raises(common.CredentialsError, match="keys 'username' and 'pw'") as caught:
        common.credentials(FakeKube({"username": b"u"}), "ns", REF)  # type: ignore[arg-type]
    assert caught.value.reason == "CredentialsNotFound"


def test_forbidden_credentials() -> None:
    kube = FakeKube(error=Forbidden("secrets is forbidden"))
    with pytest.raises(common.CredentialsForbidden) as caught:
        common.credentials(kube, "ns", REF)  # type: ignore[arg-type]
    assert caught.value.reason == "CredentialsForbidden"


def test_undecodable_credentials() -> None:
    kube = FakeKube({"username": b"\xff", "pw": b"x"})
    with pytest.raises(common.CredentialsError, match="not UTF-8"):
        common.credentials(kube, "ns", REF)  # type: ignore[arg-type]


def test_status_patch_sets_changes_and_nulls_removals() -> None:
    old = DatabaseBackupStatus(phase=BackupPhase.RUNNING, attempt=1, location="file:///x.dump")
    new = DatabaseBackupStatus(phase=BackupPhase.COMPLETED, attempt=1)
    assert common.status_patch(old, new) == {"phase": "Completed", "location": None}
    assert common.status_patch(new, new) == {}


def test_a_pass_waits_for_its_own_status_write() -> None:
    jobs = common.Jobs()
    written = DatabaseBackupStatus(phase=BackupPhase.RUNNING, attempt=2)
    stale = DatabaseBackupStatus(phase=BackupPhase.RUNNING, attempt=1)
    assert not jobs.is_stale("uid", stale)  # nothing written yet
    jobs.expect("uid", written)
    assert jobs.is_stale("uid", stale)
    assert not jobs.is_stale("uid", written)  # arrived: expectation cleared
    assert not jobs.is_stale("uid", stale)


def test_a_lost_status_write_is_not_waited_for_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = common.Jobs()
    jobs.expect("uid", DatabaseBackupStatus(attempt=2))
    later = time.monotonic() + common.STALE_SECONDS + 1
    monkeypatch.setattr(common.time, "monotonic", lambda: later)
    assert not jobs.is_stale("uid", DatabaseBackupStatus(attempt=1))


def test_tried_steps_are_remembered_per_attempt() -> None:
    jobs = common.Jobs()
    jobs.mark("uid", 1, "Dumping")
    assert jobs.has_tried("uid", 1, "Dumping")
    assert not jobs.has_tried("uid", 2, "Dumping")
    assert not jobs.has_tried("uid", 1, "Verifying")
    assert common.Jobs().runner != jobs.runner


@pytest.mark.parametrize(
    ("spec", "status", "ticks"),
    [
        ({"schedule": "@daily"}, {"phase": "Scheduled"}, True),
        ({"schedule": "@daily"}, {"phase": "Failed"}, True),
        ({}, None, True),
        ({}, {"phase": "Running"}, True),
        ({}, {"phase": "Completed"}, False),
        ({}, {"phase": "Failed"}, False),
    ],
)
def test_timer_only_for_unfinished_work(
    spec: dict[str, Any], status: dict[str, Any] | None, ticks: bool
) -> None:
    assert handlers._ticking(spec=spec, status=status) is ticks


@pytest.mark.parametrize(
    ("phase", "ticks"), [(None, True), ("Blocked", True), ("Completed", False)]
)
def test_restore_timer(phase: str | None, ticks: bool) -> None:
    status = {"phase": phase} if phase else None
    assert restore_handlers._ticking(status=status) is ticks


def test_scratch_database_name_fits_and_is_stable() -> None:
    name = handlers.scratch_database("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    assert name == "runbook_verify_0f1e2d3c4b5a" and len(name) <= 63
