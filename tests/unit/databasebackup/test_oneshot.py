"""A one-shot DatabaseBackup's steps, decided from status alone (logic.oneshot)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runbook_operator.core.attempts import MAX_ATTEMPTS
from runbook_operator.core.conditions import find, is_true
from runbook_operator.core.postgres import TableRows
from runbook_operator.kinds.databasebackup import logic
from runbook_operator.kinds.databasebackup.api import (
    BackupPhase,
    BackupStep,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
    DeletionPolicy,
    Verification,
    VerifyMethod,
)
from runbook_operator.kinds.databasebackup.logic import Action

NOW = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
ME, OTHER = "runner-me", "runner-old"
SCRATCH = "runbook_verify_0f1e2d3c4b5a"


def running(
    step: BackupStep = BackupStep.DUMPING, attempt: int = 1, by: str = ME
) -> DatabaseBackupStatus:
    return DatabaseBackupStatus(
        phase=BackupPhase.RUNNING, step=step, attempt=attempt, attempt_by=by, started_at=NOW
    )


DUMPED = logic.Dumped(
    location="file:///b/ns/nightly/20250101T020000Z.dump",
    size=3 * 1024 * 1024,
    sha256="ab" * 32,
    server_version="15.18",
    pg_dump_version="15.18",
    tables={("public", "messages"): 150, ("billing", "Plans"): 3},
)


class TestNextAction:
    def test_new_object_starts(self) -> None:
        assert logic.next_action(DatabaseBackupStatus(), instance=ME, tried=False) == Action.START

    def test_pending_starts(self) -> None:
        status = DatabaseBackupStatus(phase=BackupPhase.PENDING)
        assert logic.next_action(status, instance=ME, tried=False) == Action.START

    @pytest.mark.parametrize("phase", [BackupPhase.COMPLETED, BackupPhase.FAILED])
    def test_finished_does_nothing(self, phase: BackupPhase) -> None:
        status = DatabaseBackupStatus(phase=phase)
        assert logic.next_action(status, instance=ME, tried=True) == Action.NONE

    def test_own_dump_runs(self) -> None:
        assert logic.next_action(running(), instance=ME, tried=False) == Action.DUMP

    def test_own_verification_runs(self) -> None:
        status = running(BackupStep.VERIFYING)
        assert logic.next_action(status, instance=ME, tried=False) == Action.VERIFY

    def test_another_process_attempt_was_interrupted(self) -> None:
        status = running(by=OTHER)
        assert logic.next_action(status, instance=ME, tried=False) == Action.RETRY

    def test_own_attempt_already_tried_was_interrupted(self) -> None:
        assert logic.next_action(running(), instance=ME, tried=True) == Action.RETRY

    def test_gives_up_after_max_attempts(self) -> None:
        status = running(attempt=MAX_ATTEMPTS, by=OTHER)
        assert logic.next_action(status, instance=ME, tried=False) == Action.GIVE_UP

    def test_running_without_step_starts_again(self) -> None:
        status = DatabaseBackupStatus(phase=BackupPhase.RUNNING)
        assert logic.next_action(status, instance=ME, tried=False) == Action.START


class TestTransitions:
    def test_started_records_everything_before_the_dump(self) -> None:
        status = logic.started(DatabaseBackupStatus(), instance=ME, generation=1, now=NOW)
        assert status.phase == BackupPhase.RUNNING and status.step == BackupStep.DUMPING
        assert (status.attempt, status.attempt_by, status.started_at) == (1, ME, NOW)
        assert is_true(status.conditions, "Reconciling")
        assert not is_true(status.conditions, "Ready")
        assert status.observed_generation == 1

    def test_retried_counts_and_explains(self) -> None:
        status = logic.retried(running(by=OTHER), instance=ME, generation=1, now=NOW)
        assert (status.attempt, status.attempt_by) == (2, ME)
        assert status.step == BackupStep.DUMPING
        reconciling = find(status.conditions, "Reconciling")
        assert reconciling is not None and reconciling.reason == "Retrying"
        assert "attempt 1 was interrupted" in reconciling.message

    def test_dumped_then_verifying(self) -> None:
        status = logic.dumped(
            running(), DUMPED, VerifyMethod.READABLE, scratch=SCRATCH, generation=1, now=NOW
        )
        assert status.phase == BackupPhase.RUNNING and status.step == BackupStep.VERIFYING
        assert status.attempt == 1
        assert status.location == DUMPED.location and status.sha256 == DUMPED.sha256
        assert status.size == "3.0MiB" and status.size_bytes == 3 * 1024 * 1024
        assert status.total_rows == 153
        assert [(t.schema_, t.name, t.rows) for t in status.tables] == [
            ("billing", "Plans", 3),
            ("public", "messages", 150),
        ]

    def test_dumped_without_verification_completes(self) -> None:
        later = NOW + timedelta(seconds=92)
        status = logic.dumped(
            running(), DUMPED, VerifyMethod.NONE, scratch=SCRATCH, generation=1, now=later
        )
        assert status.phase == BackupPhase.COMPLETED and status.step is None
        assert status.completed_at == later and status.duration == "1m32s"
        assert is_true(status.conditions, "Ready")
        verified = find(status.conditions, logic.VERIFIED)
        assert verified is not None and verified.status == "Unknown"

    def test_verified_completes(self) -> None:
        dumped = logic.dumped(
            running(), DUMPED, VerifyMethod.RESTORE, scratch=SCRATCH, generation=1, now=NOW
        )
        proof = Verification(method=VerifyMethod.RESTORE, tables_compared=2, toc_entries=9)
        status = logic.verified(dumped, proof, generation=1, now=NOW + timedelta(minutes=2))
        assert status.phase == BackupPhase.COMPLETED
        assert is_true(status.conditions, logic.VERIFIED) and is_true(status.conditions, "Ready")
        assert not is_true(status.conditions, "Reconciling")
        assert status.verification is not None and status.verification.verified_at is not None
        assert "all 2 tables" in find(status.conditions, logic.VERIFIED).message  # type: ignore[union-attr]

    def test_verified_readable_message(self) -> None:
        proof = Verification(method=VerifyMethod.READABLE, toc_entries=9)
        status = logic.verified(running(BackupStep.VERIFYING), proof, generation=1, now=NOW)
        assert "9 archive entries" in find(status.conditions, logic.VERIFIED).message  # type: ignore[union-attr]

    def test_failed_is_terminal_and_stalled(self) -> None:
        status = logic.failed(
            running(), "AuthenticationFailed", "wrong password", generation=1, now=NOW
        )
        assert status.phase == BackupPhase.FAILED and status.step is None
        assert is_true(status.conditions, "Stalled")
        ready = find(status.conditions, "Ready")
        assert ready is not None and ready.status == "False"
        assert (ready.reason, ready.message) == ("AuthenticationFailed", "wrong password")
        assert find(status.conditions, logic.VERIFIED) is None

    def test_failed_verification_sets_verified_false(self) -> None:
        status = logic.failed(
            running(BackupStep.VERIFYING),
            "RestoreFailed",
            "x",
            generation=1,
            now=NOW,
            verification_failed=True,
        )
        verified = find(status.conditions, logic.VERIFIED)
        assert verified is not None and verified.status == "False"

    def test_failed_before_start_has_a_start(self) -> None:
        status = logic.failed(DatabaseBackupStatus(), "InvalidSpec", "x", generation=1, now=NOW)
        assert status.started_at == NOW and status.duration == "0s"


class TestHelpers:
    def test_compare_counts(self) -> None:
        expected = [
            TableRows(schema="public", name="a", rows=3),
            TableRows(schema="public", name="b", rows=5),
            TableRows(schema="public", name="c", rows=0),
        ]
        actual = {("public", "a"): 3, ("public", "b"): 4}
        assert logic.compare_counts(expected, actual) == [
            "public.b has 4 rows, expected 5",
            "public.c is missing",
        ]
        assert logic.compare_counts(expected[:1], actual) == []

    def test_stamp_is_utc(self) -> None:
        paris = datetime(2025, 7, 1, 4, 0, 5, tzinfo=UTC).astimezone()
        assert logic.stamp(paris) == "20250701T040005Z"

    @pytest.mark.parametrize(
        ("size", "text"),
        [(0, "0B"), (1023, "1023B"), (1536, "1.5KiB"), (5 * 1024**3, "5.0GiB")],
    )
    def test_human_size(self, size: int, text: str) -> None:
        assert logic.human_size(size) == text

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [(0, "0s"), (59, "59s"), (60, "1m"), (92, "1m32s"), (3600, "1h"), (3725, "1h2m5s")],
    )
    def test_durations_read_like_go(self, seconds: int, text: str) -> None:
        later = NOW + timedelta(seconds=seconds)
        status = logic.completed(running(), "done", generation=1, now=later)
        assert status.duration == text


class TestRecorded:
    def test_what_deletion_needs_is_taken_from_the_spec(self) -> None:
        spec = DatabaseBackupSpec.model_validate(
            {
                "postgres": {"host": "pg", "database": "d", "credentials": {"secretName": "s"}},
                "deletionPolicy": "Retain",
            }
        )
        status = logic.recorded(running(), spec)
        assert status.scheduled is False and status.deletion_policy == DeletionPolicy.RETAIN
        assert status.connection == spec.postgres
        assert logic.recorded(status, spec) == status  # the same, every pass

    def test_a_restore_verification_records_its_scratch_database_first(self) -> None:
        status = logic.dumped(
            running(), DUMPED, VerifyMethod.RESTORE, scratch=SCRATCH, generation=1, now=NOW
        )
        assert status.verification == Verification(
            method=VerifyMethod.RESTORE, scratch_database=SCRATCH
        )
        readable = logic.dumped(
            running(), DUMPED, VerifyMethod.READABLE, scratch=SCRATCH, generation=1, now=NOW
        )
        assert readable.verification is not None
        assert readable.verification.scratch_database is None

    def test_scratch_database_name_fits_and_is_stable(self) -> None:
        name = logic.scratch_database("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        assert name == SCRATCH and len(name) <= 63
