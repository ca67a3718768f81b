"""MaintenanceWindow on the real test bed, with a real Alertmanager from Debian's package.

Each test runs the Mail Score app (examples/app/mail-score.yaml) in its own
namespace, served by the operator under test (a real process with deploy/'s
RBAC). The runbook's window comes from examples/maintenancewindow/; tests only
move its start to a few seconds from now and shorten it. Helpers used by the
other test_maintenancewindow_* files live here too.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.alertmanager import (
    Alertmanager,
    alertmanager,  # noqa: F401  (fixture)
)
from support.app import deploy_app
from support.crs import (
    cond,
    condition,
    create_cr,
    delete_cr,
    get_cr,
    patch_cr,
    patch_cr_status,
    wait_gone,
    wait_phase,
)
from support.events import events, reasons, wait_event, wait_reasons
from support.holds import operation_of
from support.identity import approve_as, grant
from support.images import image
from support.kube import Cluster, wait_for_rollout
from support.operator import OperatorProcess
from support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "maintenancewindow"
KIND = "MaintenanceWindow"
HOLD = "ops.mailscore.com/held-by"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
BACKEND, FRONTEND = "mail-score-backend", "mail-score-frontend"
Obj = dict[str, Any]


# --- helpers (also used by the other MaintenanceWindow e2e files) ---------------------------


def _plain(obj: Any, api: client.ApiClient) -> Any:
    return api.sanitize_for_serialization(obj)


def snapshot(kube: Cluster, namespace: str) -> Obj:
    """Every field of every object a window may touch, minus what Kubernetes itself moves."""
    apps, core = client.AppsV1Api(kube.api), client.CoreV1Api(kube.api)
    hpas = client.AutoscalingV2Api(kube.api)
    state: Obj = {}
    for name in (BACKEND, FRONTEND):
        d = _plain(apps.read_namespaced_deployment(name, namespace), kube.api)
        annotations = dict(d["metadata"].get("annotations") or {})
        annotations.pop("deployment.kubernetes.io/revision", None)
        state[name] = {
            "labels": d["metadata"].get("labels"),
            "annotations": annotations,
            "spec": d["spec"],
        }
    cm = _plain(core.read_namespaced_config_map("frontend-config", namespace), kube.api)
    state["frontend-config"] = {
        "data": cm["data"],
        "annotations": cm["metadata"].get("annotations"),
    }
    hpa = _plain(hpas.read_namespaced_horizontal_pod_autoscaler("backend-hpa", namespace), kube.api)
    state["backend-hpa"] = hpa["spec"]
    return state


def deployment(kube: Cluster, namespace: str, name: str) -> Obj:
    d = client.AppsV1Api(kube.api).read_namespaced_deployment(name, namespace)
    return _plain(d, kube.api)  # type: ignore[no-any-return]


def flag(kube: Cluster, namespace: str) -> str:
    cm = client.CoreV1Api(kube.api).read_namespaced_config_map("frontend-config", namespace)
    return str(cm.data["MAINTENANCE_MODE"])


def hpa_bounds(kube: Cluster, namespace: str) -> tuple[int, int]:
    hpa = client.AutoscalingV2Api(kube.api).read_namespaced_horizontal_pod_autoscaler(
        "backend-hpa", namespace
    )
    return int(hpa.spec.min_replicas), int(hpa.spec.max_replicas)


def replica_sets(kube: Cluster, namespace: str, app: str) -> list[Any]:
    listing = client.AppsV1Api(kube.api).list_namespaced_replica_set(
        namespace, label_selector=f"app={app}"
    )
    return list(listing.items)


def held_replicasets(kube: Cluster, namespace: str) -> list[str]:
    """ReplicaSets still carrying a hold (the Deployment controller copies annotations)."""
    return [
        rs.metadata.name
        for app in (BACKEND, FRONTEND)
        for rs in replica_sets(kube, namespace, app)
        if HOLD in (rs.metadata.annotations or {})
    ]


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def example_window(
    am: Alertmanager, namespace: str, *, start_in: float = 8, duration: str = "25s"
) -> Obj:
    """The runbook's planned window, due in a few seconds, silencing this namespace."""
    spec: Obj = yaml.safe_load((EXAMPLES / "planned-maintenance.yaml").read_text())["spec"]
    spec["start"] = rfc3339(datetime.now(UTC) + timedelta(seconds=start_in))
    spec["duration"] = duration
    spec["policy"]["minimumNotice"] = "5s"
    spec["silence"]["url"] = am.url
    spec["silence"]["matchers"] = [{"name": "namespace", "value": namespace}]
    spec["healthCheck"] = {"http": {"url": f"{am.url}/-/healthy"}, "timeout": "30s"}
    return spec


