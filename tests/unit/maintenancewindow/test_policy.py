"""The pre-maintenance checklist: one rule per condition, each with its reason in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runbook_operator.core.fields import span
from runbook_operator.kinds.maintenancewindow.api import MaintenanceWindowSpec
from runbook_operator.kinds.maintenancewindow.logic.policy import (
    APPROVED,
    BACKUP_FRESH,
    NOTICE_GIVEN,
    ROLLBACK_PLAN_READY,
    TARGETS_FOUND,
    BackupSeen,
    PolicyObservation,
    RuleResult,
    Stamps,
    approval_records,
    changed_objects,
    evaluate,
    needed_objects,
    summary,
)

START = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
CREATED = START - timedelta(hours=48)
NOW = START - timedelta(minutes=1)
STAMPS = Stamps(requester="rita", plan_revision=3)
"""What admission stamped: rita created the window, its plan is at revision 3."""


def by(who: str, revision: int = 3, groups: str | None = None) -> dict[str, Any]:
    """An approval as it is stored once admission stamped it."""
    stamped: dict[str, Any] = {"approver": who, "planRevision": revision}
    return stamped if groups is None else {**stamped, "groups": groups}


def spec(**fields: Any) -> MaintenanceWindowSpec:
    return MaintenanceWindowSpec.model_validate(
        {"start": START.isoformat(), "duration": "2h", **fields}
    )


def rules(
    s: MaintenanceWindowSpec,
    observed: PolicyObservation | None = None,
    created: datetime = CREATED,
    now: datetime = NOW,
    stamps: Stamps = STAMPS,
) -> dict[str, RuleResult]:
    found = evaluate(s, created, START, observed or PolicyObservation(), now, stamps)
    return {r.type: r for r in found}


def test_nothing_asked_everything_met() -> None:
    result = rules(spec())
    assert all(r.ok for r in result.values())
    assert {r.reason for t, r in result.items() if t != NOTICE_GIVEN} == {
        "NotRequired",
        "TargetsFound",
    }
    assert summary(result.values()) == ""


def test_notice_given_and_too_short() -> None:
    assert rules(spec())[NOTICE_GIVEN].message == ("Announced 48h before the start (minimum 24h).")
    short = rules(spec(), created=START - timedelta(hours=2))[NOTICE_GIVEN]
    assert not short.ok and short.reason == "NoticeTooShort"
    assert "only 2h before the start" in short.message and "at least 24h" in short.message


def test_notice_for_a_window_created_after_its_start() -> None:
    late = rules(spec(), created=START + timedelta(minutes=3))[NOTICE_GIVEN]
    assert not late.ok and "Created 3m after the start" in late.message


def test_emergency_waives_notice_and_says_why() -> None:
    result = rules(
        spec(emergency={"reason": "INC-42 disk full"}), created=START - timedelta(minutes=5)
    )[NOTICE_GIVEN]
    assert result.ok and result.reason == "EmergencyWaiver"
    assert "INC-42 disk full" in result.message


def test_custom_minimum_notice() -> None:
    s = spec(policy={"minimumNotice": "1h"})
    assert rules(s, created=START - timedelta(minutes=90))[NOTICE_GIVEN].ok


def backup(name: str, hours_before: float, phase: str = "Completed", **kw: Any) -> BackupSeen:
    return BackupSeen(name, phase, START - timedelta(hours=hours_before), **kw)


def test_fresh_backup_by_name() -> None:
    s = spec(policy={"backup": {"name": "nightly", "maxAge": "24h"}})
    result = rules(s, PolicyObservation(backups=(backup("nightly", 3),)))[BACKUP_FRESH]
    assert result.ok and "nightly completed at 2025-03-01T23:00:00Z, 3h before" in result.message


NIGHTLY_UID = "uid-nightly"


def schedule(name: str = "nightly") -> BackupSeen:
    return BackupSeen(name, "Scheduled", None, uid=NIGHTLY_UID)


def test_child_of_a_schedule_counts_and_the_newest_wins() -> None:
    s = spec(policy={"backup": {"name": "nightly"}})
    seen = (
        schedule(),
        backup("nightly-1", 30, owners=frozenset({NIGHTLY_UID})),
        backup("nightly-2", 5, owners=frozenset({NIGHTLY_UID})),
        backup("other", 1),
    )
    result = rules(s, PolicyObservation(backups=seen))[BACKUP_FRESH]
    assert result.ok and "nightly-2" in result.message


def test_a_backup_not_owned_by_the_schedule_does_not_count_whatever_its_name() -> None:
    """Its label (which anyone may write) made it count before; only the uid counts now."""
    s = spec(policy={"backup": {"name": "nightly"}})
    seen = (
        schedule(),
        backup("nightly-forged", 1, owners=frozenset({"uid-someone-else"})),
        backup("nightly-orphan", 1),
    )
    result = rules(s, PolicyObservation(backups=seen))[BACKUP_FRESH]
    assert not result.ok and result.reason == "BackupMissing"


def test_a_child_of_a_schedule_of_another_name_does_not_count() -> None:
    s = spec(policy={"backup": {"name": "nightly"}})
    other = BackupSeen("weekly", "Scheduled", None, uid="uid-weekly")
    seen = (schedule(), other, backup("weekly-1", 1, owners=frozenset({"uid-weekly"})))
    assert not rules(s, PolicyObservation(backups=seen))[BACKUP_FRESH].ok


def test_owners_count_only_through_a_backup_of_the_named_uid() -> None:
    """No schedule of that name here (deleted): its orphans' old uid counts for nothing."""
    s = spec(policy={"backup": {"name": "nightly"}})
    seen = (backup("nightly-1", 1, owners=frozenset({NIGHTLY_UID})),)
    assert not rules(s, PolicyObservation(backups=seen))[BACKUP_FRESH].ok


