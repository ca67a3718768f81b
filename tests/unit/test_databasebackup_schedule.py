"""Scheduled DatabaseBackups: slots, catch-up, no overlap, suspend, retention (fixed clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.api.databasebackup import (
    SCHEDULE_LABEL,
    SCHEDULED_AT_ANNOTATION,
    BackupPhase,
    DatabaseBackupSpec,
    Retention,
)
from runbook_operator.logic import backupschedule as sched
from runbook_operator.logic.backupschedule import Child

POSTGRES = {"host": "pg", "database": "mail_score", "credentials": {"secretName": "pg"}}
CREATED = datetime(2025, 1, 1, 0, 0, 30, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> datetime:
    return datetime(2025, 1, day, hour, minute, second, tzinfo=UTC)


def spec(schedule: str = "0 2 * * *", **extra: Any) -> DatabaseBackupSpec:
    return DatabaseBackupSpec.model_validate({"postgres": POSTGRES, "schedule": schedule, **extra})


def child(name: str, phase: str | None, completed: datetime | None = None, **kw: Any) -> Child:
    return Child(name=name, phase=phase, created=completed or CREATED, completed_at=completed, **kw)


class TestSlots:
    def test_between_slots(self) -> None:
        assert sched.slots("0 2 * * *", None, at(3)) == (at(2), at(2, day=2))

    def test_exactly_on_a_slot(self) -> None:
        assert sched.slots("0 2 * * *", None, at(2)) == (at(2), at(2, day=2))

    def test_every_minute(self) -> None:
        assert sched.slots("* * * * *", "UTC", at(2, 5, 30)) == (at(2, 5), at(2, 6))

    def test_time_zone(self) -> None:
        # 02:00 in Paris is 01:00 UTC in winter.
        prev, nxt = sched.slots("0 2 * * *", "Europe/Paris", at(3))
        assert prev == at(1) and nxt == at(1, day=2)

    def test_across_dst(self) -> None:
        # Paris springs forward on 2025-03-30: 03:00 local is 01:00 UTC that day.
        now = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
        prev, nxt = sched.slots("0 3 * * *", "Europe/Paris", now)
        assert prev == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)
        assert nxt == datetime(2025, 3, 31, 1, 0, tzinfo=UTC)

    def test_unknown_time_zone(self) -> None:
        with pytest.raises(sched.InvalidSchedule, match="Mars/Olympus"):
            sched.slots("0 2 * * *", "Mars/Olympus", at(3))


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

    def test_invalid_zone_raises(self) -> None:
        with pytest.raises(sched.InvalidSchedule):
            sched.decide(spec(timeZone="No/Where"), None, [], created=CREATED, now=at(3))


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
        assert pruned == ["ok1", "bad1", "ok2"]

    def test_running_children_are_never_pruned(self) -> None:
        children = [*self.days("Completed", 2, "ok"), child("now", "Running")]
        assert sched.prune(children, Retention(last=1), at(3, day=6)) == ["ok1"]

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
