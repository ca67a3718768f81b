"""Scheduled DatabaseBackups: slots, catch-up, no overlap, suspend, retention (fixed clock).

The slots come from core.schedule (the one cron engine); what is tested here is how the
schedule uses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from runbook_operator.core.names import SCHEDULE_LABEL, SCHEDULED_AT_ANNOTATION
from runbook_operator.kinds.databasebackup.api import (
    BackupPhase,
    DatabaseBackupSpec,
    DatabaseBackupStatus,
    Retention,
)
from runbook_operator.kinds.databasebackup.logic import schedule as sched
from runbook_operator.kinds.databasebackup.logic.schedule import Child

POSTGRES = {"host": "pg", "database": "mail_score", "credentials": {"secretName": "pg"}}
CREATED = datetime(2025, 1, 1, 0, 0, 30, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> datetime:
    return datetime(2025, 1, day, hour, minute, second, tzinfo=UTC)


def spec(schedule: str = "0 2 * * *", **extra: Any) -> DatabaseBackupSpec:
    return DatabaseBackupSpec.model_validate({"postgres": POSTGRES, "schedule": schedule, **extra})


def child(name: str, phase: str | None, completed: datetime | None = None, **kw: Any) -> Child:
    return Child(name=name, phase=phase, created=completed or CREATED, completed_at=completed, **kw)


class TestSlots:
    """The latest slot at or before now is the one due; the next one is when to wake."""

    def due(self, schedule: str, now: datetime, **extra: Any) -> tuple[Any, Any]:
        d = sched.decide(spec(schedule, **extra), None, [], created=CREATED, now=now)
        return d.run, d.next_time

    def test_between_slots(self) -> None:
        assert self.due("0 2 * * *", at(2, 30)) == (at(2), at(2, day=2))

    def test_exactly_on_a_slot(self) -> None:
        assert self.due("0 2 * * *", at(2)) == (at(2), at(2, day=2))

    def test_every_minute(self) -> None:
        assert self.due("* * * * *", at(2, 5, 30), timeZone="UTC") == (at(2, 5), at(2, 6))

    def test_time_zone(self) -> None:
        # 02:00 in Paris is 01:00 UTC in winter.
        assert self.due("0 2 * * *", at(1, 30), timeZone="Europe/Paris") == (at(1), at(1, day=2))

    def test_across_dst(self) -> None:
        # Paris springs forward on 2025-03-30: 03:00 local is 01:00 UTC that day.
        now = datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
        run, nxt = self.due("0 3 * * *", now, timeZone="Europe/Paris")
        assert run == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)
        assert nxt == datetime(2025, 3, 31, 1, 0, tzinfo=UTC)

    def test_a_wall_time_the_clocks_skip_runs_after_the_jump(self) -> None:
        # 02:30 does not exist in Paris on 2025-03-30: it runs at 03:30 CEST (01:30 UTC).
        now = datetime(2025, 3, 30, 1, 45, tzinfo=UTC)
        run, _ = self.due("30 2 * * *", now, timeZone="Europe/Paris")
        assert run == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)

    def test_unknown_time_zone_is_refused_by_the_model(self) -> None:
        with pytest.raises(ValidationError, match="Mars/Olympus"):
            spec(timeZone="Mars/Olympus")

    def test_a_schedule_without_runs(self) -> None:
        with pytest.raises(sched.InvalidSchedule, match="has no runs"):
            self.due("0 0 30 2 *", at(3))


class TestDecide:
    def test_nothing_due_before_the_first_slot(self) -> None:
        d = sched.decide(spec(), None, [], created=CREATED, now=at(1))
        assert d.run is None and d.missed is None
        assert d.phase == BackupPhase.SCHEDULED and d.next_time == at(2)

    def test_a_slot_before_creation_is_not_due(self) -> None:
        created = at(2, 0, 30)
        d = sched.decide(spec(), None, [], created=created, now=at(2, 1))
        assert d.run is None

    def test_due_slot_runs(self) -> None:
        d = sched.decide(spec(), None, [], created=CREATED, now=at(2, 0, 1))
        assert d.run == at(2) and d.phase == BackupPhase.RUNNING

    def test_handled_slot_is_not_run_twice(self) -> None:
        d = sched.decide(spec(), at(2), [], created=CREATED, now=at(2, 30))
        assert d.run is None

    def test_missed_while_down_runs_once_within_the_deadline(self) -> None:
        yesterday = at(2) - timedelta(days=1)
        d = sched.decide(spec(), yesterday, [], created=CREATED - timedelta(days=2), now=at(2, 45))
        assert d.run == at(2)

    def test_too_late_is_missed(self) -> None:
        d = sched.decide(spec(), None, [], created=CREATED, now=at(3, 1))
        assert d.run is None and d.missed == at(2)

    def test_custom_deadline(self) -> None:
        d = sched.decide(spec(startingDeadline="5m"), None, [], created=CREATED, now=at(2, 6))
        assert d.missed == at(2)
        d = sched.decide(spec(startingDeadline="5m"), None, [], created=CREATED, now=at(2, 4))
        assert d.run == at(2)

    def test_no_overlap_while_a_child_runs(self) -> None:
        busy = [child("nightly-1", "Running")]
        d = sched.decide(spec("* * * * *"), at(2, 0), busy, created=CREATED, now=at(2, 1, 10))
        assert d.run is None and d.missed is None
        assert d.active == "nightly-1" and d.phase == BackupPhase.RUNNING

    def test_slot_that_came_during_a_run_runs_after_it(self) -> None:
        done = [child("nightly-1", "Completed", at(2, 1, 30))]
        d = sched.decide(spec("* * * * *"), at(2, 0), done, created=CREATED, now=at(2, 1, 31))
        assert d.run == at(2, 1)

    def test_pending_child_counts_as_running(self) -> None:
        d = sched.decide(spec(), None, [child("x", None)], created=CREATED, now=at(2, 0, 1))
        assert d.run is None and d.active == "x"

    def test_suspended(self) -> None:
        d = sched.decide(spec(suspend=True), None, [], created=CREATED, now=at(2, 0, 1))
        assert d.run is None and d.missed is None
        assert d.phase == BackupPhase.SUSPENDED and d.next_time is None

    def test_last_success(self) -> None:
        children = [
            child("a", "Completed", at(2, day=1)),
            child("b", "Completed", at(2, day=2)),
            child("c", "Failed", at(2, day=3)),
        ]
        d = sched.decide(spec(), at(2, day=3), children, created=CREATED, now=at(3, day=3))
        assert d.last_success is not None and d.last_success.name == "b"

    def test_held_when_retention_waits_for_a_restore(self) -> None:
        children = [
            child("ok1", "Completed", at(2, day=1), in_use=True),
            child("ok2", "Completed", at(2, day=2)),
        ]
        d = sched.decide(
            spec(keep={"last": 1}), at(2, day=2), children, created=CREATED, now=at(3, day=2)
        )
        assert d.delete == () and d.held
        free = [child("ok1", "Completed", at(2, day=1)), children[1]]
        d = sched.decide(
            spec(keep={"last": 1}), at(2, day=2), free, created=CREATED, now=at(3, day=2)
        )
        assert d.delete == ("ok1",) and not d.held


class TestPrune:
    def days(self, phase: str, n: int, prefix: str) -> list[Child]:
        return [child(f"{prefix}{i}", phase, at(2, day=i)) for i in range(1, n + 1)]

    def test_keeps_the_last_completed(self) -> None:
        children = self.days("Completed", 5, "ok")
        assert sched.prune(children, Retention(last=3), at(3, day=6)) == ["ok1", "ok2"]

    def test_failed_kept_separately(self) -> None:
        children = self.days("Completed", 2, "ok") + self.days("Failed", 4, "bad")
        assert sched.prune(children, Retention(last=2, failed=1), at(3, day=6)) == [
            "bad1",
            "bad2",
            "bad3",
        ]

    def test_zero_failed_kept(self) -> None:
        children = self.days("Failed", 2, "bad")
        assert sched.prune(children, Retention(failed=0), at(3, day=6)) == ["bad1", "bad2"]

    def test_max_age_keeps_the_newest_completed(self) -> None:
        children = self.days("Completed", 3, "ok") + self.days("Failed", 1, "bad")
        pruned = sched.prune(children, Retention(last=7, max_age="24h"), at(3, day=30))
        assert pruned == ["bad1", "ok1", "ok2"]  # oldest first; the same moment by name

    def test_running_children_are_never_pruned(self) -> None:
        children = [*self.days("Completed", 2, "ok"), child("now", "Running")]
        assert sched.prune(children, Retention(last=1), at(3, day=6)) == ["ok1"]

    def test_runs_ending_in_the_same_second_keep_the_later_slot(self) -> None:
        """completedAt has whole seconds: a missed slot that runs right after a long run
        ends in the same second, and the older run must be the one pruned."""
        same = at(16, 43, 9)
        children = [
            Child("m-1642", "Completed", created=at(16, 42), completed_at=same),
            Child("m-1643", "Completed", created=at(16, 43, 9), completed_at=same),
        ]
        assert sched.prune(children, Retention(last=1), at(16, 44)) == ["m-1642"]
        assert sched.prune(children[::-1], Retention(last=1), at(16, 44)) == ["m-1642"]

    def test_in_use_is_kept(self) -> None:
        children = [
            child("ok1", "Completed", at(2, day=1), in_use=True),
            child("ok2", "Completed", at(2, day=2)),
        ]
        assert sched.prune(children, Retention(last=1), at(3, day=6)) == []


class TestChildren:
    def test_name_is_deterministic_per_slot(self) -> None:
        assert sched.child_name("nightly", at(2, 5)) == "nightly-202501010205"
        paris = at(2, 5).astimezone()
        assert sched.child_name("nightly", paris) == "nightly-202501010205"

    def test_long_parent_names_fit(self) -> None:
        name = sched.child_name("a" * 253, at(2))
        assert len(name) <= 253

    def test_child_object(self) -> None:
        parent = spec(keep={"last": 2}, verify="restore", timeZone="UTC", suspend=False)
        body = sched.child_object("nightly", "uid-1", parent, at(2))
        meta = body["metadata"]
        assert meta["name"] == "nightly-202501010200"
        assert meta["labels"] == {SCHEDULE_LABEL: "nightly"}
        assert meta["annotations"][SCHEDULED_AT_ANNOTATION] == "2025-01-01T02:00:00+00:00"
        owner = meta["ownerReferences"][0]
        assert owner["uid"] == "uid-1" and owner["controller"] is True
        assert owner["kind"] == "DatabaseBackup"
        assert "schedule" not in body["spec"] and "keep" not in body["spec"]
        assert "timeZone" not in body["spec"]
        assert body["spec"]["verify"] == "restore"
        assert body["spec"]["postgres"]["database"] == "mail_score"


class TestFromTheWire:
    def test_child_as_listed(self) -> None:
        obj = {
            "metadata": {"name": "nightly-1", "creationTimestamp": "2025-01-01T02:00:01Z"},
            "status": {"phase": "Completed", "completedAt": "2025-01-01T02:03:00Z"},
        }
        c = sched.child_of(obj, {"nightly-1"})
        assert c == Child("nightly-1", "Completed", at(2, 0, 1), at(2, 3), in_use=True)
        assert c.finished and c.when == at(2, 3)

    def test_restores_in_flight_hold_their_backups(self) -> None:
        restores = [
            {"spec": {"backup": "nightly"}, "status": {"phase": "Running", "backup": "nightly-2"}},
            {"spec": {"backup": "old"}, "status": {"phase": "Completed", "backup": "old"}},
            {"spec": {"backup": "new"}},
        ]
        assert sched.reading(restores) == {"nightly", "nightly-2", "new"}


class TestStatus:
    def test_scheduled_is_ready_and_records_being_a_schedule(self) -> None:
        d = sched.decide(spec(), None, [], created=CREATED, now=at(1))
        before = DatabaseBackupStatus(started_at=at(0), completed_at=at(0), duration="0s")
        status = sched.scheduled(spec(), before, d, None, generation=2, now=at(1))
        assert status.phase == BackupPhase.SCHEDULED and status.scheduled is True
        assert status.is_ready() and not status.is_done()
        assert status.message() == "next run at 2025-01-01T02:00:00+00:00"
        assert (status.started_at, status.completed_at, status.duration) == (None, None, None)
        assert status.next_schedule_time == at(2) and status.observed_generation == 2

    def test_running_and_suspended(self) -> None:
        busy = [child("nightly-1", "Running")]
        d = sched.decide(spec(), at(2), busy, created=CREATED, now=at(3))
        status = sched.scheduled(
            spec(), DatabaseBackupStatus(), d, "nightly-1", generation=1, now=at(3)
        )
        assert status.phase == BackupPhase.RUNNING and "nightly-1 is running" in status.message()
        d = sched.decide(spec(suspend=True), at(2), [], created=CREATED, now=at(3))
        status = sched.scheduled(
            spec(suspend=True), DatabaseBackupStatus(), d, None, generation=1, now=at(3)
        )
        assert (
            status.phase == BackupPhase.SUSPENDED and status.message() == "suspended: no new runs"
        )


class TestFailures:
    """Runs that failed in a row: Degraded (still Ready) below failureThreshold, Stalled at it."""

    def status(self, children: list[Child], **extra: Any) -> DatabaseBackupStatus:
        s = spec(**extra)
        d = sched.decide(s, at(2, day=4), children, created=CREATED, now=at(3, day=4))
        return sched.scheduled(s, DatabaseBackupStatus(), d, None, generation=1, now=at(3, day=4))

    def conds(self, status: DatabaseBackupStatus) -> dict[str, tuple[str, str]]:
        return {c.type: (c.status, c.reason) for c in status.conditions}

    def test_all_runs_completed_is_ready_and_not_degraded(self) -> None:
        status = self.status([child("n-1", "Completed", at(2, 1)), child("n-2", "Failed", at(1))])
        assert self.conds(status) == {"Ready": ("True", "Scheduled")}
        assert status.consecutive_failures == 0 and status.last_failed_backup is None

    def test_a_failed_last_run_after_successes_is_degraded_but_ready(self) -> None:
        runs = [child("n-1", "Completed", at(2, day=2)), child("n-2", "Failed", at(2, day=3))]
        status = self.status(runs)
        assert self.conds(status) == {
            "Ready": ("True", "LastRunFailed"),
            "Degraded": ("True", "LastRunFailed"),
        }
        assert status.consecutive_failures == 1 and status.last_failed_backup == "n-2"
        assert "the last run failed (newest: n-2; Stalled at 3 in a row)" in status.message()

    def test_failure_threshold_runs_in_a_row_stall_it(self) -> None:
        runs = [
            child("n-1", "Completed", at(2, day=1)),
            child("n-2", "Failed", at(2, day=2)),
            child("n-3", "Failed", at(2, day=3)),
        ]
        status = self.status(runs, failureThreshold=2)
        assert self.conds(status) == {
            "Ready": ("False", "RunsFailing"),
            "Stalled": ("True", "RunsFailing"),
            "Degraded": ("True", "RunsFailing"),
        }
        assert status.consecutive_failures == 2 and status.last_failed_backup == "n-3"

    def test_a_run_that_completes_clears_it(self) -> None:
        runs = [
            child("n-2", "Failed", at(2, day=2)),
            child("n-3", "Failed", at(2, day=3)),
            child("n-4", "Completed", at(3, day=3)),
        ]
        assert self.conds(self.status(runs, failureThreshold=2)) == {"Ready": ("True", "Scheduled")}

    def test_running_children_do_not_count(self) -> None:
        runs = [child("n-2", "Failed", at(2, day=2)), child("n-3", "Running", at(2, day=3))]
        assert sched.failed_in_a_row(runs) == [runs[0]]

    def test_threshold_only_for_schedules_and_within_retention(self) -> None:
        with pytest.raises(ValidationError):
            spec(failureThreshold=0)
        assert spec(failureThreshold=5, keep={"failed": 5}).failure_threshold == 5