def test_stale_backup_blocks_with_the_latest_named() -> None:
    s = spec(policy={"backup": {"name": "nightly", "maxAge": "24h"}})
    result = rules(s, PolicyObservation(backups=(backup("nightly", 30),)))[BACKUP_FRESH]
    assert not result.ok and result.reason == "BackupMissing"
    assert "completed after 2025-03-01T02:00:00Z" in result.message
    assert "the latest completed is nightly, at 2025-02-28T20:00:00Z" in result.message


def test_failed_or_running_backups_do_not_count() -> None:
    s = spec(policy={"backup": {"name": "nightly"}})
    seen = (backup("nightly", 2, phase="Failed"),)
    result = rules(s, PolicyObservation(backups=seen))[BACKUP_FRESH]
    assert not result.ok and "none has completed (nightly Failed)" in result.message


def test_no_backup_at_all() -> None:
    s = spec(policy={"backup": {"name": "nightly"}})
    result = rules(s)[BACKUP_FRESH]
    assert not result.ok and result.message.endswith("there is none at all.")


def test_backup_completed_in_the_future_is_not_trusted() -> None:
    s = spec(policy={"backup": {"name": "nightly"}})
    seen = (BackupSeen("nightly", "Completed", NOW + timedelta(hours=1)),)
    assert not rules(s, PolicyObservation(backups=seen))[BACKUP_FRESH].ok


def test_backups_unknown() -> None:
    s = spec(policy={"backup": {"name": "nightly"}})
    result = rules(s, PolicyObservation(backups_error="the DatabaseBackup kind is not installed"))
    assert result[BACKUP_FRESH].reason == "BackupUnknown"
    assert "not installed" in result[BACKUP_FRESH].message


def test_approvals_counted_from_named_approvers_only() -> None:
    policy = {"approvals": {"required": 2, "approvers": ["alice", "bob", "carol"]}}
    one = rules(spec(policy=policy, approvals=[by("alice"), by("mallory")]))
    assert not one[APPROVED].ok and one[APPROVED].reason == "NotApproved"
    assert "1 of 2 approvals recorded by alice" in one[APPROVED].message
    assert "waiting for 1 more from bob, carol" in one[APPROVED].message
    assert "Not counted: mallory (not a named approver)." in one[APPROVED].message
    two = rules(spec(policy=policy, approvals=[by("alice"), by("bob")]))
    assert two[APPROVED].ok and two[APPROVED].message == "Approved by alice, bob (2 of 2 needed)."


def test_an_approval_admission_did_not_stamp_never_counts() -> None:
    policy = {"approvals": {"required": 1, "approvers": ["alice"]}}
    written = rules(spec(policy=policy, approvals=[{"approver": "alice"}]))[APPROVED]
    assert not written.ok
    assert "alice (not stamped by admission, so nothing proves who gave it)" in written.message
    unstamped_window = rules(spec(policy=policy, approvals=[by("alice")]), stamps=Stamps())
    assert not unstamped_window[APPROVED].ok