def completed_backup(kube: Cluster, namespace: str, name: str, completed_at: datetime) -> None:
    """A DatabaseBackup run of the `nightly` schedule, marked Completed as its controller would.

    The schedule (suspended: it never runs) owns the run by ownerReference, as the
    controller's runs are: the policy counts a schedule's runs by owner, not by label.
    Its spec names a database that does not exist, so the DatabaseBackup controller
    (running in the same operator) ends it Failed at some point; the status is written
    until it stays Completed (a finished one-shot backup is never touched again).
    """
    spec: Obj = {
        "postgres": {
            "host": "postgres.invalid",
            "database": "mail_score",
            "credentials": {"secretName": "no-such-secret"},
        },
        "verify": "none",
    }
    schedule = create_cr(
        kube.api,
        namespace,
        "DatabaseBackup",
        "nightly",
        {**spec, "schedule": "0 3 1 1 *", "suspend": True},
    )
    body = {
        "apiVersion": "ops.mailscore.com/v1alpha1",
        "kind": "DatabaseBackup",
        "metadata": {
            "name": name,
            "labels": {"ops.mailscore.com/schedule": "nightly"},
            "ownerReferences": [
                {
                    "apiVersion": "ops.mailscore.com/v1alpha1",
                    "kind": "DatabaseBackup",
                    "name": "nightly",
                    "uid": schedule["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": spec,
    }
    client.CustomObjectsApi(kube.api).create_namespaced_custom_object(
        "ops.mailscore.com", "v1alpha1", namespace, "databasebackups", body
    )
    status = {"phase": "Completed", "completedAt": rfc3339(completed_at)}
    stable_since: list[float] = []

    def stays_completed() -> bool:
        current = get_cr(kube.api, namespace, "DatabaseBackup", name).get("status") or {}
        if (
            current.get("phase") != "Completed"
            or current.get("completedAt") != status["completedAt"]
        ):
            patch_cr_status(kube.api, namespace, "DatabaseBackup", name, status)
            stable_since.clear()
            return False
        stable_since.append(datetime.now(UTC).timestamp())
        return stable_since[-1] - stable_since[0] >= 3

    wait_for(stays_completed, timeout=60, interval=0.5, what=f"DatabaseBackup {name} Completed")


def approve(kube: Cluster, namespace: str, name: str, *approvers: str) -> None:
    """What each approver runs, as themselves: add their approval to spec.approvals
    (admission refuses an approval in anyone else's name)."""
    grant(kube, namespace, "runbook-approve", *approvers)
    for who in approvers:
        approve_as(kube, namespace, name, who)


def steps(obj: Obj) -> list[str]:
    return [s["name"] for s in (obj.get("status") or {}).get("steps") or []]


def ready_app_with_backup(kube: Cluster, namespace: str) -> Obj:
    deploy_app(kube, namespace)
    completed_backup(kube, namespace, "nightly-run", datetime.now(UTC) - timedelta(hours=2))
    return snapshot(kube, namespace)


# --- the runbook's window, start to end ----------------------------------------------------


def test_runbook_window_runs_the_procedure_and_restores_everything(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    before = ready_app_with_backup(kube, namespace)
    spec = example_window(alertmanager, namespace, start_in=12, duration="25s")
    create_cr(kube.api, namespace, KIND, "postgres-upgrade", spec)

    pending = wait_for(
        lambda: (
            (o := get_cr(kube.api, namespace, KIND, "postgres-upgrade"))
            and condition(o, "Approved")
            and o
        ),
        timeout=20,
        what="the checklist evaluated",
    )
    assert pending["status"]["phase"] == "Pending"
    assert cond(pending, "Approved")["status"] == "False"
    assert cond(pending, "BackupFresh")["status"] == "True"
    assert pending["status"]["nextStart"] == spec["start"]
    approve(kube, namespace, "postgres-upgrade", "alice", "bob")

    active = wait_phase(kube.api, namespace, KIND, "postgres-upgrade", "Active", timeout=60)
    assert steps(active) == [
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
    assert flag(kube, namespace) == "true"
    frontend = deployment(kube, namespace, FRONTEND)
    stamp = active["status"]["originals"]["restartStamp"]
    assert frontend["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT] == stamp
    assert deployment(kube, namespace, BACKEND)["spec"]["replicas"] == 1
    assert hpa_bounds(kube, namespace) == (1, 1)
    assert operation_of(frontend["metadata"]["annotations"][HOLD]) == (
        "MaintenanceWindow/postgres-upgrade"
    )
    (silence,) = alertmanager.active()
    assert silence["id"] == active["status"]["silence"]["id"]
    assert silence["matchers"][0]["value"] == namespace
    assert "PostgreSQL 15.6 to 15.8" in silence["comment"]
    plan = {e["name"]: e for e in active["status"]["rollbackPlan"]}
    assert plan[BACKEND]["images"] == [
        {"container": "backend", "image": image("mail-score-backend-1.4.2")}
    ]
    assert active["status"]["originals"]["replicas"] == [
        {
            "name": BACKEND,
            "maintenanceReplicas": 1,
            "replicas": 3,
            "hpa": "backend-hpa",
            "minReplicas": 3,
            "maxReplicas": 10,
        }
    ]
    table = kube.run_kubectl("get", "runbook", "-n", namespace).stdout
    assert "postgres-upgrade" in table and "Active" in table and "InMaintenance" in table

    done = wait_phase(kube.api, namespace, KIND, "postgres-upgrade", "Completed", timeout=120)
    assert steps(done)[-7:] == [
        "RestoreReplicas",
        "RestoreMaintenanceFlag",
        "UndoRestart",
        "AwaitRollouts",
        "HealthCheck",
        "ExpireSilence",
        "ReleaseHolds",
    ]
    assert snapshot(kube, namespace) == before
    assert alertmanager.active() == []
    assert [s["status"]["state"] for s in alertmanager.silences()] == ["expired"]
    assert cond(done, "Ready")["status"] == "True"
    assert cond(done, "Ready")["reason"] == "Completed"
    assert len(replica_sets(kube, namespace, FRONTEND)) == 2  # original + the restart, reused
    assert held_replicasets(kube, namespace) == []
    expected = {"Starting", "SetMaintenanceFlag", "ScaleDown", "Active", "Ending"}
    expected |= {"RestoreMaintenanceFlag", "Completed"}
    wait_reasons(kube.api, namespace, "postgres-upgrade", expected)


# --- refusals -----------------------------------------------------------------------------------


def test_blocked_short_notice_no_backup_missing_approvals(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    deploy_app(kube, namespace)
    before = snapshot(kube, namespace)
    base = example_window(alertmanager, namespace, start_in=10)
    cases = {
        "short-notice": ({"minimumNotice": "24h"}, "NoticeTooShort", "asks for at least 24h"),
        "no-backup": ({}, "BackupMissing", "No successful DatabaseBackup of nightly"),
        "missing-approvals": ({}, "NotApproved", "1 of 2 approvals recorded by alice"),
    }
    for name, (policy, _, _) in cases.items():
        spec = copy.deepcopy(base)
        spec["policy"].update(policy)
        if name != "no-backup":
            spec["policy"]["backup"] = None
        create_cr(kube.api, namespace, KIND, name, spec)
        approve(
            kube,
            namespace,
            name,
            *(["alice"] if name == "missing-approvals" else ["alice", "carol"]),
        )
    for name, (_, reason, words) in cases.items():
        obj = wait_phase(kube.api, namespace, KIND, name, "Blocked", timeout=40)
        stalled = condition(obj, "Stalled")
        assert stalled is not None and stalled["status"] == "True", obj["status"]
        assert stalled["reason"] == reason and words in stalled["message"]
        assert cond(obj, "Ready")["message"].startswith("Not started: ")
        assert steps(obj) == []
        assert wait_event(kube.api, namespace, name, "Blocked")["type"] == "Warning"
    assert snapshot(kube, namespace) == before
    assert alertmanager.silences() == []


def test_schema_refuses_bad_windows(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    good: dict[str, Any] = {"start": "2030-01-01T02:00:00Z", "duration": "1h"}
    bad: list[tuple[dict[str, Any], str]] = [
        ({**good, "schedule": "0 2 * * 0"}, "either start (a one-off window) or schedule"),
        (
            {"schedule": "0 2 * * 0", "duration": "1h", "emergency": {"reason": "x"}},
            "an emergency window is a one-off",
        ),
        ({**good, "timeZone": "Europe/Berlin"}, "timeZone applies to schedule only"),
        ({**good, "duration": "0s"}, "must be at least 1s"),
        ({**good, "duration": "0.0000001s"}, "must be at least 1s"),
        (
            {
                **good,
                "healthCheck": {
                    "http": {"url": "http://a"},
                    "prometheus": {"query": "up", "threshold": 1},
                },
            },
            "exactly one of http or prometheus",
        ),
        ({"schedule": "every sunday", "duration": "1h"}, "cron expression"),
    ]
    for i, (spec, message) in enumerate(bad):
        with pytest.raises(ApiException) as info:
            create_cr(kube.api, namespace, KIND, f"bad-{i}", spec)
        assert message in str(info.value.body), (spec, info.value.body)
    create_cr(kube.api, namespace, KIND, "good", {**good, "cancel": True})
    cancelled = wait_phase(kube.api, namespace, KIND, "good", "Cancelled", timeout=20)
    assert cond(cancelled, "Ready")["message"] == (
        "Cancelled before it started; nothing was changed."
    )
    changes: list[tuple[dict[str, Any], str]] = [
        ({"spec": {"start": "2030-01-02T02:00:00Z"}}, "start cannot be changed once set"),
        ({"spec": {"cancel": False}}, "cannot be resumed"),
    ]
    for patch, message in changes:
        with pytest.raises(ApiException) as info:
            patch_cr(kube.api, namespace, KIND, "good", patch)
        assert message in str(info.value.body)


# --- ending early ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_ending_mid_window_restores_everything(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    alertmanager: Alertmanager,  # noqa: F811
    how: str,
) -> None:
    before = ready_app_with_backup(kube, namespace)
    spec = example_window(alertmanager, namespace, start_in=6, duration="10m")
    create_cr(kube.api, namespace, KIND, "mw", spec)
    approve(kube, namespace, "mw", "alice", "bob")
    wait_phase(kube.api, namespace, KIND, "mw", "Active", timeout=60)
    assert flag(kube, namespace) == "true" and len(alertmanager.active()) == 1
    # Someone edits managed values during the window: restored anyway, and named.
    client.CoreV1Api(kube.api).patch_namespaced_config_map(
        "frontend-config", namespace, {"data": {"MAINTENANCE_MODE": "half"}}
    )
    client.AutoscalingV2Api(kube.api).patch_namespaced_horizontal_pod_autoscaler(
        "backend-hpa", namespace, {"spec": {"maxReplicas": 4}}
    )
    if how == "cancel":
        patch_cr(kube.api, namespace, KIND, "mw", {"spec": {"cancel": True}})
        done = wait_phase(kube.api, namespace, KIND, "mw", "Cancelled", timeout=90)
        assert cond(done, "Ready")["reason"] == "Cancelled"
        assert done["status"]["endingReason"] == "Cancelled"
    else:
        delete_cr(kube.api, namespace, KIND, "mw")
        wait_gone(kube.api, namespace, KIND, "mw", timeout=60)
        # Deletion does not wait for the rollouts it starts; they finish on their own.
        for name in (BACKEND, FRONTEND):
            wait_for_rollout(kube.api, namespace, name)
    assert snapshot(kube, namespace) == before
    assert alertmanager.active() == []
    told = (
        "MAINTENANCE_MODE was set to 'half' during the window",
        "HPA backend-hpa bounds were changed during the window to 1-4",
    )

    def drift() -> list[dict[str, Any]] | None:
        found = [e for e in events(kube.api, namespace, "mw") if e["reason"] == "Drift"]
        text = " ".join(e["message"] for e in found)
        return found if all(words in text for words in told) else None

    found = wait_for(drift, timeout=30, what="a Drift event for each change")
    assert {e["type"] for e in found} == {"Warning"}


# --- holds ---------------------------------------------------------------------------------------


def small_window(start_in: float, duration: str, **fields: Any) -> Obj:
    """A window without checklist rules beyond a short notice, due in a few seconds."""
    start = rfc3339(datetime.now(UTC) + timedelta(seconds=start_in))
    return {"start": start, "duration": duration, "policy": {"minimumNotice": "2s"}, **fields}


def holds_backend(kube: Cluster, namespace: str) -> None:
    """A first window, Active, holding mail-score-backend (a live holder, not a stale one)."""
    first = small_window(3, "10m", scaleDown=[{"name": BACKEND, "replicas": 2}])
    create_cr(kube.api, namespace, KIND, "first", first)
    wait_phase(kube.api, namespace, KIND, "first", "Active", timeout=60)
    assert operation_of(deployment(kube, namespace, BACKEND)["metadata"]["annotations"][HOLD]) == (
        "MaintenanceWindow/first"
    )


def test_waits_for_a_held_workload_then_starts(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    deploy_app(kube, namespace)
    before = snapshot(kube, namespace)
    holds_backend(kube, namespace)
    second = small_window(
        3,
        "15s",
        startingDeadline="2m",
        scaleDown=[{"name": BACKEND, "replicas": 1}],
        maintenanceMode={"restart": [{"name": FRONTEND}]},
    )
    create_cr(kube.api, namespace, KIND, "second", second)
    waiting = wait_for(
        lambda: (
            (o := get_cr(kube.api, namespace, KIND, "second"))
            and (c := condition(o, "Ready"))
            and c["reason"] == "WorkloadHeld"
            and o
        ),
        timeout=30,
        what="Ready=False WorkloadHeld",
    )
    assert waiting["status"]["phase"] == "Pending"
    message = cond(waiting, "Ready")["message"]
    assert "Deployment mail-score-backend is held by MaintenanceWindow/first" in message
    assert flag(kube, namespace) == "false"  # nothing of the second window happened
    assert HOLD not in (deployment(kube, namespace, FRONTEND)["metadata"]["annotations"] or {})
    assert wait_event(kube.api, namespace, "second", "WorkloadHeld")["type"] == "Warning"
    assert reasons(kube.api, namespace, "second").count("WorkloadHeld") == 1
    patch_cr(kube.api, namespace, KIND, "first", {"spec": {"cancel": True}})
    wait_phase(kube.api, namespace, KIND, "second", "Active", timeout=60)
    assert operation_of(deployment(kube, namespace, BACKEND)["metadata"]["annotations"][HOLD]) == (
        "MaintenanceWindow/second"
    )
    wait_phase(kube.api, namespace, KIND, "second", "Completed", timeout=120)
    assert get_cr(kube.api, namespace, KIND, "first")["status"]["phase"] == "Cancelled"
    assert snapshot(kube, namespace) == before


def test_blocked_when_still_held_past_the_starting_deadline(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    deploy_app(kube, namespace)
    before = snapshot(kube, namespace)
    holds_backend(kube, namespace)
    second = small_window(
        3,
        "1m",
        startingDeadline="8s",
        scaleDown=[{"name": BACKEND, "replicas": 1}],
        maintenanceMode={},
    )
    create_cr(kube.api, namespace, KIND, "second", second)
    obj = wait_phase(kube.api, namespace, KIND, "second", "Blocked", timeout=40)
    stalled = cond(obj, "Stalled")
    assert stalled["reason"] == "WorkloadHeld"
    assert "held by MaintenanceWindow/first" in stalled["message"]
    assert "could not start within 8s of its start" in stalled["message"]
    assert flag(kube, namespace) == "false" and steps(obj) == []
    patch_cr(kube.api, namespace, KIND, "first", {"spec": {"cancel": True}})
    wait_phase(kube.api, namespace, KIND, "first", "Cancelled", timeout=60)
    assert snapshot(kube, namespace) == before


# --- recurring ---------------------------------------------------------------------------------


def test_recurring_window_returns_to_pending_with_the_next_occurrence(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    deploy_app(kube, namespace)
    before = snapshot(kube, namespace)
    spec = {
        "schedule": "* * * * *",
        "timeZone": "America/New_York",
        "duration": "10s",
        "policy": {"minimumNotice": "1s"},
        "maintenanceMode": {},
    }
    create_cr(kube.api, namespace, KIND, "every-minute", spec)
    first = wait_for(
        lambda: (get_cr(kube.api, namespace, KIND, "every-minute").get("status") or {}).get(
            "nextStart"
        ),
        timeout=20,
        what="the first occurrence",
    )
    active = wait_phase(kube.api, namespace, KIND, "every-minute", "Active", timeout=90)
    assert active["status"]["nextStart"] == first and flag(kube, namespace) == "true"
    again = wait_for(
        lambda: (
            (o := get_cr(kube.api, namespace, KIND, "every-minute"))
            and (o.get("status") or {}).get("lastOccurrence")
            and o
        ),
        timeout=60,
        what="the occurrence recorded as over",
    )
    status = again["status"]
    assert status["phase"] == "Pending" and status["lastOccurrence"]["phase"] == "Completed"
    assert status["lastOccurrence"]["start"] == first
    start = datetime.fromisoformat(first.replace("Z", "+00:00"))
    assert status["nextStart"] == rfc3339(start + timedelta(minutes=1))
    assert not status.get("steps") and "originals" not in status
    assert snapshot(kube, namespace) == before
    assert cond(again, "Ready")["reason"] == "Scheduled"
