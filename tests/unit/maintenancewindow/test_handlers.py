"""Whole MaintenanceWindows through the kind's passes on the core, against the FakeKube.

The e2e tests prove the same against the real test bed; these run every branch
(and a crash after every single step) in milliseconds.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core.names import HOLD_ANNOTATION, RESTARTED_AT
from support.fake_kube import FakeKube
from support.maintenancewindow_fakes import NS, Sim, mail_score

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
    "approvals": [{"approver": "alice", "planRevision": 1}, {"approver": "bob", "planRevision": 1}],
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
    schedule = s.kube.add_custom(
        "databasebackups", {"metadata": {"name": "nightly"}, "spec": {"schedule": "@daily"}}
    )
    owner = {"kind": "DatabaseBackup", "name": "nightly", "uid": schedule["metadata"]["uid"]}
    s.kube.add_custom(
        "databasebackups",
        {
            "metadata": {
                "name": "nightly-1",
                "labels": {"ops.mailscore.com/schedule": "nightly"},
                "ownerReferences": [owner],
            },
            "status": {
                "phase": "Completed",
                "completedAt": (START - timedelta(hours=3)).isoformat(),
            },
        },
    )
    return s


def deployment(kube: FakeKube, name: str) -> dict[str, Any]:
    return kube.obj("Deployment", name)


def configmap(kube: FakeKube) -> dict[str, Any]:
    return kube.obj("ConfigMap", "frontend-config")


def hpa(kube: FakeKube) -> dict[str, Any]:
    return kube.obj("HorizontalPodAutoscaler", "backend-hpa")


def snapshot(kube: FakeKube) -> dict[str, Any]:
    """Everything a window may touch, minus what Kubernetes itself moves (revisions)."""
    deployments = {}
    for name in ("mail-score-frontend", "mail-score-backend"):
        d = kube.obj("Deployment", name)
        annotations = dict(d["metadata"]["annotations"])
        annotations.pop("deployment.kubernetes.io/revision")
        deployments[name] = {"annotations": annotations, "spec": copy.deepcopy(d["spec"])}
    return {
        "deployments": deployments,
        "configmaps": copy.deepcopy(configmap(kube)["data"]),
        "hpas": copy.deepcopy(hpa(kube)["spec"]),
    }


def test_the_runbook_window_end_to_end() -> None:
    s = sim()
    before = snapshot(s.kube)
    s.run_until(lambda s: s.phase == "Pending" and "BackupFresh" in str(s.status))
    assert s.status["nextStart"] == "2025-03-02T02:00:00Z"
    assert s.status["nextEnd"] == "2025-03-02T03:00:00Z"
    ready = next(c for c in s.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Scheduled" and ready["status"] == "True"

    s.run_until(lambda s: s.phase == "Active")
    assert s.step_names() == START_STEPS
    assert s.now - START <= timedelta(seconds=0.5)  # every start step in one pass
    kube = s.kube
    assert configmap(kube)["data"]["MAINTENANCE_MODE"] == "true"
    frontend = deployment(kube, "mail-score-frontend")
    backend = deployment(kube, "mail-score-backend")
    assert (
        frontend["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
        == (s.status["originals"]["restartStamp"])
    )
    assert backend["spec"]["replicas"] == 1
    assert (hpa(kube)["spec"]["minReplicas"], hpa(kube)["spec"]["maxReplicas"]) == (1, 1)
    held = frontend["metadata"]["annotations"][HOLD_ANNOTATION]
    assert held == f"MaintenanceWindow/weekly/{s.obj['metadata']['uid']}"
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
    """The step acts, its record is lost (the operator died before writing it); the next
    pass repeats it as an ensure: same values, one silence, two restarts."""
    s = sim()
    before = snapshot(s.kube)
    s.now = START
    for _ in range(400):
        if s.phase == "Active":
            s.now = max(s.now, START + timedelta(hours=1))
        if s.phase == "Completed":
            break
        s.tick(crash_after=None if s.crashed else step)
    assert s.crashed and s.phase == "Completed"
    assert snapshot(s.kube) == before
    assert s.alertmanager.created == 1 and s.alertmanager.active() == []
    assert s.kube.template_changes["mail-score-frontend"] == 2
    assert s.step_names() == START_STEPS + END_STEPS


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
    s.one(crash_after="RecordRestart")  # stops the pass right after SetMaintenanceFlag
    assert s.step_names()[-1:] == ["SetMaintenanceFlag"]
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
    s.delete()
    s.run_until(lambda s: s.gone, limit=20)
    assert snapshot(s.kube) == before and s.alertmanager.active() == []
    assert "AwaitRollouts" not in s.step_names() and "HealthCheck" not in s.step_names()
    assert "Restored" in s.reasons()


def test_delete_pending_window_is_immediate() -> None:
    s = sim()
    s.one()
    s.delete()
    s.one()
    assert s.gone


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
        ({"approvals": [{"approver": "alice", "planRevision": 1}]}, "NotApproved"),
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
        del s.kube.store[("databasebackups", NS, "nightly-1")]
    before = snapshot(s.kube)
    s.run_until(lambda s: s.phase == "Blocked")
    conditions = {c["type"]: c for c in s.status["conditions"]}
    assert conditions["Stalled"]["status"] == "True" and conditions["Stalled"]["reason"] == reason
    assert conditions["Ready"]["message"].startswith("Not started: ")
    assert s.step_names() == [] and snapshot(s.kube) == before
    assert "Blocked" in s.reasons()


def test_workload_held_waits_then_starts_when_released() -> None:
    s = sim()
    annotations = deployment(s.kube, "mail-score-backend")["metadata"]["annotations"]
    annotations[HOLD_ANNOTATION] = "EmergencyScale/spike"
    spike = {"metadata": {"name": "spike"}, "status": {"phase": "Active"}}
    s.kube.add_custom("emergencyscales", spike)  # a live holder: its hold counts
    s.now = START
    for _ in range(6):
        s.tick()
    ready = next(c for c in s.status["conditions"] if c["type"] == "Ready")
    assert s.phase == "Pending" and ready["reason"] == "WorkloadHeld"
    assert "Deployment mail-score-backend is held by EmergencyScale/spike" in ready["message"]
    assert s.reasons().count("WorkloadHeld") == 1  # one event, not one per tick
    frontend = deployment(s.kube, "mail-score-frontend")["metadata"]["annotations"]
    assert HOLD_ANNOTATION not in frontend  # its own partial holds are given back while waiting
    del annotations[HOLD_ANNOTATION]
    s.run_until(lambda s: s.phase == "Active")


def test_workload_held_past_the_starting_deadline_blocks() -> None:
    spec = {**copy.deepcopy(RUNBOOK_WINDOW), "startingDeadline": "1m"}
    s = sim(spec)
    deployment(s.kube, "mail-score-backend")["metadata"]["annotations"][HOLD_ANNOTATION] = "X/y"
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
    configmap(s.kube)["data"]["MAINTENANCE_MODE"] = "half"
    hpa(s.kube)["spec"]["maxReplicas"] = 4
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
    s = sim(spec)
    s.kube.auto_rollout = False
    before = snapshot(s.kube)
    s.now = START
    s.run_until(lambda s: bool(s.status.get("failure")))
    assert "AwaitRestartRollouts timed out after 30s" in s.status["failure"]
    for name in ("mail-score-frontend", "mail-score-backend"):
        s.kube.roll_out(name)
    s.kube.auto_rollout = True
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
    del s.kube.store[("ConfigMap", NS, "frontend-config")]
    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.phase == "Failed")
    assert "ConfigMap frontend-config was deleted during the window" in s.status["failure"]
    assert hpa(s.kube)["spec"]["minReplicas"] == 3
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


def test_release_removes_copies_of_our_hold_from_replicasets() -> None:
    """The Deployment controller copies annotations onto ReplicaSets; rollout undo copies
    them back. Copies of our hold are removed with the hold, others' are left alone."""
    s = sim()
    s.now = START
    s.run_until(lambda s: s.phase == "Active")

    owner = deployment(s.kube, "mail-score-frontend")["metadata"]["uid"]

    def rs(name: str, uid: str, holder: str) -> None:
        s.kube.put(
            "ReplicaSet",
            {
                "metadata": {
                    "name": name,
                    "labels": {"app": "mail-score-frontend"},
                    "ownerReferences": [{"uid": uid, "controller": True}],
                    "annotations": {HOLD_ANNOTATION: holder},
                }
            },
        )

    ours = f"MaintenanceWindow/weekly/{s.obj['metadata']['uid']}"
    rs("frontend-1", owner, ours)
    rs("frontend-2", owner, "Rollback/other")
    rs("stranger", "uid-someone-else", ours)
    s.now = START + timedelta(hours=1)
    s.run_until(lambda s: s.phase == "Completed")
    holds = {
        name: s.kube.obj("ReplicaSet", name)["metadata"].get("annotations")
        for name in ("frontend-1", "frontend-2", "stranger")
    }
    assert holds == {
        "frontend-1": None,
        "frontend-2": {HOLD_ANNOTATION: "Rollback/other"},
        "stranger": {HOLD_ANNOTATION: ours},
    }
    release = next(x for x in s.status["steps"] if x["name"] == "ReleaseHolds")
    assert "hold copies removed from ReplicaSet frontend-1" in release["message"]


