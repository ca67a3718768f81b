"""Whole MaintenanceWindows through the handler's pass, against in-memory fakes.

The e2e tests prove the same against the real test bed; these run every branch
(and a crash after every single step) in milliseconds.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.logic.maintenancewindow_steps import RESTARTED_AT
from runbook_operator.names import HOLD_ANNOTATION
from support.maintenancewindow_fakes import NS, FakeKube, Sim, mail_score

START = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
CREATED = START - timedelta(days=2)

RUNBOOK_WINDOW: dict[str, Any] = {
    "start": START.isoformat(),
    "duration": "1h",
    "reason": "PostgreSQL minor upgrade",
    "policy": {
        "minimumNotice": "24h",
        "backup": {"name": "nightly", "maxAge": "24h"},
        "approvals": {"required": 2, "approvers": ["alice", "bob", "carol"]},
        "rollbackPlan": {"deployments": [{"name": "mail-score-backend"}]},
    },
    "approvals": [{"approver": "alice"}, {"approver": "bob"}],
    "maintenanceMode": {"restart": [{"name": "mail-score-frontend"}]},
    "scaleDown": [{"name": "mail-score-backend", "replicas": 1}],
    "silence": {"url": "http://am:9093", "matchers": [{"name": "namespace", "value": NS}]},
    "healthCheck": {"http": {"url": "http://mail-score-frontend/healthz"}},
}

START_STEPS = [
    "AcquireHolds",
    "RecordRollbackPlan",
    "CreateSilence",
    "RecordMaintenanceFlag",
    "SetMaintenanceFlag",
    "RecordRestart",
    "RestartDeployments",
    "AwaitRestartRollouts",
    "RecordReplicas",
    "ScaleDown",
    "AwaitScaleDown",
]
END_STEPS = [
    "RestoreReplicas",
    "RestoreMaintenanceFlag",
    "UndoRestart",
    "AwaitRollouts",
    "HealthCheck",
    "ExpireSilence",
    "ReleaseHolds",
]


def sim(spec: dict[str, Any] | None = None, **kw: Any) -> Sim:
    s = Sim(
        spec=copy.deepcopy(spec or RUNBOOK_WINDOW),
        now=START - timedelta(minutes=2),
        created=CREATED,
        **kw,
    )
    mail_score(s.kube)
    s.kube.backups.append(
        {
            "metadata": {"name": "nightly-1", "labels": {"ops.mailscore.com/schedule": "nightly"}},
            "status": {
                "phase": "Completed",
                "completedAt": (START - timedelta(hours=3)).isoformat(),
            },
        }
    )
    return s


def snapshot(kube: FakeKube) -> dict[str, Any]:
    """Everything a window may touch, minus what Kubernetes itself moves (revisions)."""
    deployments = {}
    for name, d in kube.deployments.items():
        annotations = dict(d["metadata"]["annotations"])
        annotations.pop("deployment.kubernetes.io/revision")
        deployments[name] = {"annotations": annotations, "spec": copy.deepcopy(d["spec"])}
    return {
        "deployments": deployments,
        "configmaps": copy.deepcopy(kube.configmaps),
        "hpas": copy.deepcopy(kube.hpas),
    }


def test_the_runbook_window_end_to_end() -> None:
    s = sim()
    before = snapshot(s.kube)
    s.run_until(lambda s: s.phase == "Pending" and "BackupFresh" in str(s.status))
    assert s.status["nextStart"] == "2025-03-02T02:00:00Z"
    assert s.status["nextEnd"] == "2025-03-02T03:00:00Z"
    ready = next(c for c in s.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Scheduled" and ready["status"] == "False"

    s.run_until(lambda s: s.phase == "Active")
    assert s.step_names() == START_STEPS
    assert s.now - START < timedelta(seconds=8)  # one step per half-second tick
    kube = s.kube
    assert kube.configmaps["frontend-config"]["data"]["MAINTENANCE_MODE"] == "true"
    frontend, backend = (
        kube.deployments["mail-score-frontend"],
        kube.deployments["mail-score-backend"],
    )
    assert (
        frontend["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
        == (s.status["originals"]["restartStamp"])
    )
    assert backend["spec"]["replicas"] == 1
    assert (
        kube.hpas["backend-hpa"]["spec"]["minReplicas"],
        kube.hpas["backend-hpa"]["spec"]["maxReplicas"],
    ) == (1, 1)
    assert frontend["metadata"]["annotations"][HOLD_ANNOTATION] == "MaintenanceWindow/weekly"
    assert len(s.alertmanager.active()) == 1
    assert s.status["rollbackPlan"] == [
        {
            "name": "mail-score-backend",
            "revision": "1",
            "images": [{"container": "c", "image": "backend:1.4.2"}],
        }
    ]
    assert s.status["originals"]["maintenanceFlag"] == {
        "configMap": "frontend-config",
        "key": "MAINTENANCE_MODE",
        "present": True,
        "value": "false",
        "maintenanceValue": "true",
    }

    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.phase == "Completed")
    assert s.step_names() == START_STEPS + END_STEPS
    assert snapshot(kube) == before
    assert s.alertmanager.active() == [] and s.alertmanager.created == 1
    assert kube.template_changes["mail-score-frontend"] == 2  # restarted, then rolled back
    ready = next(c for c in s.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Completed"
    assert [r for r in s.reasons() if r in START_STEPS + END_STEPS] == START_STEPS + END_STEPS


def test_policy_conditions_reported_before_the_start() -> None:
    s = sim()
    s.one()
    types = {c["type"]: c for c in s.status["conditions"]}
    assert {"NoticeGiven", "BackupFresh", "Approved", "RollbackPlanReady", "TargetsFound"} <= set(
        types
    )
    assert all(types[t]["status"] == "True" for t in ("NoticeGiven", "BackupFresh", "Approved"))
    assert s.status["policyCheckedAt"]


@pytest.mark.parametrize("step", START_STEPS + END_STEPS)
def test_a_crash_after_any_step_loses_nothing_and_repeats_nothing(step: str) -> None:
    """The step's effect happens, its record is lost (the operator died before writing it);
    the next pass repeats it as an ensure: same values, one silence, two restarts."""
    s = sim()
    before = snapshot(s.kube)
    s.now = START
    crashed = False
    for _ in range(400):
        if s.phase == "Active":
            s.now = max(s.now, START + timedelta(hours=1))
        if s.phase == "Completed":
            break
        crash = not crashed and _next_step(s) == step
        s.tick(crash=crash)
        crashed = crashed or crash
    assert crashed and s.phase == "Completed"
    assert snapshot(s.kube) == before
    assert s.alertmanager.created == 1 and s.alertmanager.active() == []
    assert s.kube.template_changes["mail-score-frontend"] == 2
    assert s.step_names() == START_STEPS + END_STEPS


def _next_step(s: Sim) -> str | None:
    from runbook_operator.handlers.maintenancewindow import _window
    from runbook_operator.logic.maintenancewindow import advance

    w = _window(copy.deepcopy(s.obj), deleting=False)
    assert not isinstance(w, str)
    work = advance(w, s.now).work
    if work is not None and work.at_start:
        return "AcquireHolds"  # right after the checklist, in the same pass
    return str(work.step) if work is not None and work.step is not None else None


def test_cancel_mid_window_restores_everything() -> None:
    s = sim()
    before = snapshot(s.kube)
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    s.edit(cancel=True)
    s.run_until(lambda s: s.phase == "Cancelled")
    assert snapshot(s.kube) == before and s.alertmanager.active() == []
    ready = next(c for c in s.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Cancelled" and ready["status"] == "True"


def test_cancel_while_starting_undoes_only_what_may_have_begun() -> None:
    s = sim()
    before = snapshot(s.kube)
    s.now = START
    s.run_until(lambda s: s.step_names()[-1:] == ["SetMaintenanceFlag"])
    s.edit(cancel=True)
    s.run_until(lambda s: s.phase == "Cancelled")
    assert snapshot(s.kube) == before
    ended = s.step_names()[s.step_names().index("SetMaintenanceFlag") + 1 :]
    assert ended == [
        "RestoreMaintenanceFlag",
        "AwaitRollouts",
        "HealthCheck",
        "ExpireSilence",
        "ReleaseHolds",
    ]


def test_delete_mid_window_restores_without_waiting() -> None:
    s = sim()
    before = snapshot(s.kube)
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    for _ in range(20):
        if s.one(deleting=True).finished:
            break
    assert snapshot(s.kube) == before and s.alertmanager.active() == []
    assert "AwaitRollouts" not in s.step_names() and "HealthCheck" not in s.step_names()
    assert "Restored" in s.reasons()


def test_delete_pending_window_is_immediate() -> None:
    s = sim()
    s.one()
    assert s.one(deleting=True).finished


def test_cancel_before_start() -> None:
    s = sim()
    s.one()
    s.edit(cancel=True)
    s.one()
    assert s.phase == "Cancelled" and s.step_names() == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"created": START - timedelta(hours=1)}, "NoticeTooShort"),
        ({"approvals": [{"approver": "alice"}]}, "NotApproved"),
        ({"backups": []}, "BackupMissing"),
    ],
)
def test_blocked_at_start_with_the_reason(change: dict[str, Any], reason: str) -> None:
    spec = copy.deepcopy(RUNBOOK_WINDOW)
    if "approvals" in change:
        spec["approvals"] = change["approvals"]
    s = sim(spec)
    if "created" in change:
        s.obj["metadata"]["creationTimestamp"] = change["created"].isoformat()
    if "backups" in change:
        s.kube.backups = []
    before = snapshot(s.kube)
    s.run_until(lambda s: s.phase == "Blocked")
    conditions = {c["type"]: c for c in s.status["conditions"]}
    assert conditions["Stalled"]["status"] == "True" and conditions["Stalled"]["reason"] == reason
    assert conditions["Ready"]["message"].startswith("Not started: ")
    assert s.step_names() == [] and snapshot(s.kube) == before
    assert "Blocked" in s.reasons()


def test_workload_held_waits_then_starts_when_released() -> None:
    s = sim()
    annotations = s.kube.deployments["mail-score-backend"]["metadata"]["annotations"]
    annotations[HOLD_ANNOTATION] = "EmergencyScale/spike"
    s.now = START
    for _ in range(6):
        s.tick()
    ready = next(c for c in s.status["conditions"] if c["type"] == "Ready")
    assert s.phase == "Pending" and ready["reason"] == "WorkloadHeld"
    assert "Deployment mail-score-backend is held by EmergencyScale/spike" in ready["message"]
    assert s.reasons().count("WorkloadHeld") == 1  # one event, not one per tick
    frontend = s.kube.deployments["mail-score-frontend"]["metadata"]["annotations"]
    assert HOLD_ANNOTATION not in frontend  # its own partial holds are given back while waiting
    del annotations[HOLD_ANNOTATION]
    s.run_until(lambda s: s.phase == "Active")


def test_workload_held_past_the_starting_deadline_blocks() -> None:
    spec = {**copy.deepcopy(RUNBOOK_WINDOW), "startingDeadline": "1m"}
    s = sim(spec)
    s.kube.deployments["mail-score-backend"]["metadata"]["annotations"][HOLD_ANNOTATION] = "X/y"
    s.now = START
    s.run_until(lambda s: s.phase == "Blocked")
    stalled = next(c for c in s.status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "WorkloadHeld" and "held by X/y" in stalled["message"]
    assert START + timedelta(minutes=1) <= s.now <= START + timedelta(minutes=1, seconds=2)


def test_operator_down_at_the_start_misses_it() -> None:
    s = sim()
    s.one()
    s.now = START + timedelta(minutes=6)
    s.one()
    stalled = next(c for c in s.status["conditions"] if c["type"] == "Stalled")
    assert s.phase == "Blocked" and stalled["reason"] == "StartMissed"


def test_drift_is_named_and_the_original_restored() -> None:
    s = sim()
    before = snapshot(s.kube)
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    s.kube.configmaps["frontend-config"]["data"]["MAINTENANCE_MODE"] = "half"
    s.kube.hpas["backend-hpa"]["spec"]["maxReplicas"] = 4
    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.phase == "Completed")
    assert snapshot(s.kube) == before
    drift = [e.message for e in s.events if e.reason == "Drift"]
    assert any(
        "MAINTENANCE_MODE was set to 'half'" in d and "restoring 'false'" in d for d in drift
    )
    assert any("HPA backend-hpa bounds were changed" in d for d in drift)
    assert all(e.type == "Warning" for e in s.events if e.reason == "Drift")


def test_extending_the_duration_moves_the_end_and_the_silence() -> None:
    s = sim()
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    s.edit(duration="3h")
    s.tick()
    assert s.status["nextEnd"] == "2025-03-02T05:00:00Z"
    s.tick()
    assert s.status["silence"]["endsAt"].startswith("2025-03-02T05:15:00")
    assert s.alertmanager.created == 1 and "SilenceExtended" in s.reasons()
    s.now = START + timedelta(hours=2)
    s.tick()
    assert s.phase == "Active"


def test_alertmanager_down_at_start_retries_then_fails_and_undoes() -> None:
    s = sim()
    before = snapshot(s.kube)
    s.alertmanager.down = True
    s.now = START
    s.run_until(lambda s: s.phase in ("Failed", "Ending") and s.status.get("failure"))
    assert "CreateSilence kept failing" in s.status["failure"]
    s.alertmanager.down = False
    s.run_until(lambda s: s.phase == "Failed")
    assert snapshot(s.kube) == before
    stalled = next(c for c in s.status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"


def test_rollout_timeout_at_start_fails_and_restores() -> None:
    spec = {**copy.deepcopy(RUNBOOK_WINDOW), "rolloutTimeout": "30s"}
    s = sim(spec, kube=FakeKube(instant_rollouts=False))
    mail_score_kube = s.kube
    before = snapshot(mail_score_kube)
    s.now = START
    s.run_until(lambda s: bool(s.status.get("failure")))
    assert "AwaitRestartRollouts timed out after 30s" in s.status["failure"]
    for name in s.kube.deployments:
        s.kube.settle(name)
    s.kube.instant_rollouts = True
    s.run_until(lambda s: s.phase == "Failed")
    assert snapshot(s.kube) == before


def test_health_check_failing_then_passing() -> None:
    s = sim(http_codes=[503, 503, 200])
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.phase == "Completed")
    health = next(x for x in s.status["steps"] if x["name"] == "HealthCheck")
    assert "HTTP 200" in health["message"]


def test_health_check_timeout_marks_failed_but_restores() -> None:
    spec = {
        **copy.deepcopy(RUNBOOK_WINDOW),
        "healthCheck": {"http": {"url": "http://x"}, "timeout": "10s"},
    }
    s = sim(spec, http_codes=[500] * 1000)
    before = snapshot(s.kube)
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.phase == "Failed")
    assert "HealthCheck timed out after 10s" in s.status["failure"]
    assert snapshot(s.kube) == before and s.alertmanager.active() == []


def test_prometheus_health_check() -> None:
    spec = {
        **copy.deepcopy(RUNBOOK_WINDOW),
        "healthCheck": {"prometheus": {"query": "errors", "comparison": "<", "threshold": 0.05}},
    }
    s = sim(spec)
    s.prometheus_value = 0.2
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.step_names()[-1:] == ["AwaitRollouts"])
    for _ in range(4):
        s.tick()
    assert s.phase == "Ending"
    reason = next(c for c in s.status["conditions"] if c["type"] == "Ready")
    assert "errors = 0.2 (healthy when < 0.05)" in reason["message"]
    s.prometheus_value = 0.01
    s.run_until(lambda s: s.phase == "Completed")


def test_deleted_configmap_during_the_window_fails_the_window_but_restores_the_rest() -> None:
    s = sim()
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    del s.kube.configmaps["frontend-config"]
    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.phase == "Failed")
    assert "ConfigMap frontend-config was deleted during the window" in s.status["failure"]
    assert s.kube.hpas["backend-hpa"]["spec"]["minReplicas"] == 3
    assert s.alertmanager.active() == []


def test_recurring_window_returns_to_pending_with_the_next_occurrence() -> None:
    spec = {
        "schedule": "0 2 * * 0",
        "timeZone": "Europe/Berlin",
        "duration": "1h",
        "maintenanceMode": {"restart": [{"name": "mail-score-frontend"}]},
    }
    s = sim(spec)
    s.now = datetime(2025, 3, 20, tzinfo=UTC)
    s.obj["metadata"]["creationTimestamp"] = s.now.isoformat()
    s.one()
    assert s.status["nextStart"] == "2025-03-23T01:00:00Z"  # 02:00 CET
    s.now = datetime(2025, 3, 23, 1, 0, tzinfo=UTC)
    s.run_until(lambda s: s.phase == "Active")
    s.now = datetime(2025, 3, 23, 2, 0, tzinfo=UTC)
    s.run_until(lambda s: s.status.get("lastOccurrence") is not None)
    assert s.phase == "Pending"
    # 2025-03-30 02:00 does not exist in Berlin (02:00 CET -> 03:00 CEST): 03:00 CEST.
    assert s.status["nextStart"] == "2025-03-30T01:00:00Z"
    assert s.status["lastOccurrence"]["phase"] == "Completed"
    assert s.step_names() == [] and "originals" not in s.status
    ready = next(c for c in s.status["conditions"] if c["type"] == "Ready")
    assert "2025-03-30 03:00 CEST" in ready["message"]


def test_invalid_spec_is_stalled_not_crashing() -> None:
    s = sim(
        {"start": START.isoformat(), "duration": "1h", "schedule": None, "timeZone": "Nowhere/Land"}
    )
    s.one()
    stalled = next(c for c in s.status["conditions"] if c["type"] == "Stalled")
    assert s.phase == "Blocked" and stalled["reason"] == "InvalidSpec"
    assert "IANA time zone" in stalled["message"]
    s.one()
    assert s.reasons().count("InvalidSpec") == 1


def test_status_patch_is_a_merge_diff_without_nulls_inside_lists() -> None:
    from runbook_operator.handlers.maintenancewindow import _merge_diff

    old = {"phase": "Active", "originals": {"restartStamp": "t", "restarts": [{"name": "a"}]}}
    new = {"phase": "Ending", "originals": {"restarts": [{"name": "a"}]}, "endingReason": "Ended"}
    assert _merge_diff(old, new) == {
        "phase": "Ending",
        "originals": {"restartStamp": None},
        "endingReason": "Ended",
    }
    assert _merge_diff(new, new) == {}


def test_release_removes_copies_of_our_hold_from_replicasets() -> None:
    """The Deployment controller copies annotations onto ReplicaSets; rollout undo copies
    them back. Copies of our hold are removed with the hold, others' are left alone."""
    s = sim()
    s.now = START
    s.run_until(lambda s: s.phase == "Active")

    def rs(name: str, owner: str, holder: str) -> dict[str, Any]:
        return {
            "metadata": {
                "name": name,
                "ownerReferences": [{"uid": f"uid-{owner}"}],
                "annotations": {HOLD_ANNOTATION: holder},
            }
        }

    s.kube.replicasets = [
        rs("frontend-1", "mail-score-frontend", "MaintenanceWindow/weekly"),
        rs("frontend-2", "mail-score-frontend", "Rollback/other"),
        rs("stranger", "someone-else", "MaintenanceWindow/weekly"),
    ]
    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.phase == "Completed")
    holds = {r["metadata"]["name"]: r["metadata"].get("annotations") for r in s.kube.replicasets}
    assert holds == {
        "frontend-1": None,
        "frontend-2": {HOLD_ANNOTATION: "Rollback/other"},
        "stranger": {HOLD_ANNOTATION: "MaintenanceWindow/weekly"},
    }
    release = next(x for x in s.status["steps"] if x["name"] == "ReleaseHolds")
    assert "hold copies removed from ReplicaSet frontend-1" in release["message"]
