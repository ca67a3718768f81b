"""The pre-maintenance checklist of a MaintenanceWindow, one rule per condition.

Each rule returns a `RuleResult` that becomes a status condition of the same
type, so `kubectl describe` shows the checklist with a sentence per rule. A
rule the window does not ask for is reported as met (reason NotRequired).
Nothing here does I/O: the handler observes backups and objects, this module
judges them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ....core.fields import parse_duration, span
from ....core.identity import split_groups
from ....core.schedule import instant
from ..api import Approval, ApprovalRecord, MaintenanceWindowSpec
from .minimums import OWN, ApprovalNeed, ClusterPolicy, Minimums, binding_notice, governing
from .minimums import minimums as _minimums

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
    "minimums",
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
    cluster_policies: tuple[ClusterPolicy, ...] = ()
    """Every MaintenancePolicy of the cluster."""
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    """The labels of the window's namespace (which policies govern it)."""
    refused_urls: tuple[str, ...] = ()
    """Why the operator's RUNBOOK_ALLOWED_URLS refuses the silence's or the health check's
    URL, one sentence each (the window would fail at its start: it does not start)."""
    cluster_error: str | None = None
    """Why the MaintenancePolicies or the namespace could not be read (then the notice and
    approval rules are unmet: a minimum nobody can read is not waived)."""


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
    least = minimums(spec, observed)
    if observed.cluster_error is not None:
        notice, approved = _unknown(observed.cluster_error)
    else:
        notice, approved = _notice(spec, created, start, least), _approvals(spec, stamps, least)
    return [
        notice,
        _backup(spec, start, observed, now),
        approved,
        _rollback_plan(spec, observed),
        _targets(spec, observed),
    ]


def minimums(spec: MaintenanceWindowSpec, observed: PolicyObservation) -> Minimums:
    """The window's own rules, and those of the cluster policies that govern it."""
    policies = governing(observed.cluster_policies, observed.namespace_labels)
    return _minimums(spec.policy, policies)


def _unknown(error: str) -> tuple[RuleResult, RuleResult]:
    why = f"the cluster's MaintenancePolicies cannot be read ({error})"
    return (
        RuleResult(
            NOTICE_GIVEN,
            False,
            "ClusterPolicyUnknown",
            f"Cannot check the minimum notice: {why}; the window does not start until they "
            "can be read.",
        ),
        RuleResult(
            APPROVED,
            False,
            "ClusterPolicyUnknown",
            "Cannot check the minimum approvals for the same reason.",
        ),
    )


def summary(results: Iterable[RuleResult]) -> str:
    """The unmet rules in one sentence each."""
    return " ".join(r.message for r in results if not r.ok)


def _notice(
    spec: MaintenanceWindowSpec, created: datetime, start: datetime, least: Minimums
) -> RuleResult:
    emergency = spec.emergency is not None
    binding = binding_notice(least.notice, emergency)
    if binding is None:
        assert spec.emergency is not None
        waived = max(r.minimum for r in least.notice)
        by = [r.source for r in least.notice if r.source != OWN]
        also = f" (waivable for emergencies by {', '.join(by)})" if by else ""
        return RuleResult(
            NOTICE_GIVEN,
            True,
            "EmergencyWaiver",
            f"Minimum notice of {span(waived)}{also} waived for an emergency: "
            f"{spec.emergency.reason}",
        )
    minimum, given = binding.minimum, start - created
    cluster = binding.source != OWN
    even = ", which an emergency does not waive" if emergency else ""
    source = f" by {binding.source}{even}" if cluster else ""
    if given >= minimum:
        return RuleResult(
            NOTICE_GIVEN,
            True,
            "NoticeGiven",
            f"Announced {span(given)} before the start (minimum {span(minimum)}{source}).",
        )
    when = f"only {span(given)} before" if given > timedelta(0) else f"{span(given)} after"
    if cluster:
        return RuleResult(
            NOTICE_GIVEN,
            False,
            "NoticeTooShort",
            f"Created {when} the start; needs at least {span(minimum)} of notice "
            f"({binding.source}{even}).",
        )
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


def _unproven(a: Approval, stamps: Stamps) -> str:
    """Why nothing proves the approval is current and the approver's own ("" if proven)."""
    if a.plan_revision is None or stamps.plan_revision is None:
        return "not stamped by admission, so nothing proves who gave it"
    if a.plan_revision != stamps.plan_revision:
        return (
            f"voided: given for plan revision {a.plan_revision}, and the window's plan "
            f"was edited since (now revision {stamps.plan_revision}); approve again"
        )
    return ""


