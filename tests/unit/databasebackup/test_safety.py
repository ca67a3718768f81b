"""Safety backups have their own rule: newest N per database, a max age, Failed ones
superseded, nothing a restore in flight reads or awaits (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runbook_operator.core.names import PRE_RESTORE_LABEL
from runbook_operator.kinds.databasebackup.logic.safety import (
    SafetyBackup,
    SafetyRule,
    awaited,
    next_expiry,
    prune,
    safety_backups,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
MAIL = ("pg", 5432, "mail")
BILLING = ("pg", 5432, "billing")


def b(name: str, hours_ago: float, phase: str = "Completed", db: Any = MAIL) -> SafetyBackup:
    return SafetyBackup(name, db, phase, NOW - timedelta(hours=hours_ago))


def test_the_newest_n_completed_per_database_are_kept() -> None:
    backups = [b("m1", 1), b("m2", 2), b("m3", 3), b("m4", 4), b("x1", 5, db=BILLING)]
    assert prune(backups, SafetyRule(keep=2), NOW, set()) == ["m4", "m3"]  # oldest first


def test_databases_are_counted_apart() -> None:
    backups = [b("m1", 1), b("x1", 2, db=BILLING), b("x2", 3, db=BILLING)]
    assert prune(backups, SafetyRule(keep=1), NOW, set()) == ["x2"]


def test_the_same_database_name_on_another_server_is_another_database() -> None:
    other = ("pg-2", 5432, "mail")
    assert prune([b("m1", 1), b("o1", 2, db=other)], SafetyRule(keep=1), NOW, set()) == []


def test_max_age_prunes_old_ones_but_never_the_newest_completed() -> None:
    rule = SafetyRule(keep=5, max_age=timedelta(hours=24))
    backups = [b("m1", 30), b("m2", 48), b("m3", 10, db=BILLING)]
    assert prune(backups, rule, NOW, set()) == ["m2"]
    assert prune([b("only", 1000)], rule, NOW, set()) == []


def test_a_failed_one_goes_once_a_newer_one_completed_or_it_aged_out() -> None:
    backups = [b("ok", 1), b("failed-before", 2, "Failed"), b("failed-after", 0.5, "Failed")]
    assert prune(backups, SafetyRule(keep=3), NOW, set()) == ["failed-before"]
    aged = SafetyRule(keep=3, max_age=timedelta(minutes=10))
    assert prune([b("failed", 1, "Failed")], aged, NOW, set()) == ["failed"]
    assert prune([b("failed", 1, "Failed")], SafetyRule(keep=3), NOW, set()) == []


def test_running_ones_are_never_touched() -> None:
    running = SafetyBackup("running", MAIL, "Running", None)
    pending = SafetyBackup("pending", MAIL, None, None)
    assert prune([b("m1", 1), running, pending], SafetyRule(keep=1), NOW, set()) == []


def test_what_a_restore_reads_or_awaits_is_kept() -> None:
    backups = [b("m1", 1), b("m2", 2), b("m3", 3)]
    assert prune(backups, SafetyRule(keep=1), NOW, {"m2"}) == ["m3"]


def test_keep_is_at_least_one() -> None:
    assert prune([b("m1", 1), b("m2", 2)], SafetyRule(keep=0), NOW, set()) == ["m2"]


def test_next_expiry_is_when_the_next_kept_one_ages_out() -> None:
    rule = SafetyRule(keep=5, max_age=timedelta(hours=24))
    backups = [b("m1", 1), b("m2", 20), b("m3", 22)]
    assert next_expiry(backups, rule, NOW) == NOW + timedelta(hours=2)  # m3 at 24 h
    assert next_expiry([b("m1", 100)], rule, NOW) is None  # the newest never ages out
    assert next_expiry(backups, SafetyRule(keep=5), NOW) is None


def obj(name: str, *, label: bool = True, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {PRE_RESTORE_LABEL: "r"} if label else {}}
    pg = {"host": "pg", "port": 5433, "database": "mail", "credentials": {"secretName": "s"}}
    return {"metadata": meta, "spec": {"postgres": pg}, "status": status}


def test_safety_backups_are_read_from_objects_with_the_label_only() -> None:
    objs = [
        obj("s1", phase="Completed", completedAt="2026-12-04T10:00:00+00:00"),
        obj("plain", label=False, phase="Completed", completedAt="2026-12-04T10:00:00+00:00"),
        obj("running", phase="Running"),
    ]
    deleting = obj("deleting", phase="Completed", completedAt="2026-12-04T09:00:00+00:00")
    deleting["metadata"]["deletionTimestamp"] = "2026-12-04T11:00:00Z"
    got = safety_backups([*objs, deleting])
    assert [s.name for s in got] == ["s1", "running"]
    assert got[0].database == ("pg", 5433, "mail") and got[0].done and not got[1].done
    assert got[0].completed_at == datetime(2026, 12, 4, 10, tzinfo=UTC)


def test_awaited_are_the_safety_backups_of_restores_in_flight() -> None:
    restores = [
        {"status": {"phase": "Running", "safetyBackup": "a"}},
        {"status": {"phase": "Completed", "safetyBackup": "b"}},
        {"status": {"phase": "Pending"}},
        {},
    ]
    assert awaited(restores) == {"a"}