def test_approvers_by_group_as_authenticated() -> None:
    policy = {"approvals": {"required": 1, "approverGroups": ["sre-leads"]}}
    member = rules(spec(policy=policy, approvals=[by("dan", groups="sre-leads,x")]))[APPROVED]
    assert member.ok and member.message == "Approved by dan (1 of 1 needed)."
    other = rules(spec(policy=policy, approvals=[by("eve", groups="devs")]))[APPROVED]
    assert not other.ok and "from a member of sre-leads" in other.message
    assert "eve (not a named approver)" in other.message


def test_self_approval_counts_only_when_the_policy_allows_it() -> None:
    named = {"required": 1, "approvers": ["rita", "alice"]}
    own = rules(spec(policy={"approvals": named}, approvals=[by("rita")]))[APPROVED]
    assert not own.ok
    assert "rita (self-approval by the requester does not count)" in own.message
    allowed = {"approvals": {**named, "allowSelfApproval": True}}
    assert rules(spec(policy=allowed, approvals=[by("rita")]))[APPROVED].ok


def test_an_edit_of_the_plan_voids_earlier_approvals() -> None:
    policy = {"approvals": {"required": 2, "approvers": ["alice", "bob"]}}
    s = spec(policy=policy, approvals=[by("alice", revision=2), by("bob")])
    result = rules(s)[APPROVED]
    assert not result.ok and result.reason == "ApprovalVoided"
    assert "1 of 2 approvals recorded by bob" in result.message
    assert "alice (voided: given for plan revision 2" in result.message
    assert "now revision 3); approve again" in result.message


def test_status_records_each_approval_first_seen_and_judged() -> None:
    policy = {"approvals": {"required": 1, "approvers": ["alice"]}}
    s = spec(policy=policy, approvals=[by("alice", groups="leads"), by("mallory")])
    first = approval_records(s, STAMPS, [], NOW)
    assert [(r.approved_by, r.groups, r.counted, r.at) for r in first] == [
        ("alice", ["leads"], True, NOW),
        ("mallory", [], False, NOW),
    ]
    assert first[1].note == "not a named approver"
    later = approval_records(s, STAMPS, first, NOW + timedelta(minutes=5))
    assert [r.at for r in later] == [NOW, NOW]  # first seen, not last looked at
    again = approval_records(s, Stamps("rita", 4), first, NOW + timedelta(minutes=5))
    assert not again[0].counted and again[0].note.startswith("voided")


def test_rollback_plan_needs_the_deployments() -> None:
    s = spec(policy={"rollbackPlan": {"deployments": [{"name": "api"}, {"name": "web"}]}})
    assert rules(s)[ROLLBACK_PLAN_READY].ok
    missing = rules(s, PolicyObservation(missing=frozenset({"Deployment/web"})))
    assert not missing[ROLLBACK_PLAN_READY].ok
    assert "Deployment web not found" in missing[ROLLBACK_PLAN_READY].message
    assert missing[TARGETS_FOUND].ok  # the rollback plan only reads it


def test_targets_found() -> None:
    s = spec(
        maintenanceMode={"restart": [{"name": "web"}]},
        scaleDown=[{"name": "api", "replicas": 1}],
    )
    assert changed_objects(s) == ["ConfigMap/frontend-config", "Deployment/web", "Deployment/api"]
    missing = rules(s, PolicyObservation(missing=frozenset({"ConfigMap/frontend-config"})))
    assert not missing[TARGETS_FOUND].ok
    assert (
        missing[TARGETS_FOUND].message == "ConfigMap frontend-config not found in this namespace."
    )


def test_needed_objects_include_the_rollback_plan_once() -> None:
    s = spec(
        scaleDown=[{"name": "api", "replicas": 1}],
        policy={"rollbackPlan": {"deployments": [{"name": "api"}, {"name": "db"}]}},
    )
    assert needed_objects(s) == ["Deployment/api", "Deployment/db"]


def test_summary_joins_unmet_rules() -> None:
    s = spec(policy={"approvals": {"required": 1, "approvers": ["a"]}, "backup": {"name": "b"}})
    text = summary(rules(s).values())
    assert "approvals recorded" in text and "DatabaseBackup of b" in text


def test_span() -> None:
    assert span(timedelta(hours=26, minutes=3, seconds=4)) == "26h3m4s"
    assert span(timedelta(minutes=90)) == "1h30m"
    assert span(timedelta(0)) == "0s"
    assert span(timedelta(seconds=-45)) == "45s"