def test_deleting_an_active_window_whose_spec_cannot_be_read_still_undoes_everything() -> None:
    """The finalizer used to parse the spec first, and let a window with a spec the model
    rejects go without restoring anything. It works from status alone now."""
    s = sim()
    before = snapshot(s.kube)
    s.now = START
    s.run_until(lambda s: s.phase == "Active")
    s.obj["spec"]["duration"] = "0.0000001s"  # accepted by an older CRD, not by the model
    s.one()
    stalled = next(c for c in s.status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "InvalidSpec" and "spec.duration" in stalled["message"]
    assert "errors.pydantic.dev" not in stalled["message"]
    assert s.phase == "Active"  # what it changed stays recorded, nothing is forgotten
    s.delete()
    s.run_until(lambda s: s.gone, limit=20)
    assert snapshot(s.kube) == before
    assert s.alertmanager.active() == []
    assert "Restored" in s.reasons()


def test_a_window_deleted_before_its_finalizer_is_on_leaves_nothing_behind() -> None:
    """The finalizer goes out beside the first pass's checklist and holds; deleted before
    it is on, the window changed nothing and lets go of the holds it had taken."""
    s = sim()
    s.now = START  # its first look is at its start: checklist, then the holds

    def deleted(call: tuple[str, ...]) -> None:
        if call == ("patch", "maintenancewindows", "weekly"):
            s.kube.store.pop(("maintenancewindows", NS, "weekly"))

    s.kube.before_write = deleted
    s.one()
    assert s.gone
    assert ("patch", "Deployment", "mail-score-frontend") in s.kube.calls  # it held them
    for name in ("mail-score-frontend", "mail-score-backend"):
        assert HOLD_ANNOTATION not in deployment(s.kube, name)["metadata"]["annotations"]
    assert configmap(s.kube)["data"]["MAINTENANCE_MODE"] == "false"
    assert s.alertmanager.created == 0


def test_a_first_status_is_written_once_the_finalizer_is_on() -> None:
    s = sim()
    s.now = START
    finalized: list[bool] = []

    def status(name: str, patch: dict[str, Any]) -> None:
        finalized.append(bool(s.obj["metadata"].get("finalizers")))

    s.kube.before_status = status
    s.one()
    assert s.phase == "Active"
    assert finalized and all(finalized)


def test_a_flag_only_window_reads_its_configmap_once_and_writes_once_before_the_flag() -> None:
    """The start's checklist has just read the ConfigMap: the flag's original is recorded
    from that read, in the status write that also records the checklist, and the flag is
    set right after. No hold step (the window changes no Deployment), no second read."""
    s = sim(
        {
            "start": START.isoformat(),
            "duration": "1h",
            "maintenanceMode": {"configMap": "frontend-config"},
        }
    )
    s.now = START
    at_flag: list[tuple[int, int]] = []

    def flag(call: tuple[str, ...]) -> None:
        if call[:2] == ("patch", "ConfigMap") and not at_flag:
            reads = [r for r in s.kube.reads if r[:2] == ("get", "ConfigMap")]
            statuses = [c for c in s.kube.calls if c[0] == "patch-status"]
            at_flag.append((len(reads), len(statuses)))

    s.kube.reads.clear()
    s.kube.before_write = flag
    s.one()
    assert s.phase == "Active"
    assert configmap(s.kube)["data"]["MAINTENANCE_MODE"] == "true"
    assert at_flag == [(1, 1)]
    assert s.step_names() == ["RecordMaintenanceFlag", "SetMaintenanceFlag"]
