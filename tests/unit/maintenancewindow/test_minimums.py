"""The cluster's minimums (MaintenancePolicy) made stricter than a window's own policy.

Every test reads as a situation an SRE meets: a production namespace, the cluster's
policy, what the window asks for itself, and the sentence the condition says.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.kinds.maintenancewindow.api import (
    MaintenancePolicySpec,
    MaintenanceWindowSpec,
)
from runbook_operator.kinds.maintenancewindow.logic.minimums import (
    OWN,
    ClusterPolicy,
    binding_notice,
    governing,
    minimums,
)
from runbook_operator.kinds.maintenancewindow.logic.policy import (
    APPROVED,
    NOTICE_GIVEN,
    PolicyObservation,
    RuleResult,
    Stamps,
    approval_records,
    evaluate,
)
from runbook_operator.kinds.maintenancewindow.logic.policy import (
    minimums as window_minimums,
)

START = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
NOW = START - timedelta(minutes=1)
STAMPS = Stamps(requester="rita", plan_revision=3)
PROD = {"tier": "production"}
SOURCE = "cluster policy production-minimums for namespaces tier=production"


def cluster(name: str = "production-minimums", **fields: Any) -> ClusterPolicy:
    body = {"namespaceSelector": {"matchLabels": PROD}, **fields}
    return ClusterPolicy(name, MaintenancePolicySpec.model_validate(body))


TWO = cluster(minimumNotice="24h", approvals={"required": 2})
"""The issue's example: in tier=production, 2 approvals and 24 h notice."""


def by(who: str, revision: int = 3, groups: str | None = None) -> dict[str, Any]:
    stamped: dict[str, Any] = {"approver": who, "planRevision": revision}
    return stamped if groups is None else {**stamped, "groups": groups}


def window(**policy: Any) -> MaintenanceWindowSpec:
    """A window with this spec.policy and no approvals."""
    return MaintenanceWindowSpec.model_validate(
        {"start": START.isoformat(), "duration": "2h", "policy": policy}
    )


def emergency(spec: MaintenanceWindowSpec) -> MaintenanceWindowSpec:
    body = {**spec.wire(), "emergency": {"reason": "payments down"}}
    return MaintenanceWindowSpec.model_validate(body)


def seen(*policies: ClusterPolicy, labels: dict[str, str] | None = None) -> PolicyObservation:
    return PolicyObservation(
        cluster_policies=policies, namespace_labels=PROD if labels is None else labels
    )


def rules(
    spec: MaintenanceWindowSpec,
    observed: PolicyObservation,
    notice: timedelta = timedelta(hours=48),
) -> dict[str, RuleResult]:
    found = evaluate(spec, START - notice, START, observed, NOW, STAMPS)
    return {r.type: r for r in found}


ONE_OF_ALICE_BOB = {"required": 1, "approvers": ["alice", "bob"]}


# --- which policies govern a window ------------------------------------------------------


def test_only_policies_whose_selector_picks_the_namespace_govern_it() -> None:
    staging = ClusterPolicy(
        "staging",
        MaintenancePolicySpec.model_validate(
            {"namespaceSelector": {"matchLabels": {"tier": "staging"}}, "minimumNotice": "1h"}
        ),
    )
    everywhere = ClusterPolicy(
        "everywhere", MaintenancePolicySpec.model_validate({"minimumNotice": "1h"})
    )
    assert [p.name for p in governing([TWO, staging, everywhere], PROD)] == [
        "everywhere",
        "production-minimums",
    ]
    assert [p.name for p in governing([TWO, staging], {})] == []
    assert everywhere.source == "cluster policy everywhere for every namespace"
    assert TWO.source == SOURCE


def test_no_cluster_policy_leaves_the_window_as_it_was() -> None:
    least = minimums(window().policy, [])
    assert least.approvals == () and least.governed_by == ()
    assert [(r.minimum, r.source, r.waivable) for r in least.notice] == [
        (timedelta(hours=24), OWN, True)
    ]


