"""DatabaseBackup's glue on the core, against the one FakeKube and the one FakePostgres.

What is checked is what the logic cannot see: the claim written before pg_dump starts,
every step following in one pass, the artifact on the volume, a lost status write that
is recorded instead of dumped again, a stopped dump that writes nothing, and a
finalizer that works from status alone, even when the spec no longer parses.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runbook_operator.adapters import postgres as pg
from runbook_operator.adapters.kube import Conflict
from runbook_operator.adapters.storage import FileStore
from runbook_operator.core.names import FINALIZER, PRE_RESTORE_LABEL
from runbook_operator.kinds.databasebackup.api import DatabaseBackupStatus
from runbook_operator.kinds.databasebackup.handlers import DatabaseBackupKind
from runbook_operator.kinds.databasebackup.logic import scratch_database
from runbook_operator.settings import Settings
from support.fake_kube import NS, FakeKube
from support.fake_postgres import FakePostgres
from support.passes import Harness

NAME, PLURAL = "before-migration", "databasebackups"
PASSWORD = "s3cret-pw"
POSTGRES = {
    "host": "pg",
    "port": 5433,
    "database": "mail_score",
    "sslMode": "disable",
    "credentials": {"secretName": "pg"},
}
TABLES = {("public", "messages"): 150, ("billing", "Plans"): 3}


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_credentials("pg", {"username": "backup", "password": PASSWORD})
    return k


@pytest.fixture
def db() -> FakePostgres:
    return FakePostgres({"mail_score": dict(TABLES)})


@pytest.fixture
def h(kube: FakeKube, db: FakePostgres, tmp_path: Path) -> Harness:
    return Harness(DatabaseBackupKind(postgres=db), kube, Settings(backup_root=tmp_path))


def create(
    kube: FakeKube, name: str = NAME, status: dict[str, Any] | None = None, **spec: Any
) -> None:
    obj: dict[str, Any] = {
        "apiVersion": "ops.mailscore.com/v1alpha1",
        "kind": "DatabaseBackup",
        "metadata": {"name": name, "uid": f"{name}-0f1e2d3c-4b5a-6978"},
        "spec": {"postgres": POSTGRES, **spec},
    }
    if status is not None:
        obj["status"] = status
        obj["metadata"]["finalizers"] = [FINALIZER]
    kube.add_custom(PLURAL, obj)


def status_of(h: Harness, name: str = NAME) -> DatabaseBackupStatus:
    return h.status(name)  # type: ignore[no-any-return]


def status_writes(kube: FakeKube) -> list[tuple[str, ...]]:
    return [c for c in kube.calls if c[0] == "patch-status"]


def test_one_pass_claims_then_dumps_verifies_and_completes(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    seen: list[DatabaseBackupStatus] = []
    db.during["dump"] = lambda: seen.append(status_of(h))
    create(kube)
    result = h.run(NAME)
    claimed = seen[0]  # what the API server held while pg_dump ran
    assert (claimed.phase, claimed.step, claimed.attempt) == ("Running", "Dumping", 1)
    assert claimed.attempt_by == "test-instance" and claimed.started_at is not None
    assert claimed.deletion_policy == "Delete" and claimed.connection is not None
    assert FINALIZER in h.obj(NAME)["metadata"]["finalizers"]

    status = status_of(h)
    assert status.phase == "Completed" and status.is_ready() and status.step is None
    assert status.total_rows == 153 and status.size == f"{status.size_bytes}B"
    path = Path(status.location.removeprefix("file://"))  # type: ignore[union-attr]
    assert path.parent == tmp_path / NS / NAME and path.name.endswith("Z.dump")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == status.sha256
    assert status.verification is not None and status.verification.toc_entries == 6
    assert h.reasons() == ["Started", "Dumped", "Verified", "Completed"]
    assert db.logins == [("backup", PASSWORD)]  # the Secret's login, read when needed
    assert len(status_writes(kube)) == 3  # claim, dumped, verified
    assert result is not None and result.requeue_after is None and result.watch == frozenset()


def test_a_finished_backup_costs_nothing(h: Harness, kube: FakeKube, db: FakePostgres) -> None:
    create(kube, verify="none")
    h.run(NAME)
    assert status_of(h).phase == "Completed"
    kube.calls.clear()
    db.calls.clear()
    result = h.run(NAME)
    assert kube.calls == [] and db.calls == []
    assert result is not None and result.requeue_after is None and result.watch == frozenset()


def test_restore_verification_records_its_scratch_database_before_creating_it(
    h: Harness, kube: FakeKube, db: FakePostgres
) -> None:
    seen: list[DatabaseBackupStatus] = []
    db.during["create"] = lambda: seen.append(status_of(h))
    create(kube, verify="restore")
    h.run(NAME)
    scratch = scratch_database(h.obj(NAME)["metadata"]["uid"])
    assert seen[0].step == "Verifying" and seen[0].verification is not None
    assert seen[0].verification.scratch_database == scratch
    status = status_of(h)
    assert status.phase == "Completed" and status.verification is not None
    assert status.verification.tables_compared == 2
    assert scratch not in db.databases  # dropped after comparing
    assert ("restore", scratch) in db.calls and db.calls[-1] == ("drop", scratch)


def test_a_failed_verification_removes_the_nested_scratch_database(
    h: Harness, kube: FakeKube, db: FakePostgres
) -> None:
    """The status writer recurses: a key removed inside `verification` leaves the object."""
    patches: list[dict[str, Any]] = []
    kube.before_status = lambda name, patch: patches.append(patch["status"])
    db.fail["count"] = pg.PermissionDenied("user lacks a privilege")
    create(kube, verify="restore")
    h.run(NAME)
    status = h.obj(NAME)["status"]
    assert status["phase"] == "Failed" and status["verification"] == {"method": "restore"}
    assert len(patches) == 3  # claim, dumped (scratch recorded), failed
    assert patches[1]["verification"]["scratchDatabase"].startswith("runbook_verify_")
    assert patches[2]["verification"] == {"scratchDatabase": None}  # a merge patch, nested
    verified = next(c for c in status["conditions"] if c["type"] == "Verified")
    assert verified["status"] == "False" and verified["reason"] == "PermissionDenied"


def test_another_process_attempt_was_interrupted(
    h: Harness, kube: FakeKube, db: FakePostgres
) -> None:
    seen: list[DatabaseBackupStatus] = []
    db.during["dump"] = lambda: seen.append(status_of(h))
    started = "2026-01-01T00:00:05Z"
    running = {"phase": "Running", "step": "Dumping", "attempt": 1, "attemptBy": "old"}
    create(kube, status={**running, "startedAt": started})
    h.run(NAME)
    assert [(s.attempt, s.attempt_by) for s in seen] == [(2, "test-instance")]
    status = status_of(h)
    assert status.phase == "Completed" and status.attempt_by == "test-instance"
    assert h.obj(NAME)["status"]["startedAt"] == started
    assert h.reasons()[0] == "Interrupted" and "attempt 1 was interrupted" in h.events[0].message


def test_gives_up_after_three_interrupted_attempts(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    partial = tmp_path / NS / NAME / "20260101T000005Z.dump.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half")
    running = {"phase": "Running", "step": "Dumping", "attempt": 3, "attemptBy": "old"}
    create(kube, status={**running, "startedAt": "2026-01-01T00:00:05Z"})
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed" and status.message() == "interrupted 3 times; giving up"
    assert db.calls == [] and not partial.exists()


@pytest.mark.parametrize(
    ("secret", "error", "reason"),
    [
        ("nope", None, "CredentialsNotFound"),
        ("pg", pg.AuthenticationFailed("rejected the credentials"), "AuthenticationFailed"),
        ("pg", pg.ToolMissing("pg_dump not found"), "PgDumpMissing"),
    ],
)
def test_failures_say_why_and_leave_nothing(
    h: Harness,
    kube: FakeKube,
    db: FakePostgres,
    tmp_path: Path,
    secret: str,
    error: Exception | None,
    reason: str,
) -> None:
    if error is not None:
        db.fail["dump"] = error
    create(kube, postgres={**POSTGRES, "credentials": {"secretName": secret}})
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed" and status.condition("Stalled").reason == reason  # type: ignore[union-attr]
    assert h.events[-1].reason == reason and h.events[-1].warning
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert PASSWORD not in str(h.obj(NAME)) and all(PASSWORD not in e.message for e in h.events)


def test_a_lost_status_write_is_recorded_not_dumped_again(
    h: Harness, kube: FakeKube, db: FakePostgres
) -> None:
    lost: list[dict[str, Any]] = []

    def conflict_once(name: str, patch: dict[str, Any]) -> None:
        if "location" in (patch.get("status") or {}) and not lost:
            lost.append(patch)
            kube.obj(PLURAL, NAME)["metadata"]["labels"] = {"team": "dba"}  # someone labels it
            raise Conflict("the object has been modified")

    kube.before_status = conflict_once
    create(kube)
    h.run(NAME)
    assert lost and status_of(h).phase == "Completed" and status_of(h).attempt == 1
    assert [c for c in db.calls if c[0] == "dump"] == [("dump", "mail_score")]
    assert h.reasons() == ["Started", "Dumped", "Verified", "Completed"]


def test_a_stopped_dump_writes_nothing(h: Harness, kube: FakeKube, db: FakePostgres) -> None:
    db.hang.add("dump")
    db.during["dump"] = h.stopped.set  # the operator is stopping
    create(kube)
    h.run(NAME)
    status = status_of(h)
    assert (status.phase, status.step, status.attempt) == ("Running", "Dumping", 1)
    assert h.reasons() == ["Started"]


def test_a_leader_deposed_while_dumping_commits_nothing(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    """Its Lease expired during pg_dump: the new leader's attempt is the one that counts,
    so the finished dump is thrown away, never renamed over the artifact's name."""
    db.during["dump"] = h.fenced.set
    create(kube)
    h.run(NAME)
    status = status_of(h)
    assert (status.phase, status.step, status.attempt) == ("Running", "Dumping", 1)
    assert list(tmp_path.rglob("*.dump*")) == []