def _miss(need: ApprovalNeed, a: Approval, stamps: Stamps) -> str:
    """Why a proven approval does not count toward `need` ("" if it does)."""
    if a.approver not in need.users and not need.groups & set(split_groups(a.groups)):
        return "not a named approver"
    if a.approver == stamps.requester and not need.allow_self:
        return "self-approval by the requester does not count"
    return ""


def judge_approvals(
    spec: MaintenanceWindowSpec, stamps: Stamps, least: Minimums | None = None
) -> list[Verdict]:
    """Whether each approval counts: given for the current plan (as admission stamped it),
    by a named approver (user, or member of a named group, as authenticated), and not by
    the requester unless the policy allows self-approval; toward the window's own rule and
    each cluster minimum on its own (it counts when it counts toward one of them)."""
    needs = (least or _minimums(spec.policy, ())).approvals
    verdicts = []
    for a in spec.approvals:
        note = _unproven(a, stamps)
        if note or not needs:
            verdicts.append(Verdict(a, counted=False, note=note or "not a named approver"))
            continue
        misses = [(n, _miss(n, a, stamps)) for n in needs]
        if all(miss for _, miss in misses):
            verdicts.append(Verdict(a, counted=False, note=misses[0][1]))
            continue
        partly = "; ".join(f"not toward {n.source}: {miss}" for n, miss in misses if miss)
        verdicts.append(Verdict(a, counted=True, note=partly))
    return verdicts


def approval_records(
    spec: MaintenanceWindowSpec,
    stamps: Stamps,
    before: Sequence[ApprovalRecord],
    now: datetime,
    least: Minimums | None = None,
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
        for v in judge_approvals(spec, stamps, least)
    ]


def _approvals(spec: MaintenanceWindowSpec, stamps: Stamps | None, least: Minimums) -> RuleResult:
    stamps = stamps or Stamps()
    if not least.approvals:
        return RuleResult(APPROVED, True, "NotRequired", "No approval required by the policy.")
    verdicts = judge_approvals(spec, stamps, least)
    ignored = [f"{v.approval.approver} ({v.note})" for v in verdicts if not v.counted]
    note = f" Not counted: {'; '.join(ignored)}." if ignored else ""
    voided = any(v.note.startswith("voided") for v in verdicts)
    proven = [a for a in spec.approvals if not _unproven(a, stamps)]
    tally = [(n, [a.approver for a in proven if not _miss(n, a, stamps)]) for n in least.approvals]
    if not least.cluster_approvals:
        return _own_approvals(tally[0], note, voided)
    unmet = [(n, c) for n, c in tally if len(c) < n.required]
    if not unmet:
        everyone = list(dict.fromkeys(a for _, c in tally for a in c))
        parts = "; ".join(f"{len(c)} of {n.required} needed by {n.source}" for n, c in tally)
        return RuleResult(
            APPROVED, True, "Approved", f"Approved by {', '.join(everyone)} ({parts}).{note}"
        )
    return RuleResult(
        APPROVED,
        False,
        "ApprovalVoided" if voided else "NotApproved",
        " ".join(_short_of(n, c) for n, c in unmet) + note,
    )


def _short_of(need: ApprovalNeed, counted: list[str]) -> str:
    """e.g. "Needs 2 approvals (cluster policy p for namespaces tier=production); has 1
    (alice); waiting for 1 more from bob or a member of sre-leads."."""
    plural = "s" if need.required > 1 else ""
    who = f" ({', '.join(counted)})" if counted else ""
    missing = sorted(need.users - set(counted))
    named = missing + [f"a member of {g}" for g in sorted(need.groups)]
    if named:
        from_ = f" from {' or '.join(named)}"
    else:
        from_ = (
            ", but nobody may give them: name approvers in the window's "
            "spec.policy.approvals (or the cluster policy names them)"
        )
    return (
        f"Needs {need.required} approval{plural} ({need.source}); has {len(counted)}{who}; "
        f"waiting for {need.required - len(counted)} more{from_}."
    )


def _own_approvals(tally: tuple[ApprovalNeed, list[str]], note: str, voided: bool) -> RuleResult:
    rule, counted = tally
    if len(counted) >= rule.required:
        return RuleResult(
            APPROVED,
            True,
            "Approved",
            f"Approved by {', '.join(counted)} ({len(counted)} of {rule.required} needed).{note}",
        )
    who = f" by {', '.join(counted)}" if counted else ""
    missing = sorted(rule.users - set(counted))
    named = missing + [f"a member of {g}" for g in sorted(rule.groups)]
    from_ = f" from {', '.join(named)}" if named else ""
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
    if observed.refused_urls and not missing:
        return RuleResult(
            TARGETS_FOUND, False, "URLNotAllowed", f"{'; '.join(observed.refused_urls)}."
        )
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