def test_unlabelled_namespace_is_not_governed() -> None:
    result = rules(window(approvals=ONE_OF_ALICE_BOB), seen(TWO, labels={}))
    assert result[APPROVED].message == (
        "0 of 1 approvals recorded; waiting for 1 more from alice, bob in spec.approvals."
    )
    assert result[NOTICE_GIVEN].message == "Announced 48h before the start (minimum 24h)."


# --- notice ----------------------------------------------------------------------------------


def test_the_longer_notice_wins_and_is_named() -> None:
    week = cluster(minimumNotice="168h")
    result = rules(window(minimumNotice="1h"), seen(week), notice=timedelta(hours=48))
    short = result[NOTICE_GIVEN]
    assert not short.ok and short.reason == "NoticeTooShort"
    assert short.message == (
        f"Created only 48h before the start; needs at least 168h of notice ({SOURCE})."
    )


def test_a_window_asking_for_less_notice_than_the_cluster_gets_the_cluster_minimum() -> None:
    least = minimums(window(minimumNotice="1h").policy, [TWO])
    binding = binding_notice(least.notice, emergency=False)
    assert binding is not None and binding.minimum == timedelta(hours=24)
    assert binding.source == SOURCE
    result = rules(window(minimumNotice="1h"), seen(TWO), notice=timedelta(hours=2))
    assert not result[NOTICE_GIVEN].ok
    assert "needs at least 24h of notice (cluster policy production-minimums" in (
        result[NOTICE_GIVEN].message
    )


def test_a_window_asking_for_more_keeps_its_own() -> None:
    result = rules(window(minimumNotice="72h"), seen(TWO), notice=timedelta(hours=48))
    assert not result[NOTICE_GIVEN].ok
    assert "the policy asks for at least 72h" in result[NOTICE_GIVEN].message


def test_met_cluster_notice_is_named_too() -> None:
    result = rules(window(minimumNotice="1h"), seen(TWO), notice=timedelta(hours=30))
    assert result[NOTICE_GIVEN].ok
    assert result[NOTICE_GIVEN].message == (
        f"Announced 30h before the start (minimum 24h by {SOURCE})."
    )


def test_on_a_tie_the_cluster_is_named() -> None:
    least = minimums(window(minimumNotice="24h").policy, [TWO])
    binding = binding_notice(least.notice, emergency=False)
    assert binding is not None and binding.source == SOURCE


def test_an_emergency_does_not_waive_the_cluster_notice() -> None:
    spec = emergency(window(minimumNotice="24h"))
    result = rules(spec, seen(cluster(minimumNotice="1h")), notice=timedelta(minutes=5))
    short = result[NOTICE_GIVEN]
    assert not short.ok and short.reason == "NoticeTooShort"
    assert short.message == (
        "Created only 5m before the start; needs at least 1h of notice "
        f"({SOURCE}, which an emergency does not waive)."
    )
    # Its own 24 h is waived: 2 h of notice satisfies the cluster's 1 h.
    ok = rules(spec, seen(cluster(minimumNotice="1h")), notice=timedelta(hours=2))[NOTICE_GIVEN]
    assert ok.ok and ok.message == (
        f"Announced 2h before the start (minimum 1h by {SOURCE}, which an emergency does "
        "not waive)."
    )


def test_a_cluster_policy_may_let_emergencies_skip_its_notice() -> None:
    lenient = cluster(minimumNotice="48h", emergencyWaivesNotice=True)
    spec = emergency(window())
    result = rules(spec, seen(lenient), notice=timedelta(minutes=5))
    waived = result[NOTICE_GIVEN]
    assert waived.ok and waived.reason == "EmergencyWaiver"
    assert waived.message == (
        f"Minimum notice of 48h (waivable for emergencies by {SOURCE}) waived for an "
        "emergency: payments down"
    )
    # ... but not for a window that is no emergency.
    assert not rules(window(), seen(lenient), notice=timedelta(hours=30))[NOTICE_GIVEN].ok


