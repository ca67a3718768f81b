"""A scheduled DatabaseBackup's glue: children created and pruned, what wakes it, when.

The schedule's own decisions are test_schedule's; here: the child object as created,
the status written once per change, the wake-up at the next slot (no timer in
between), the children and restores it watches, and retention's deletions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core.names import SCHEDULE_LABEL, SCHEDULED_AT_ANNOTATION
from runbook_operator.kinds.databasebackup.handlers import DatabaseBackupKind
from runbook_operator.settings import Settings
from support.fake_kube import FakeKube
from support.fake_postgres import FakePostgres
from support.passes import Harness

NAME, PLURAL = "nightly", "databasebackups"
POSTGRES = {"host": "pg", "database": "mail_score", "credentials": {"secretName": "pg"}}
CREATED = datetime(2026, 1, 1, tzinfo=UTC)  # FakeKube's creationTimestamp


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 1, 1, 2, 0, 30, tzinfo=UTC))


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def h(kube: FakeKube, clock: Clock) -> Harness:
    kind = DatabaseBackupKind(postgres=FakePostgres())
    return Harness(kind, kube, Settings(), clock=clock)


def create(kube: FakeKube, status: dict[str, Any] | None = None, **spec: Any) -> None:
    kube.add_custom(
        PLURAL,
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "DatabaseBackup",
            "metadata": {"name": NAME, "uid": "parent-uid"},
            "spec": {"postgres": POSTGRES, "schedule": "0 2 * * *", **spec},
            "status": status or {},
        },
    )


RAN = {"lastScheduleTime": "2026-01-03T02:00:00Z"}
"""The last slot ran (days ago, when these tests start)."""


def children(kube: FakeKube) -> dict[str, dict[str, Any]]:
    return {
        name: obj
        for (plural, _, name), obj in kube.store.items()
        if plural == PLURAL and name != NAME
    }


def finish(kube: FakeKube, name: str, phase: str, at: datetime) -> None:
    obj = kube.obj(PLURAL, name)
    obj["status"] = {"phase": phase, "completedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1000)


def child(kube: FakeKube, name: str, phase: str, at: datetime) -> None:
    kube.add_custom(
        PLURAL,
        {
            "metadata": {
                "name": name,
                "labels": {SCHEDULE_LABEL: NAME},
                "ownerReferences": [{"uid": "parent-uid", "kind": "DatabaseBackup"}],
                "creationTimestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "spec": {"postgres": POSTGRES},
            "status": {"phase": phase, "completedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        },
    )


def test_a_due_slot_creates_one_child_and_sleeps_until_the_next(
    h: Harness, kube: FakeKube, clock: Clock
) -> None:
    create(kube, verify="restore", keep={"last": 2}, timeZone="UTC")
    result = h.run(NAME)
    (name, obj), *_ = children(kube).items()
    assert name == "nightly-202601010200" and len(children(kube)) == 1
    meta = obj["metadata"]
    assert meta["labels"] == {SCHEDULE_LABEL: NAME}
    assert meta["annotations"][SCHEDULED_AT_ANNOTATION] == "2026-01-01T02:00:00+00:00"
    assert meta["ownerReferences"][0]["uid"] == "parent-uid"
    assert obj["spec"]["verify"] == "restore" and "schedule" not in obj["spec"]
    status = h.status(NAME)
    assert status.phase == "Running" and status.active == name and status.scheduled is True
    assert status.last_schedule_time == datetime(2026, 1, 1, 2, tzinfo=UTC)
    assert status.next_schedule_time == datetime(2026, 1, 2, 2, tzinfo=UTC)
    assert status.is_ready() and h.reasons() == ["Scheduled"]
    assert result is not None and result.watch == {("DatabaseBackup", name)}
    assert result.requeue_after == pytest.approx(timedelta(days=1, seconds=-30).total_seconds())

    kube.calls.clear()
    h.run(NAME)  # nothing changed: nothing is written, nothing created
    assert kube.calls == []


def test_a_finished_child_wakes_the_schedule_which_records_it(
    h: Harness, kube: FakeKube, clock: Clock
) -> None:
    create(kube)
    h.run(NAME)
    finish(kube, "nightly-202601010200", "Completed", datetime(2026, 1, 1, 2, 3, tzinfo=UTC))
    clock.now += timedelta(minutes=3)
    result = h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Scheduled" and status.active is None
    assert status.last_successful_backup == "nightly-202601010200"
    assert result is not None and result.watch == frozenset()


def test_a_slot_missed_beyond_the_deadline_is_told_once(
    h: Harness, kube: FakeKube, clock: Clock
) -> None:
    clock.now = datetime(2026, 1, 1, 2, 40, tzinfo=UTC)
    create(kube, startingDeadline="30m")
    h.run(NAME)
    h.run(NAME)
    assert children(kube) == {} and h.reasons() == ["MissedSchedule"]
    assert h.status(NAME).last_schedule_time == datetime(2026, 1, 1, 2, tzinfo=UTC)


def test_suspended_creates_nothing_and_asks_for_no_wake_up(h: Harness, kube: FakeKube) -> None:
    create(kube, suspend=True)
    result = h.run(NAME)
    assert children(kube) == {} and h.status(NAME).phase == "Suspended"
    assert result is not None and result.requeue_after is None


def test_a_child_created_by_a_pass_whose_write_was_lost(h: Harness, kube: FakeKube) -> None:
    create(kube)
    child(kube, "nightly-202601010200", "Completed", datetime(2026, 1, 1, 2, 0, 10, tzinfo=UTC))
    h.run(NAME)  # the slot is still due in status: creating it again is a harmless Conflict
    assert list(children(kube)) == ["nightly-202601010200"]
    assert h.status(NAME).last_schedule_time == datetime(2026, 1, 1, 2, tzinfo=UTC)


def test_retention_prunes_but_spares_a_backup_a_restore_reads(
    h: Harness, kube: FakeKube, clock: Clock
) -> None:
    clock.now = datetime(2026, 1, 4, 1, 0, tzinfo=UTC)
    create(kube, RAN, keep={"last": 1})
    for day in (1, 2, 3):
        child(kube, f"nightly-2026010{day}0200", "Completed", datetime(2026, 1, day, 2, tzinfo=UTC))
    kube.add_custom(
        "databaserestores",
        {"metadata": {"name": "r"}, "spec": {"backup": "nightly-202601010200"}, "status": {}},
    )
    result = h.run(NAME)
    assert sorted(children(kube)) == ["nightly-202601010200", "nightly-202601030200"]
    assert h.reasons() == ["Pruned"]
    assert result is not None and ("DatabaseRestore", "*") in result.watch

    kube.obj("databaserestores", "r")["status"] = {"phase": "Completed"}
    result = h.run(NAME)  # the restore ended: it wakes the schedule, which prunes now
    assert sorted(children(kube)) == ["nightly-202601030200"]
    assert result is not None and result.watch == frozenset()


def test_a_child_being_deleted_is_not_pruned_twice(
    h: Harness, kube: FakeKube, clock: Clock
) -> None:
    clock.now = datetime(2026, 1, 4, 1, 0, tzinfo=UTC)
    create(kube, RAN, keep={"last": 1})
    for day in (1, 2):
        child(kube, f"nightly-2026010{day}0200", "Completed", datetime(2026, 1, day, 2, tzinfo=UTC))
    kube.obj(PLURAL, "nightly-202601010200")["metadata"]["finalizers"] = ["x"]
    h.run(NAME)
    h.run(NAME)
    assert h.reasons() == ["Pruned"]


def test_a_schedule_without_runs_is_an_unusable_spec(h: Harness, kube: FakeKube) -> None:
    create(kube, schedule="0 0 30 2 *")
    h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Failed" and status.scheduled is True
    assert status.message().startswith("The spec cannot be used: spec.schedule: the schedule")
    assert h.reasons() == ["InvalidSpec"]

    kube.obj(PLURAL, NAME)["spec"]["schedule"] = "0 2 * * *"  # fixed: it schedules again
    kube.obj(PLURAL, NAME)["metadata"]["resourceVersion"] = "999999"
    h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Running" and status.is_ready() and status.completed_at is None
