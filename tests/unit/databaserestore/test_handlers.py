"""DatabaseRestore's glue on the core, against the one FakeKube and the one FakePostgres.

What is checked is what the logic cannot see: nothing touched while refused, what it
watches meanwhile, the plan recorded before the safety backup is created, the claim
before pg_restore, the checksum before anything changes, a lost status write that is
recorded (never restored twice), a stopped pg_restore, and backups read as plain
objects of another kind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from runbook_operator.adapters import postgres as pg
from runbook_operator.adapters.kube import Conflict
from runbook_operator.core.names import FINALIZER, PRE_RESTORE_LABEL, SCHEDULE_LABEL
from runbook_operator.kinds.databaserestore.api import DatabaseRestoreStatus
from runbook_operator.kinds.databaserestore.handlers import DatabaseRestoreKind
from runbook_operator.settings import Settings
from support.fake_kube import NS, FakeKube
from support.fake_postgres import FakePostgres, archive
from support.passes import Harness

NAME, PLURAL, BACKUPS = "recovery", "databaserestores", "databasebackups"
PASSWORD = "s3cret-pw"
POSTGRES = {
    "host": "pg",
    "port": 5433,
    "database": "mail_score",
    "sslMode": "disable",
    "credentials": {"secretName": "pg"},
}
TABLES = {("public", "messages"): 150, ("billing", "Plans"): 3}
VERIFIED = {
    "type": "Verified",
    "status": "True",
    "reason": "Verified",
    "lastTransitionTime": "2026-01-01T02:05:00Z",
}


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_credentials("pg", {"username": "restorer", "password": PASSWORD})
    return k


@pytest.fixture
def db() -> FakePostgres:
    return FakePostgres({"mail_score": {("public", "messages"): 100}})  # rows were lost


@pytest.fixture
def h(kube: FakeKube, db: FakePostgres, tmp_path: Path) -> Harness:
    return Harness(DatabaseRestoreKind(postgres=db), kube, Settings(backup_root=tmp_path))


def backup(
    kube: FakeKube,
    tmp_path: Path,
    name: str = "nightly",
    *,
    phase: str = "Completed",
    labels: dict[str, str] | None = None,
    completed: str = "2026-01-01T02:05:00Z",
    tables: dict[tuple[str, str], int] | None = None,
    owner: str | None = None,
) -> Path:
    """A DatabaseBackup as the backup kind leaves it, and its artifact on the volume
    (owned by the DatabaseBackup of uid `owner`, as a schedule's child is)."""
    path = tmp_path / NS / name / "20260101T020000Z.dump"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(archive(TABLES))
    recorded = tables or TABLES
    kube.add_custom(
        BACKUPS,
        {
            "metadata": {
                "name": name,
                "labels": labels or {},
                "ownerReferences": [{"kind": "DatabaseBackup", "name": "x", "uid": owner}]
                if owner
                else [],
            },
            "spec": {"postgres": POSTGRES, "verify": "readable"},
            "status": {
                "phase": phase,
                "completedAt": completed,
                "location": path.as_uri(),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "tables": [{"schema": s, "name": t, "rows": n} for (s, t), n in recorded.items()],
                "conditions": [VERIFIED],
            },
        },
    )
    return path


def create(kube: FakeKube, status: dict[str, Any] | None = None, **spec: Any) -> None:
    obj: dict[str, Any] = {
        "apiVersion": "ops.mailscore.com/v1alpha1",
        "kind": "DatabaseRestore",
        "metadata": {"name": NAME, "uid": "abcdef12-3456"},
        "spec": {"backup": "nightly", **spec},
    }
    if status is not None:
        obj["status"] = status
        obj["metadata"]["finalizers"] = [FINALIZER]
    kube.add_custom(PLURAL, obj)


def status_of(h: Harness) -> DatabaseRestoreStatus:
    return h.status(NAME)  # type: ignore[no-any-return]


def window(kube: FakeKube, phase: str) -> None:
    kube.add_custom("maintenancewindows", {"metadata": {"name": "w"}, "status": {"phase": phase}})


SAFETY = "recovery-pre-restore-abcdef"


def test_refused_touches_nothing_and_waits_for_a_window(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    backup(kube, tmp_path)
    window(kube, "Pending")
    create(kube)
    result = h.run(NAME)
    status = status_of(h)
    assert status.phase == "Blocked" and status.condition("Authorized").status == "False"  # type: ignore[union-attr]
    assert (status.backup, status.database) == ("nightly", "mail_score")
    assert db.calls == [] and h.reasons() == ["NotAuthorized"]
    assert result is not None and result.requeue_after is None
    assert result.watch == {("DatabaseBackup", "nightly"), ("MaintenanceWindow", "*")}
    kube.calls.clear()
    h.run(NAME)  # woken for nothing: no write, no second event
    assert [c for c in kube.calls if c[0] != "create"] == [] and h.reasons() == ["NotAuthorized"]


def test_inside_an_active_window_with_a_safety_backup(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    backup(kube, tmp_path)
    window(kube, "Active")
    create(kube)
    result = h.run(NAME)
    status = status_of(h)
    assert status.phase == "Running" and status.step == "SafetyBackup"
    assert status.authorized_by == "MaintenanceWindow/w" and status.target_existed is True
    assert status.safety_backup == SAFETY and status.connection is not None
    safety = kube.obj(BACKUPS, SAFETY)
    assert safety["metadata"]["labels"] == {PRE_RESTORE_LABEL: NAME}
    assert safety["spec"]["postgres"]["database"] == "mail_score"
    assert safety["spec"]["postgres"]["credentials"]["secretName"] == "pg"
    assert "ownerReferences" not in safety["metadata"]  # it outlives the restore
    assert result is not None and result.watch == {("DatabaseBackup", SAFETY)}
    assert [c[0] for c in db.calls] == ["exists"]  # nothing restored before the safety backup

    kube.obj(BACKUPS, SAFETY)["status"] = {"phase": "Completed"}
    result = h.run(NAME)  # the safety backup's change wakes it
    status = status_of(h)
    assert status.phase == "Completed" and status.is_ready() and status.mismatched_tables == 0
    assert db.databases["mail_score"] == TABLES
    assert [t.restored for t in status.tables] == [150, 3]
    assert h.reasons() == [
        "Authorized",
        "Started",
        "SafetyBackup",
        "SafetyBackupCompleted",
        "Restored",
    ]
    assert db.logins and set(db.logins) == {("restorer", PASSWORD)}
    assert PASSWORD not in str(h.obj(NAME)) and all(PASSWORD not in e.message for e in h.events)
    assert result is not None and result.watch == frozenset()


def test_confirmed_into_a_new_database(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    seen: list[DatabaseRestoreStatus] = []
    db.during["restore"] = lambda: seen.append(status_of(h))
    backup(kube, tmp_path)
    create(kube, targetDatabase="copy", confirm="copy")
    h.run(NAME)
    claimed = seen[0]
    assert (claimed.step, claimed.attempt, claimed.attempt_by) == ("Restoring", 1, "test-instance")
    status = status_of(h)
    assert status.phase == "Completed" and status.authorized_by == "confirm"
    assert status.target_existed is False and status.safety_backup is None
    assert db.databases["copy"] == TABLES and ("create", "copy") in db.calls
    assert "DatabaseCreated" in h.reasons()


def stamped(kube: FakeKube, user: str = "dora") -> None:
    """What admission writes on the restore at its creation: who asked."""
    obj = kube.obj(PLURAL, NAME)
    obj["metadata"]["annotations"] = {
        "ops.mailscore.com/requested-by": user,
        "ops.mailscore.com/requested-by-groups": "dba,system:authenticated",
    }


def test_the_requester_may_still_restore_right_before_the_overwrite(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    backup(kube, tmp_path)
    create(kube, targetDatabase="copy", confirm="copy")
    stamped(kube)
    h.run(NAME)
    assert status_of(h).phase == "Completed"
    assert h.obj(NAME)["status"]["requestedBy"] == {
        "user": "dora",
        "groups": ["dba", "system:authenticated"],
    }
    assert ("allowed", "dora", "restore", "databasebackups", "nightly") in kube.calls


def test_a_permission_taken_away_before_the_overwrite_stops_the_restore(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    backup(kube, tmp_path)
    create(kube, targetDatabase="copy", confirm="copy")
    stamped(kube)
    kube.denied.add(("dora", "restore", "databasebackups", "nightly"))
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed"
    stalled = status.condition("Stalled")
    assert stalled is not None and stalled.reason == "NotAuthorized"
    assert "dora may no longer restore DatabaseBackup nightly" in stalled.message
    assert "nothing was overwritten" in stalled.message
    assert "copy" not in db.databases and [c[0] for c in db.calls] == ["exists"]


def test_a_changed_artifact_is_never_restored(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    backup(kube, tmp_path).write_bytes(archive({("public", "messages"): 1}))
    create(kube, targetDatabase="copy", confirm="copy", safetyBackup=False)
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed" and status.condition("Stalled").reason == "ChecksumMismatch"  # type: ignore[union-attr]
    assert [c[0] for c in db.calls] == ["exists"]


def test_row_counts_that_differ_fail_it(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    backup(kube, tmp_path, tables={("public", "messages"): 151, ("billing", "Plans"): 3})
    create(kube, targetDatabase="copy", confirm="copy")
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed" and status.mismatched_tables == 1
    assert "public.messages: 150 rows, backup has 151" in status.message()
    assert h.reasons()[-1] == "RowCountMismatch"


def test_waits_for_its_backup_to_exist_then_to_complete(
    h: Harness, kube: FakeKube, tmp_path: Path
) -> None:
    create(kube, targetDatabase="copy", confirm="copy")
    result = h.run(NAME)
    assert status_of(h).phase == "Blocked" and h.reasons() == ["BackupNotFound"]
    assert result is not None and result.watch == {("DatabaseBackup", "nightly")}
    backup(kube, tmp_path, phase="Running")
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Pending" and not status.condition("Stalled")
    kube.obj(BACKUPS, "nightly")["status"]["phase"] = "Completed"
    h.run(NAME)
    assert status_of(h).phase == "Completed"


def test_a_schedule_restores_its_newest_verified_child(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    parent = kube.add_custom(
        BACKUPS,
        {"metadata": {"name": "nightly"}, "spec": {"postgres": POSTGRES, "schedule": "@daily"}},
    )
    uid, label = parent["metadata"]["uid"], {SCHEDULE_LABEL: "nightly"}
    backup(kube, tmp_path, "nightly-1", labels=label, completed="2026-01-01T02:05:00Z", owner=uid)
    backup(kube, tmp_path, "nightly-2", labels=label, completed="2026-01-02T02:05:00Z", owner=uid)
    create(kube, targetDatabase="copy", confirm="copy")
    h.run(NAME)
    assert status_of(h).backup == "nightly-2" and status_of(h).phase == "Completed"


def test_a_backup_with_the_schedules_label_but_not_owned_by_it_is_never_its_child(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    """Anyone may write the label: a newer, "verified" impostor is not restored."""
    parent = kube.add_custom(
        BACKUPS,
        {"metadata": {"name": "nightly"}, "spec": {"postgres": POSTGRES, "schedule": "@daily"}},
    )
    uid, label = parent["metadata"]["uid"], {SCHEDULE_LABEL: "nightly"}
    backup(kube, tmp_path, "nightly-1", labels=label, completed="2026-01-01T02:05:00Z", owner=uid)
    backup(kube, tmp_path, "impostor", labels=label, completed="2026-01-03T02:05:00Z")
    backup(kube, tmp_path, "other-owner", labels=label, completed="2026-01-04T02:05:00Z", owner="x")
    create(kube, targetDatabase="copy", confirm="copy")
    h.run(NAME)
    assert status_of(h).backup == "nightly-1" and status_of(h).phase == "Completed"


def test_a_lost_status_write_is_recorded_not_restored_again(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    lost: list[dict[str, Any]] = []

    def conflict_once(name: str, patch: dict[str, Any]) -> None:
        if "mismatchedTables" in (patch.get("status") or {}) and not lost:
            lost.append(patch)
            raise Conflict("the object has been modified")

    kube.before_status = conflict_once
    backup(kube, tmp_path)
    create(kube, targetDatabase="copy", confirm="copy")
    h.run(NAME)
    assert lost and status_of(h).phase == "Completed"
    assert [c for c in db.calls if c[0] == "restore"] == [("restore", "copy")]


def test_an_interrupted_restore_runs_again(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    backup(kube, tmp_path)
    create(kube, targetDatabase="copy", confirm="copy")
    h.run(NAME)
    done = h.obj(NAME)["status"]
    running = {
        **done,
        "phase": "Running",
        "step": "Restoring",
        "attempt": 1,
        "attemptBy": "old",
        "conditions": [],
    }
    kube.obj(PLURAL, NAME)["status"] = running
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Completed" and status.attempt == 2
    assert "Interrupted" in h.reasons()


def test_a_stopped_restore_writes_nothing_and_its_deletion_says_so(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    def delete_now() -> None:
        h.delete(NAME)
        h.stopped.set()

    db.hang.add("restore")
    db.during["restore"] = delete_now
    backup(kube, tmp_path)
    create(kube, targetDatabase="copy", confirm="copy")
    h.run(NAME)
    assert status_of(h).step == "Restoring"
    h.run(NAME)
    assert (PLURAL, NS, NAME) not in kube.store
    assert h.events[-1].reason == "Cancelled"
    assert "was created by this restore and is left in place" in h.events[-1].message


def test_an_older_operator_restore_finds_its_server_in_the_backup(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    """A restore written before status.connection existed: the backup's spec says."""
    backup(kube, tmp_path)
    legacy = {
        "phase": "Running",
        "step": "SafetyBackup",
        "attempt": 1,
        "attemptBy": "old",
        "backup": "nightly",
        "database": "mail_score",
        "safetyBackup": SAFETY,
        "location": kube.obj(BACKUPS, "nightly")["status"]["location"],
        "sha256": kube.obj(BACKUPS, "nightly")["status"]["sha256"],
    }
    create(kube, status=legacy)
    h.run(NAME)
    assert kube.obj(BACKUPS, SAFETY)["spec"]["postgres"]["host"] == "pg"
    assert status_of(h).step == "SafetyBackup"


def test_an_unusable_spec_fails_it_in_words(h: Harness, kube: FakeKube) -> None:
    create(kube)
    kube.obj(PLURAL, NAME)["spec"] = {"backup": "Not_A_Name"}
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed" and status.condition("Stalled").reason == "InvalidSpec"  # type: ignore[union-attr]
    assert status.message().startswith("The spec cannot be used: spec.backup: ")
    assert "errors.pydantic.dev" not in status.message()
    assert h.reasons() == ["InvalidSpec"]


def test_safety_backup_failed(h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path) -> None:
    backup(kube, tmp_path)
    create(kube, confirm="mail_score")
    h.run(NAME)
    kube.obj(BACKUPS, SAFETY)["status"] = {
        "phase": "Failed",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "DestinationFull",
                "message": "no space left",
                "lastTransitionTime": "2026-01-01T02:05:00Z",
            }
        ],
    }
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed" and "no space left" in status.message()
    assert db.databases["mail_score"] == {("public", "messages"): 100}  # untouched


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (pg.ServerUnreachable("cannot reach PostgreSQL at pg:5433"), "ServerUnreachable"),
        (pg.RestoreFailed("pg_restore exited with code 1"), "RestoreFailed"),
    ],
)
def test_failures_say_why(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path, error: Exception, reason: str
) -> None:
    db.fail["restore"] = error
    backup(kube, tmp_path)
    create(kube, targetDatabase="copy", confirm="copy")
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed" and status.condition("Stalled").reason == reason  # type: ignore[union-attr]
    assert h.events[-1].reason == reason and h.events[-1].warning
