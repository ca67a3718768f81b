"""The rules a window must meet: its own policy, made stricter by the cluster's minimums.

A MaintenancePolicy (cluster-scoped) governs the windows of the namespaces its selector
picks. Nothing is merged into one number that forgets where it came from: each demand
stays a rule of its own, with its source, and a window must meet all of them. So:

- notice: the longest minimum applies. An emergency window skips its *own* minimum, and
  a cluster policy's only when that policy says `emergencyWaivesNotice: true`;
- approvals: each demand is counted on its own. A cluster policy that names approvers
  (users or groups) counts only theirs; one that names nobody counts those the window
  names, so the window chooses who and the cluster how many. The requester's own
  approval counts toward a cluster minimum only when both the policy and the window
  allow self-approval.

Pure: the handler lists the policies and reads the namespace's labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from ....core.fields import parse_duration
from ....core.selector import describe, matches
from ..api import MaintenancePolicySpec, Policy

__all__ = [
    "ApprovalNeed",
    "ClusterPolicy",
    "Minimums",
    "NoticeRule",
    "binding_notice",
    "governing",
    "minimums",
]

OWN = "the window's own policy"


@dataclass(frozen=True)
class ClusterPolicy:
    """One MaintenancePolicy, as listed."""

    name: str
    spec: MaintenancePolicySpec

    @property
    def source(self) -> str:
        """e.g. "cluster policy production-minimums for namespaces tier=production"."""
        selector = self.spec.namespace_selector
        scope = describe(selector)
        where = "every namespace" if scope == "everything" else f"namespaces {scope}"
        return f"cluster policy {self.name} for {where}"


@dataclass(frozen=True)
class NoticeRule:
    minimum: timedelta
    source: str
    """OWN, or a ClusterPolicy's source."""
    waivable: bool
    """Whether an emergency window skips it."""


@dataclass(frozen=True)
class ApprovalNeed:
    required: int
    users: frozenset[str]
    groups: frozenset[str]
    allow_self: bool
    source: str

    @property
    def cluster(self) -> bool:
        return self.source != OWN


@dataclass(frozen=True)
class Minimums:
    """Every rule that binds one window, its own first."""

    notice: tuple[NoticeRule, ...]
    approvals: tuple[ApprovalNeed, ...]
    governed_by: tuple[str, ...] = ()
    """The names of the cluster policies that govern the window."""

    @property
    def cluster_approvals(self) -> bool:
        return any(n.cluster for n in self.approvals)


def governing(
    policies: Iterable[ClusterPolicy], namespace_labels: Mapping[str, str]
) -> list[ClusterPolicy]:
    """The policies whose namespaceSelector picks a namespace with these labels, by name."""
    return sorted(
        (p for p in policies if matches(p.spec.namespace_selector, namespace_labels)),
        key=lambda p: p.name,
    )


def minimums(own: Policy, policies: Sequence[ClusterPolicy]) -> Minimums:
    """The window's own rules and those of the cluster policies that govern it."""
    notice = [NoticeRule(parse_duration(own.minimum_notice), OWN, waivable=True)]
    needs: list[ApprovalNeed] = []
    rule = own.approvals
    own_users = frozenset(rule.approvers) if rule else frozenset()
    own_groups = frozenset(rule.approver_groups) if rule else frozenset()
    own_self = rule.allow_self_approval if rule else False
    if rule is not None:
        needs.append(ApprovalNeed(rule.required, own_users, own_groups, own_self, OWN))
    for p in policies:
        if p.spec.minimum_notice is not None:
            minimum = parse_duration(p.spec.minimum_notice)
            notice.append(NoticeRule(minimum, p.source, p.spec.emergency_waives_notice))
        least = p.spec.approvals
        if least is None:
            continue
        names_someone = bool(least.approvers or least.approver_groups)
        needs.append(
            ApprovalNeed(
                least.required,
                frozenset(least.approvers) if names_someone else own_users,
                frozenset(least.approver_groups) if names_someone else own_groups,
                least.allow_self_approval and own_self,
                p.source,
            )
        )
    return Minimums(tuple(notice), tuple(needs), tuple(p.name for p in policies))


def binding_notice(rules: Iterable[NoticeRule], emergency: bool) -> NoticeRule | None:
    """The longest minimum notice that applies (None: an emergency waives every one). On
    a tie the cluster's is named, since the window could not have asked for less."""
    applicable = [r for r in rules if not (emergency and r.waivable)]
    if not applicable:
        return None
    return max(applicable, key=lambda r: (r.minimum, r.source != OWN))
