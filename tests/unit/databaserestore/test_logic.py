"""DatabaseRestore decisions: which backup, whether it is allowed, each step (fixed clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runbook_operator.core.conditions import find, is_true
from runbook_operator.core.names import PRE_RESTORE_LABEL
from runbook_operator.core.postgres import PostgresRef, TableRows
from runbook_operator.kinds.databaserestore import logic
from runbook_operator.kinds.databaserestore.api import (
    DatabaseRestoreSpec,
    DatabaseRestoreStatus,
    RestorePhase,
    RestoreStep,
)
from runbook_operator.kinds.databaserestore.logic import (
    Action,
    Authorization,
    BackupView,
    Refusal,
)

NOW = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)
ME = "me"
TABLES = (
    TableRows(schema="public", name="messages", rows=150),
    TableRows(schema="billing", name="Plans", rows=3),
)
PG = PostgresRef.model_validate(
    {"host": "pg", "database": "mail_score", "credentials": {"secretName": "pg"}}
)


def view(name: str, phase: str | None = "Completed", **kw: object) -> BackupView:
    values: dict[str, object] = {
        "name": name,
        "scheduled": False,
        "phase": phase,
        "verified": True,
        "completed_at": NOW,
        "location": f"file:///b/{name}.dump",
        "sha256": "ab" * 32,
        "postgres": PG,
        "tables": TABLES,
    }
    values.update(kw)
    return BackupView(**values)  # type: ignore[arg-type]


def child(name: str, phase: str | None = "Completed", **kw: object) -> BackupView:
    """A run of the schedule of uid u1 (owned by it)."""
    return view(name, phase, owners=frozenset({"u1"}), **kw)


def restore_spec(**kw: object) -> DatabaseRestoreSpec:
    return DatabaseRestoreSpec.model_validate({"backup": "nightly", **kw})


def started(safety: str | None = None, existed: bool = True) -> DatabaseRestoreStatus:
    return logic.started(
        DatabaseRestoreStatus(),
        view("nightly"),
        target=PG,
        target_existed=existed,
        authorization=Authorization("confirm", "confirm names the target database mail_score"),
        safety_backup=safety,
        instance=ME,
        generation=1,
        now=NOW,
    )


class TestNextAction:
    def test_new_prepares(self) -> None:
        assert (
            logic.next_action(DatabaseRestoreStatus(), instance=ME, tried=False) == Action.PREPARE
        )

    @pytest.mark.parametrize("phase", [RestorePhase.PENDING, RestorePhase.BLOCKED])
    def test_waiting_prepares_again(self, phase: RestorePhase) -> None:
        status = DatabaseRestoreStatus(phase=phase)
        assert logic.next_action(status, instance=ME, tried=False) == Action.PREPARE

    @pytest.mark.parametrize("phase", [RestorePhase.COMPLETED, RestorePhase.FAILED])
    def test_finished(self, phase: RestorePhase) -> None:
        status = DatabaseRestoreStatus(phase=phase)
        assert logic.next_action(status, instance=ME, tried=False) == Action.NONE

    def test_safety_backup_waits_whoever_runs(self) -> None:
        status = started(safety="s").model_copy(update={"attempt_by": "other"})
        assert logic.next_action(status, instance=ME, tried=True) == Action.SAFETY_BACKUP

    def test_restore(self) -> None:
        assert logic.next_action(started(), instance=ME, tried=False) == Action.RESTORE

    def test_interrupted_restore_retries(self) -> None:
        assert logic.next_action(started(), instance="new", tried=False) == Action.RETRY
        assert logic.next_action(started(), instance=ME, tried=True) == Action.RETRY

    def test_gives_up(self) -> None:
        status = started().model_copy(update={"attempt": 3})
        assert logic.next_action(status, instance="new", tried=False) == Action.GIVE_UP


class TestResolveBackup:
    def test_missing(self) -> None:
        refusal = logic.resolve_backup("nightly", None, [])
        assert isinstance(refusal, Refusal) and refusal.reason == "BackupNotFound"

    def test_one_shot_completed(self) -> None:
        assert logic.resolve_backup("nightly", view("nightly"), []) == view("nightly")

    def test_one_shot_unverified_is_allowed_when_named(self) -> None:
        chosen = logic.resolve_backup("nightly", view("nightly", verified=False), [])
        assert isinstance(chosen, BackupView)

    def test_one_shot_running_is_not_ready(self) -> None:
        refusal = logic.resolve_backup("nightly", view("nightly", "Running", location=None), [])
        assert isinstance(refusal, Refusal) and refusal.reason == "BackupNotReady"

    def test_one_shot_failed(self) -> None:
        refusal = logic.resolve_backup("nightly", view("nightly", "Failed"), [])
        assert isinstance(refusal, Refusal) and refusal.reason == "BackupFailed"

    def test_schedule_takes_the_newest_verified_child(self) -> None:
        parent = view("nightly", "Scheduled", scheduled=True, location=None, uid="u1")
        children = [
            child("nightly-1", completed_at=NOW - timedelta(days=2)),
            child("nightly-2", completed_at=NOW - timedelta(days=1)),
            child("nightly-3", completed_at=NOW, verified=False),
            child("nightly-4", "Failed", completed_at=NOW + timedelta(hours=1)),
            child("nightly-5", "Running", completed_at=None),
        ]
        chosen = logic.resolve_backup("nightly", parent, children)
        assert isinstance(chosen, BackupView) and chosen.name == "nightly-2"

    def test_schedule_without_verified_child(self) -> None:
        parent = view("nightly", "Scheduled", scheduled=True, uid="u1")
        refusal = logic.resolve_backup("nightly", parent, [child("nightly-1", verified=False)])
        assert isinstance(refusal, Refusal) and refusal.reason == "NoVerifiedBackup"

    def test_a_child_not_owned_by_the_schedule_never_counts(self) -> None:
        parent = view("nightly", "Scheduled", scheduled=True, location=None, uid="u1")
        children = [
            child("nightly-1", completed_at=NOW - timedelta(days=2)),
            view("forged", completed_at=NOW),  # the label only: no ownerReference
            view("elsewhere", completed_at=NOW, owners=frozenset({"u2"})),
        ]
        chosen = logic.resolve_backup("nightly", parent, children)
        assert isinstance(chosen, BackupView) and chosen.name == "nightly-1"

    def test_only_unowned_children_is_no_verified_backup(self) -> None:
        parent = view("nightly", "Scheduled", scheduled=True, uid="u1")
        refusal = logic.resolve_backup("nightly", parent, [view("forged")])
        assert isinstance(refusal, Refusal) and refusal.reason == "NoVerifiedBackup"

    def test_a_schedule_without_a_uid_owns_nothing(self) -> None:
        parent = view("nightly", "Scheduled", scheduled=True)
        forged = view("forged", owners=frozenset({""}))
        refusal = logic.resolve_backup("nightly", parent, [forged])
        assert isinstance(refusal, Refusal) and refusal.reason == "NoVerifiedBackup"

    def test_the_view_reads_uid_and_owners(self) -> None:
        seen = logic.backup_view(
            {
                "metadata": {
                    "name": "n-1",
                    "uid": "u9",
                    "ownerReferences": [{"uid": "u1"}, {"uid": ""}, "junk"],
                }
            }
        )
        assert (seen.uid, seen.owners) == ("u9", frozenset({"u1"}))


class TestAuthorize:
    def test_active_window(self) -> None:
        auth = logic.authorize(restore_spec(), "mail_score", ["b-window", "a-window"])
        assert isinstance(auth, Authorization) and auth.by == "MaintenanceWindow/a-window"

    def test_confirm(self) -> None:
        auth = logic.authorize(restore_spec(confirm="mail_score"), "mail_score", [])
        assert isinstance(auth, Authorization) and auth.by == "confirm"

    def test_refused_without_either(self) -> None:
        refusal = logic.authorize(restore_spec(), "mail_score", [])
        assert isinstance(refusal, Refusal) and refusal.reason == "NotAuthorized"
        assert "MaintenanceWindow" in refusal.message and "'mail_score'" in refusal.message
        assert "spec.confirm is not set" in refusal.message

    def test_wrong_confirmation_is_named(self) -> None:
        refusal = logic.authorize(restore_spec(confirm="mail-score"), "mail_score", [])
        assert isinstance(refusal, Refusal)
        assert "spec.confirm is 'mail-score'" in refusal.message


class TestTransitions:
    def test_blocked_is_stalled_with_authorized_false(self) -> None:
        refusal = Refusal("NotAuthorized", "no window")
        status = logic.blocked(DatabaseRestoreStatus(), refusal, generation=1, now=NOW)
        assert status.phase == RestorePhase.BLOCKED
        assert is_true(status.conditions, "Stalled")
        authorized = find(status.conditions, logic.AUTHORIZED)
        assert authorized is not None and authorized.status == "False"

    def test_final_refusal_fails(self) -> None:
        refusal = Refusal("InvalidSpec", "bad", final=True)
        status = logic.blocked(DatabaseRestoreStatus(), refusal, generation=1, now=NOW)
        assert status.phase == RestorePhase.FAILED

    def test_pending_is_not_stalled(self) -> None:
        status = logic.pending(DatabaseRestoreStatus(), "wait", generation=1, now=NOW)
        assert status.phase == RestorePhase.PENDING
        assert not is_true(status.conditions, "Stalled")

    def test_started_records_the_plan(self) -> None:
        status = started(safety="r-pre-restore-abc")
        assert status.phase == RestorePhase.RUNNING and status.step == RestoreStep.SAFETY_BACKUP
        assert status.backup == "nightly" and status.database == "mail_score"
        assert status.target_existed is True and status.authorized_by == "confirm"
        assert status.sha256 == "ab" * 32
        assert [(t.schema_, t.name, t.expected, t.restored) for t in status.tables] == [
            ("public", "messages", 150, None),
            ("billing", "Plans", 3, None),
        ]
        assert is_true(status.conditions, logic.AUTHORIZED)
        assert is_true(status.conditions, "Reconciling")

    def test_started_without_safety_restores(self) -> None:
        assert started(existed=False).step == RestoreStep.RESTORING

    def test_restoring_after_safety(self) -> None:
        status = logic.restoring(started(safety="s"), instance="r2", generation=1, now=NOW)
        assert status.step == RestoreStep.RESTORING and status.attempt_by == "r2"

    def test_retried(self) -> None:
        status = logic.retried(started(), instance="r2", generation=1, now=NOW)
        assert (status.attempt, status.attempt_by) == (2, "r2")

    def test_checked_ok(self) -> None:
        counts = {("public", "messages"): 150, ("billing", "Plans"): 3}
        later = NOW + timedelta(seconds=45)
        status = logic.checked(started(), counts, generation=1, now=later)
        assert status.phase == RestorePhase.COMPLETED and is_true(status.conditions, "Ready")
        assert status.mismatched_tables == 0 and status.duration == "45s"
        assert [t.restored for t in status.tables] == [150, 3]

    def test_checked_mismatch_fails(self) -> None:
        counts = {("public", "messages"): 149}
        status = logic.checked(started(), counts, generation=1, now=NOW)
        assert status.phase == RestorePhase.FAILED and status.mismatched_tables == 2
        ready = find(status.conditions, "Ready")
        assert ready is not None and ready.reason == "RowCountMismatch"
        assert "public.messages: 149 rows, backup has 150" in ready.message
        assert "billing.Plans: missing" in ready.message

    def test_safety_waiting(self) -> None:
        status = logic.safety_backup_waiting(started(safety="s"), "Running", generation=1, now=NOW)
        assert "s (Running)" in find(status.conditions, "Reconciling").message  # type: ignore[union-attr]


def test_safety_backup_name_is_unique_per_object() -> None:
    a = logic.safety_backup_name("restore", "1234-5678-9")
    b = logic.safety_backup_name("restore", "abcd-5678-9")
    assert a == "restore-pre-restore-123456" and a != b
    assert len(logic.safety_backup_name("x" * 253, "abcdef")) <= 253


def test_safety_backup_object() -> None:
    body = logic.safety_backup_object("r-pre", "r", PG.on("other_db"))
    assert body["apiVersion"] == "ops.mailscore.com/v1alpha1" and body["kind"] == "DatabaseBackup"
    assert body["metadata"] == {"name": "r-pre", "labels": {PRE_RESTORE_LABEL: "r"}}
    assert body["spec"]["postgres"]["database"] == "other_db"
    assert body["spec"]["postgres"]["credentials"]["secretName"] == "pg"
    assert body["spec"]["verify"] == "readable"
    assert "ownerReferences" not in body["metadata"]  # it outlives the restore


class TestWatching:
    """What wakes a restore: nothing polls."""

    def refused(self, reason: str) -> DatabaseRestoreStatus:
        return logic.blocked(DatabaseRestoreStatus(), Refusal(reason, "x"), generation=1, now=NOW)

    def test_a_missing_or_unfinished_backup(self) -> None:
        for status in (
            self.refused("BackupNotFound"),
            logic.pending(DatabaseRestoreStatus(), "wait", generation=1, now=NOW),
        ):
            assert logic.watching(restore_spec(), status) == {("DatabaseBackup", "nightly")}

    def test_not_authorized_waits_for_any_window(self) -> None:
        assert logic.watching(restore_spec(), self.refused("NotAuthorized")) == {
            ("DatabaseBackup", "nightly"),
            ("MaintenanceWindow", "*"),
        }

    def test_a_schedule_without_a_verified_child_waits_for_any_backup(self) -> None:
        watch = logic.watching(restore_spec(), self.refused("NoVerifiedBackup"))
        assert ("DatabaseBackup", "*") in watch

    def test_the_safety_backup(self) -> None:
        status = started(safety="r-pre")
        assert logic.watching(restore_spec(), status) == {("DatabaseBackup", "r-pre")}

    def test_nothing_while_restoring_or_once_done(self) -> None:
        assert logic.watching(restore_spec(), started()) == frozenset()
        done = logic.failed(started(), "X", "y", generation=1, now=NOW)
        assert logic.watching(restore_spec(), done) == frozenset()


def test_started_records_the_target_server() -> None:
    status = logic.started(
        DatabaseRestoreStatus(),
        view("nightly"),
        target=PG.on("copy"),
        target_existed=False,
        authorization=Authorization("confirm", "ok"),
        safety_backup=None,
        instance=ME,
        generation=1,
        now=NOW,
    )
    assert status.database == "copy" and status.connection == PG.on("copy")
    assert status.wire()["connection"]["credentials"] == {
        "secretName": "pg",
        "usernameKey": "username",
        "passwordKey": "password",
    }
