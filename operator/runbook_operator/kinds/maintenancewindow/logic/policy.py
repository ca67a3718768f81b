"""The pre-maintenance checklist of a MaintenanceWindow, one rule per condition.

Each rule returns a `RuleResult` that becomes a status condition of the same
type, so `kubectl describe` shows the checklist with a sentence per rule. A
rule the window does not ask for is reported as met (reason NotRequired).
Nothing here does I/O: the handler observes backups and objects, this module
judges them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ....core.fields import parse_duration, span
from ....core.identity import split_groups
from ....core.schedule import instant
from ..api import Approval, ApprovalRecord, MaintenanceWindowSpec

__all__ = [
    "APPROVED",
    "BACKUP_FRESH",
    "NOTICE_GIVEN",
    "POLICY_CONDITIONS",
    "ROLLBACK_PLAN_READY",
    "TARGETS_FOUND",
    "BackupSeen",
    "PolicyObservation",
    "RuleResult",
    "Stamps",
    "Verdict",
    "approval_records",
    "changed_objects",
    "evaluate",
    "judge_approvals",
    "needed_objects",
    "summary",
]

NOTICE_GIVEN = "NoticeGiven"
BACKUP_FRESH = "BackupFresh"
APPROVED = "Approved"
ROLLBACK_PLAN_READY = "RollbackPlanReady"
TARGETS_FOUND = "TargetsFound"
POLICY_CONDITIONS = (NOTICE_GIVEN, BACKUP_FRESH, APPROVED, ROLLBACK_PLAN_READY, TARGETS_FOUND)

BACKUP_COMPLETED = "Completed"


@dataclass(frozen=True)
class BackupSeen:
    """A DatabaseBackup as the policy needs it."""

    name: str
    phase: str | None
    completed_at: datetime | None
    uid: str = ""
    owners: frozenset[str] = frozenset()
    """The uids of its ownerReferences: a run of a schedule is owned by the schedule (its
    ops.mailscore.com/schedule label alone, which anyone may write, does not count)."""


@dataclass(frozen=True)
class PolicyObservation:
    """What the handler saw: backups in the namespace and which named objects exist."""

    backups: tuple[BackupSeen, ...] = ()
    backups_error: str | None = None
    """Why backups could not be listed (then the backup rule is unmet)."""
    missing: frozenset[str] = frozenset()
    """Objects named by the spec that do not exist, as 'Deployment/x' or 'ConfigMap/y'."""


@dataclass(frozen=True)
class Stamps:
    """What admission stamped on the window (core.identity): nothing here is the client's."""

    requester: str | None = None
    """Who created the window."""
    plan_revision: int | None = None
    """The current revision of what the window will do."""


@dataclass(frozen=True)
class Verdict:
    """One approval, judged."""

    approval: Approval
    counted: bool
    note: str = ""


@dataclass(frozen=True)
class RuleResult:
    type: str
    ok: bool
    reason: str
    message: str


def changed_objects(spec: MaintenanceWindowSpec) -> list[str]:
    """Every object the window changes, as 'Kind/name'."""
    names: list[str] = []
    mode = spec.maintenance_mode
    if mode is not None:
        names.append(f"ConfigMap/{mode.config_map}")
        names += [f"Deployment/{d.name}" for d in mode.restart]
    names += [f"Deployment/{t.name}" for t in spec.scale_down]
    return list(dict.fromkeys(names))


def needed_objects(spec: MaintenanceWindowSpec) -> list[str]:
    """Every object the window reads or changes, as 'Kind/name', for the existence check."""
    names = changed_objects(spec)
    if spec.policy.rollback_plan is not None:
        names += [f"Deployment/{d.name}" for d in spec.policy.rollback_plan.deployments]
    return list(dict.fromkeys(names))


def evaluate(
    spec: MaintenanceWindowSpec,
    created: datetime,
    start: datetime,
    observed: PolicyObservation,
    now: datetime,
    stamps: Stamps | None = None,
) -> list[RuleResult]:
    """Every rule of the checklist for the occurrence starting at `start`."""
    return [
        _notice(spec, created, start),
        _backup(spec, start, observed, now),
        _approvals(spec, stamps or Stamps()),
        _rollback_plan(spec, observed),
        _targets(spec, observed),
    ]