def test_emergency_without_cluster_policy_is_waived_as_before() -> None:
    result = rules(emergency(window()), seen(), notice=timedelta(minutes=5))[NOTICE_GIVEN]
    assert result.ok and result.message == (
        "Minimum notice of 24h waived for an emergency: payments down"
    )


def test_of_several_policies_the_strictest_notice_binds() -> None:
    a = cluster("a", minimumNotice="12h")
    b = cluster("b", minimumNotice="36h")
    result = rules(window(minimumNotice="1h"), seen(a, b), notice=timedelta(hours=24))
    assert not result[NOTICE_GIVEN].ok
    assert "needs at least 36h of notice (cluster policy b for" in result[NOTICE_GIVEN].message


# --- approvals -------------------------------------------------------------------------------


def test_the_issue_example_one_approval_is_not_enough_in_production() -> None:
    spec = _spec(ONE_OF_ALICE_BOB, by("alice"))
    result = rules(spec, seen(TWO))[APPROVED]
    assert not result.ok and result.reason == "NotApproved"
    assert result.message == (
        f"Needs 2 approvals ({SOURCE}); has 1 (alice); waiting for 1 more from bob."
    )


def test_the_second_approval_meets_both() -> None:
    spec = _spec(ONE_OF_ALICE_BOB, by("alice"), by("bob"))
    result = rules(spec, seen(TWO))[APPROVED]
    assert result.ok and result.reason == "Approved"
    assert result.message == (
        f"Approved by alice, bob (2 of 1 needed by {OWN}; 2 of 2 needed by {SOURCE})."
    )


def _spec(rule: dict[str, Any] | None, *approvals: dict[str, Any]) -> MaintenanceWindowSpec:
    body: dict[str, Any] = {"start": START.isoformat(), "duration": "2h"}
    if rule is not None:
        body["policy"] = {"approvals": rule}
    body["approvals"] = list(approvals)
    return MaintenanceWindowSpec.model_validate(body)


def test_a_window_without_an_approval_rule_still_needs_the_cluster_s() -> None:
    result = rules(_spec(None), seen(TWO))[APPROVED]
    assert not result.ok
    assert result.message == (
        f"Needs 2 approvals ({SOURCE}); has 0; waiting for 2 more, but nobody may give "
        "them: name approvers in the window's spec.policy.approvals (or the cluster policy "
        "names them)."
    )


def test_cluster_named_approvers_are_the_only_ones_counting_toward_its_minimum() -> None:
    leads = cluster(approvals={"required": 1, "approverGroups": ["sre-leads"]})
    spec = _spec(ONE_OF_ALICE_BOB, by("alice"))
    result = rules(spec, seen(leads))[APPROVED]
    assert not result.ok
    assert result.message == (
        f"Needs 1 approval ({SOURCE}); has 0; waiting for 1 more from a member of sre-leads."
    )
    led = _spec(ONE_OF_ALICE_BOB, by("alice"), by("lee", groups="sre-leads"))
    assert rules(led, seen(leads))[APPROVED].ok


def test_an_approval_counting_only_toward_the_cluster_is_recorded_with_why() -> None:
    leads = cluster(approvals={"required": 1, "approverGroups": ["sre-leads"]})
    spec = _spec(ONE_OF_ALICE_BOB, by("alice"), by("lee", groups="sre-leads"))
    least = window_minimums(spec, seen(leads))
    records = {r.approved_by: r for r in approval_records(spec, STAMPS, [], NOW, least)}
    assert records["lee"].counted and records["alice"].counted
    assert records["lee"].note == f"not toward {OWN}: not a named approver"
    assert records["alice"].note == f"not toward {SOURCE}: not a named approver"