# --- deletion ---------------------------------------------------------------------


def completed(location: str, **extra: Any) -> dict[str, Any]:
    return {
        "phase": "Completed",
        "location": location,
        "scheduled": False,
        "deletionPolicy": "Delete",
        "connection": POSTGRES,
        **extra,
    }


def artifact(tmp_path: Path, stamp: str = "20260101T000005Z") -> Path:
    path = tmp_path / NS / NAME / f"{stamp}.dump"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"dump")
    return path


BROKEN = {"postgres": {**POSTGRES, "port": "not a port"}}
"""A spec the model rejects (the API server would too; an older schema might not)."""


def test_deletion_works_from_status_when_the_spec_does_not_parse(
    h: Harness, kube: FakeKube, tmp_path: Path
) -> None:
    path = artifact(tmp_path)
    create(kube, status=completed(path.as_uri()))
    kube.obj(PLURAL, NAME)["spec"] = BROKEN
    h.delete(NAME)
    h.run(NAME)
    assert not path.exists() and not path.parent.exists()
    assert (PLURAL, NS, NAME) not in kube.store  # finalizer removed, object gone
    assert h.reasons() == ["ArtifactDeleted"]


def test_retain_keeps_the_artifact(h: Harness, kube: FakeKube, tmp_path: Path) -> None:
    path = artifact(tmp_path)
    create(kube, status=completed(path.as_uri(), deletionPolicy="Retain"))
    kube.obj(PLURAL, NAME)["spec"] = BROKEN
    h.delete(NAME)
    h.run(NAME)
    assert path.exists() and (PLURAL, NS, NAME) not in kube.store
    assert h.reasons() == ["ArtifactRetained"]