def summary(results: Iterable[RuleResult]) -> str:
    """The unmet rules in one sentence each."""
    return " ".join(r.message for r in results if not r.ok)


def _notice(spec: MaintenanceWindowSpec, created: datetime, start: datetime) -> RuleResult:
    minimum = parse_duration(spec.policy.minimum_notice)
    if spec.emergency is not None:
        return RuleResult(
            NOTICE_GIVEN,
            True,
            "EmergencyWaiver",
            f"Minimum notice of {span(minimum)} waived for an emergency: {spec.emergency.reason}",
        )
    given = start - created
    if given >= minimum:
        return RuleResult(
            NOTICE_GIVEN,
            True,
            "NoticeGiven",
            f"Announced {span(given)} before the start (minimum {span(minimum)}).",
        )
    when = f"only {span(given)} before" if given > timedelta(0) else f"{span(given)} after"
    return RuleResult(
        NOTICE_GIVEN,
        False,
        "NoticeTooShort",
        f"Created {when} the start; the policy asks for at least {span(minimum)} of notice "
        "(an emergency window with a written reason may skip this).",
    )


def _backup(
    spec: MaintenanceWindowSpec, start: datetime, observed: PolicyObservation, now: datetime
) -> RuleResult:
    rule = spec.policy.backup
    if rule is None:
        return RuleResult(BACKUP_FRESH, True, "NotRequired", "No backup required by the policy.")
    if observed.backups_error is not None:
        return RuleResult(
            BACKUP_FRESH,
            False,
            "BackupUnknown",
            f"Cannot check DatabaseBackup {rule.name}: {observed.backups_error}.",
        )
    max_age = parse_duration(rule.max_age)
    oldest_ok = start - max_age
    named = {b.uid for b in observed.backups if b.name == rule.name and b.uid}
    runs = [b for b in observed.backups if b.name == rule.name or b.owners & named]
    completed = sorted(
        (b for b in runs if b.phase == BACKUP_COMPLETED and b.completed_at is not None),
        key=lambda b: b.completed_at or start,
    )
    fresh = [b for b in completed if b.completed_at and oldest_ok <= b.completed_at <= now]
    if fresh:
        best = fresh[-1]
        assert best.completed_at is not None
        return RuleResult(
            BACKUP_FRESH,
            True,
            "BackupFresh",
            f"DatabaseBackup {best.name} completed at {instant(best.completed_at)}, "
            f"{span(start - best.completed_at)} before the start (at most {span(max_age)}).",
        )
    return RuleResult(
        BACKUP_FRESH,
        False,
        "BackupMissing",
        f"No successful DatabaseBackup of {rule.name} completed after {instant(oldest_ok)} "
        f"(at most {span(max_age)} before the start){_latest(runs, completed)}.",
    )


def _latest(runs: Sequence[BackupSeen], completed: Sequence[BackupSeen]) -> str:
    if not runs:
        return "; there is none at all"
    if completed:
        last = completed[-1]
        assert last.completed_at is not None
        return f"; the latest completed is {last.name}, at {instant(last.completed_at)}"
    phases = ", ".join(sorted({f"{b.name} {b.phase or 'Pending'}" for b in runs}))
    return f"; none has completed ({phases})"