def test_the_cluster_minimum_forbids_self_approval_the_window_allows() -> None:
    rule = {"required": 1, "approvers": ["rita", "alice"], "allowSelfApproval": True}
    spec = _spec(rule, by("rita"))
    alone = rules(spec, seen())[APPROVED]
    assert alone.ok  # the window's own rule lets rita approve her own window
    governed = rules(spec, seen(cluster(approvals={"required": 1})))[APPROVED]
    assert not governed.ok
    assert f"Needs 1 approval ({SOURCE}); has 0" in governed.message
    least = window_minimums(spec, seen(cluster(approvals={"required": 1})))
    (record,) = approval_records(spec, STAMPS, [], NOW, least)
    assert record.note == f"not toward {SOURCE}: self-approval by the requester does not count"


def test_self_approval_counts_toward_a_cluster_minimum_only_when_both_allow_it() -> None:
    allows = cluster(approvals={"required": 1, "allowSelfApproval": True})
    rule = {"required": 1, "approvers": ["rita"], "allowSelfApproval": True}
    assert rules(_spec(rule, by("rita")), seen(allows))[APPROVED].ok
    strict = {"required": 1, "approvers": ["rita"]}
    assert not rules(_spec(strict, by("rita")), seen(allows))[APPROVED].ok


def test_a_voided_approval_counts_for_nobody() -> None:
    spec = _spec(ONE_OF_ALICE_BOB, by("alice", revision=2), by("bob"))
    result = rules(spec, seen(TWO))[APPROVED]
    assert not result.ok and result.reason == "ApprovalVoided"
    assert "has 1 (bob)" in result.message
    assert "Not counted: alice (voided: given for plan revision 2" in result.message


def test_each_of_several_cluster_minimums_is_counted_on_its_own() -> None:
    two = cluster("two", approvals={"required": 2})
    leads = cluster("leads", approvals={"required": 1, "approvers": ["lee"]})
    spec = _spec({"required": 1, "approvers": ["alice", "bob"]}, by("alice"), by("bob"))
    result = rules(spec, seen(two, leads))[APPROVED]
    assert not result.ok
    assert result.message == (
        "Needs 1 approval (cluster policy leads for namespaces tier=production); has 0; "
        "waiting for 1 more from lee."
    )
    assert (
        rules(_spec(None, by("alice"), by("bob"), by("lee")), seen(two, leads))[APPROVED].ok
        is False
    )  # no own rule: "two" counts the window's approvers, and it names none


def test_the_window_cannot_lower_the_count() -> None:
    spec = _spec({"required": 1, "approvers": ["alice", "bob", "carol"]}, by("alice"))
    assert rules(spec, seen())[APPROVED].ok
    assert not rules(spec, seen(TWO))[APPROVED].ok


def test_governed_by_lists_the_policies_by_name() -> None:
    other = cluster("aa-everyone", minimumNotice="1h")
    least = window_minimums(window(), seen(TWO, other))
    assert least.governed_by == ("aa-everyone", "production-minimums")


# --- a minimum nobody can read is not waived -------------------------------------------------


def test_unreadable_cluster_policies_block_notice_and_approvals() -> None:
    observed = PolicyObservation(cluster_error="maintenancepolicies is forbidden")
    result = rules(window(), observed)
    for kind in (NOTICE_GIVEN, APPROVED):
        assert not result[kind].ok and result[kind].reason == "ClusterPolicyUnknown"
    assert result[NOTICE_GIVEN].message == (
        "Cannot check the minimum notice: the cluster's MaintenancePolicies cannot be read "
        "(maintenancepolicies is forbidden); the window does not start until they can be read."
    )


# --- the policy object's own validation ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"approvals": {"required": 0}},
        {"minimumNotice": "soon"},
        {"namespaceSelector": {"matchExpressions": [{"key": "t", "operator": "Near"}]}},
    ],
)
def test_a_policy_spec_the_operator_cannot_use_is_refused(body: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        MaintenancePolicySpec.model_validate(body)