def test_unknown_policy_keeps_the_artifact(h: Harness, kube: FakeKube, tmp_path: Path) -> None:
    """An older operator's status without the policy, and a spec that does not parse."""
    path = artifact(tmp_path)
    create(kube, status={"phase": "Completed", "location": path.as_uri()})
    kube.obj(PLURAL, NAME)["spec"] = BROKEN
    h.delete(NAME)
    h.run(NAME)
    assert path.exists() and "deletion policy is unknown" in h.events[0].message


def test_an_interrupted_restore_verification_drops_its_scratch_database(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    path = artifact(tmp_path)
    db.databases["runbook_verify_x"] = {}
    verifying = completed(
        path.as_uri(),
        phase="Running",
        step="Verifying",
        attempt=1,
        attemptBy="old",
        verification={"method": "restore", "scratchDatabase": "runbook_verify_x"},
    )
    create(kube, status=verifying)
    kube.obj(PLURAL, NAME)["spec"] = BROKEN
    h.delete(NAME)
    h.run(NAME)
    assert "runbook_verify_x" not in db.databases and ("drop", "runbook_verify_x") in db.calls
    assert db.logins == [("backup", PASSWORD)]  # through the recorded connection's Secret
    assert not path.exists() and (PLURAL, NS, NAME) not in kube.store


def test_deleted_between_storing_and_recording_the_artifact(
    h: Harness, kube: FakeKube, tmp_path: Path
) -> None:
    path = artifact(tmp_path, "20260101T000005Z")
    dumping = {
        "phase": "Running",
        "step": "Dumping",
        "attempt": 1,
        "attemptBy": "old",
        "startedAt": "2026-01-01T00:00:05Z",
        "scheduled": False,
        "deletionPolicy": "Delete",
    }
    create(kube, status=dumping)
    kube.obj(PLURAL, NAME)["spec"] = BROKEN
    h.delete(NAME)
    h.run(NAME)
    assert not path.exists() and h.reasons() == ["ArtifactDeleted"]


def test_deleting_mid_dump_stops_it_and_cleans_up(
    h: Harness, kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    def delete_now() -> None:
        h.delete(NAME)
        h.stopped.set()  # what the controller does when it sees the deletionTimestamp

    db.hang.add("dump")
    db.during["dump"] = delete_now
    create(kube)
    h.run(NAME)  # the dump stops; the pass ends without writing
    assert status_of(h).step == "Dumping"
    h.run(NAME)  # the next pass finalizes
    assert (PLURAL, NS, NAME) not in kube.store
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_deleting_a_schedule_leaves_the_children_to_the_garbage_collector(
    h: Harness, kube: FakeKube, tmp_path: Path
) -> None:
    create(kube, status={"phase": "Scheduled", "scheduled": True})
    kube.obj(PLURAL, NAME)["spec"] = BROKEN
    h.delete(NAME)
    h.run(NAME)
    assert (PLURAL, NS, NAME) not in kube.store and h.events == []


# --- an unusable spec ---------------------------------------------------------------


def test_an_unusable_time_zone_fails_the_schedule_in_words(h: Harness, kube: FakeKube) -> None:
    create(kube, schedule="0 2 * * *", timeZone="Mars/Olympus")
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Failed" and status.scheduled is True
    message = status.message()
    assert message.startswith("The spec cannot be used: spec.timeZone: 'Mars/Olympus'")
    assert "https://" not in message and "errors.pydantic.dev" not in message
    assert h.reasons() == ["InvalidSpec"]
    h.run(NAME)
    assert h.reasons() == ["InvalidSpec"]  # once, no retry loop


def test_a_finished_backup_stays_finished_when_its_spec_stops_parsing(
    h: Harness, kube: FakeKube
) -> None:
    create(kube, status=completed("file:///nowhere/x.dump"))
    kube.obj(PLURAL, NAME)["spec"] = BROKEN
    h.run(NAME)
    assert status_of(h).phase == "Completed" and h.events == []


def test_the_store_is_the_real_one_by_default() -> None:
    assert DatabaseBackupKind().store is FileStore and DatabaseBackupKind.pool == "database"


def default_destination(kube: FakeKube, spec: dict[str, Any]) -> None:
    kube.add_custom(
        "backupdestinations",
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "BackupDestination",
            "metadata": {"name": "default", "uid": "dest-uid"},
            "spec": spec,
        },
    )


def test_without_spec_destination_or_default_the_volume_is_recorded(
    h: Harness, kube: FakeKube
) -> None:
    create(kube, verify="none")
    h.run(NAME)
    status = status_of(h)
    assert status.phase == "Completed" and status.location.startswith("file://")  # type: ignore[union-attr]
    assert status.destination is not None and status.destination.volume is not None
    assert status.destination_from is not None and "volume" in status.destination_from


def test_the_namespace_default_is_used_and_recorded_before_pg_dump_starts(
    h: Harness, kube: FakeKube, db: FakePostgres
) -> None:
    """The default on S3 names a Secret that is missing: the backup fails on it, after the
    choice was recorded, and pg_dump never ran."""
    s3 = {"endpoint": "http://127.0.0.1:9", "bucket": "team", "credentials": {"secretName": "s3"}}
    default_destination(kube, {"s3": s3})
    create(kube, verify="none")
    h.run(NAME)
    status = status_of(h)
    assert status.destination is not None and status.destination.s3 is not None
    assert status.destination.s3.bucket == "team"
    assert status.destination_from == "BackupDestination default"
    assert status.phase == "Failed" and "s3" in (status.message() or "")
    assert "dump" not in [c[0] for c in db.calls]


def test_a_later_change_of_the_default_never_moves_an_existing_artifact(
    h: Harness, kube: FakeKube, tmp_path: Path
) -> None:
    default_destination(kube, {"volume": {}})
    create(kube, verify="none")
    h.run(NAME)
    status = status_of(h)
    assert status.destination_from == "BackupDestination default"
    path = Path(status.location.removeprefix("file://"))  # type: ignore[union-attr]
    assert path.exists()
    # The team moves its default to S3 (a Secret it cannot even read here): the backup
    # is deleted from where it is, the volume, and nothing asks for the S3 Secret.
    s3 = {"endpoint": "http://127.0.0.1:9", "bucket": "team", "credentials": {"secretName": "s3"}}
    kube.obj("backupdestinations", "default")["spec"] = {"s3": s3}
    h.run(NAME)
    assert status_of(h).location == status.location
    h.delete(NAME)
    h.run(NAME)
    assert not path.exists()
    assert "ArtifactDeleted" in h.reasons()


def test_a_finished_safety_backup_prunes_its_older_siblings_with_their_artifacts(
    kube: FakeKube, db: FakePostgres, tmp_path: Path
) -> None:
    clock = iter(datetime(2026, 12, 4, 2, 0, tzinfo=UTC) + timedelta(minutes=i) for i in range(99))
    h = Harness(
        DatabaseBackupKind(postgres=db),
        kube,
        Settings(backup_root=tmp_path, safety_backups_keep=1),
        clock=lambda: next(clock),
    )
    names = ["r1-pre-restore-a", "r2-pre-restore-b", "r3-pre-restore-c"]
    paths = []
    for name in names:
        create(kube, name, verify="none")
        kube.obj(PLURAL, name)["metadata"]["labels"] = {PRE_RESTORE_LABEL: name[:2]}
        h.run(name)
        paths.append(Path(status_of(h, name).location.removeprefix("file://")))  # type: ignore[union-attr]
    # Each pass kept only the newest: r1 went when r2 finished, r2 when r3 finished.
    deleted = [c[2] for c in kube.calls if c[:2] == ("delete", PLURAL)]
    assert deleted == names[:2]
    for name in names[:2]:
        h.run(name)  # the finalizer: the artifact goes with the object
    assert [p.exists() for p in paths] == [False, False, True]
    assert "SafetyBackupPruned" in h.reasons()
    # An ordinary backup is no safety backup: it prunes nothing and costs nothing when done.
    create(kube, "plain", verify="none")
    h.run("plain")
    kube.calls.clear()
    h.run("plain")
    assert kube.calls == []