def judge_approvals(spec: MaintenanceWindowSpec, stamps: Stamps) -> list[Verdict]:
    """Whether each approval counts: given for the current plan (as admission stamped it),
    by a named approver (user, or member of a named group, as authenticated), and not by
    the requester unless the policy allows self-approval."""
    rule = spec.policy.approvals
    users = set(rule.approvers) if rule else set()
    groups = set(rule.approver_groups) if rule else set()
    verdicts = []
    for a in spec.approvals:
        if a.plan_revision is None or stamps.plan_revision is None:
            note = "not stamped by admission, so nothing proves who gave it"
        elif a.plan_revision != stamps.plan_revision:
            note = (
                f"voided: given for plan revision {a.plan_revision}, and the window's plan "
                f"was edited since (now revision {stamps.plan_revision}); approve again"
            )
        elif a.approver not in users and not groups & set(split_groups(a.groups)):
            note = "not a named approver"
        elif a.approver == stamps.requester and not (rule and rule.allow_self_approval):
            note = "self-approval by the requester does not count"
        else:
            note = ""
        verdicts.append(Verdict(a, counted=not note, note=note))
    return verdicts


def approval_records(
    spec: MaintenanceWindowSpec,
    stamps: Stamps,
    before: Sequence[ApprovalRecord],
    now: datetime,
) -> list[ApprovalRecord]:
    """status.approvals: each approval judged, seen at the time first recorded for it."""
    seen = {(r.approved_by, r.plan_revision): r.at for r in before}
    return [
        ApprovalRecord(
            approved_by=v.approval.approver,
            groups=split_groups(v.approval.groups),
            plan_revision=v.approval.plan_revision,
            at=seen.get((v.approval.approver, v.approval.plan_revision), now),
            counted=v.counted,
            note=v.note,
        )
        for v in judge_approvals(spec, stamps)
    ]


def _approvals(spec: MaintenanceWindowSpec, stamps: Stamps) -> RuleResult:
    rule = spec.policy.approvals
    if rule is None:
        return RuleResult(APPROVED, True, "NotRequired", "No approval required by the policy.")
    verdicts = judge_approvals(spec, stamps)
    counted = [v.approval.approver for v in verdicts if v.counted]
    ignored = [f"{v.approval.approver} ({v.note})" for v in verdicts if not v.counted]
    note = f" Not counted: {'; '.join(ignored)}." if ignored else ""
    if len(counted) >= rule.required:
        return RuleResult(
            APPROVED,
            True,
            "Approved",
            f"Approved by {', '.join(counted)} ({len(counted)} of {rule.required} needed).{note}",
        )
    who = f" by {', '.join(counted)}" if counted else ""
    missing = sorted(set(rule.approvers) - set(counted))
    named = missing + [f"a member of {g}" for g in rule.approver_groups]
    from_ = f" from {', '.join(named)}" if named else ""
    voided = any(v.note.startswith("voided") for v in verdicts)
    return RuleResult(
        APPROVED,
        False,
        "ApprovalVoided" if voided else "NotApproved",
        f"{len(counted)} of {rule.required} approvals recorded{who}; "
        f"waiting for {rule.required - len(counted)} more{from_} in spec.approvals.{note}",
    )


def _rollback_plan(spec: MaintenanceWindowSpec, observed: PolicyObservation) -> RuleResult:
    rule = spec.policy.rollback_plan
    if rule is None:
        return RuleResult(
            ROLLBACK_PLAN_READY, True, "NotRequired", "No rollback plan required by the policy."
        )
    names = [d.name for d in rule.deployments]
    missing = [n for n in names if f"Deployment/{n}" in observed.missing]
    if missing:
        return RuleResult(
            ROLLBACK_PLAN_READY,
            False,
            "RollbackPlanIncomplete",
            f"Deployment {', '.join(missing)} not found, so the rollback plan cannot record "
            "its revision.",
        )
    return RuleResult(
        ROLLBACK_PLAN_READY,
        True,
        "RollbackPlanReady",
        f"The revisions and images of {', '.join(names)} will be recorded at the start.",
    )


def _targets(spec: MaintenanceWindowSpec, observed: PolicyObservation) -> RuleResult:
    missing = [n for n in changed_objects(spec) if n in observed.missing]
    if missing:
        return RuleResult(
            TARGETS_FOUND,
            False,
            "TargetNotFound",
            f"{', '.join(m.replace('/', ' ') for m in missing)} not found in this namespace.",
        )
    return RuleResult(
        TARGETS_FOUND, True, "TargetsFound", "Every object the window changes exists."
    )
