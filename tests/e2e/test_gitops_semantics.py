"""Objects that Git manages, on the real test bed: what Argo CD and Flux do to them is safe.

- Self-heal puts back a one-shot operation that was deleted: the copy is not run again
  (phase Skipped, reason AlreadyRan), until its spec.runId is given a new value.
- Approvals and cancel added by `kubectl patch` survive a server-side apply of the same
  manifest by the GitOps controller's field manager (how Flux, and Argo CD with
  ServerSideApply=true, sync), and cancel from Git works too.
- A target that Argo CD or Flux manages is named in the GitOpsManaged condition; with
  spec.gitops.pause the owner's automated sync is paused while the operation acts and put
  back exactly afterwards, on the real Application and Kustomization CRDs.

The GitOps controllers themselves do not run here: what they send is sent as they send it
(their tracking annotation, their field manager, server-side apply), to the real API server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from support.crs import GROUP, VERSION, get_cr, plural_of, wait_gone, wait_phase
from support.events import wait_event
from support.gitops_crds import crd_files
from support.identity import approve_as, grant
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.rollback_cluster import create_deployment, deployment, manifest, owned_replica_sets
from support.wait import wait_for

Obj = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TRACKING = "argocd.argoproj.io/tracking-id"
FLUX = "kustomize-controller"


def custom(kube: Cluster) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube.api)


def create(kube: Cluster, namespace: str, kind: str, name: str, spec: Obj, **meta: Any) -> Obj:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, **meta},
        "spec": spec,
    }
    return custom(kube).create_namespaced_custom_object(  # type: ignore[no-any-return]
        GROUP, VERSION, namespace, plural_of(kind), body
    )


def delete(kube: Cluster, namespace: str, kind: str, name: str) -> None:
    custom(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace, plural_of(kind), name)
    wait_gone(kube.api, namespace, kind, name)


def restarted_at(kube: Cluster, namespace: str, name: str) -> str | None:
    template = deployment(kube, namespace, name)["spec"]["template"]
    return (template["metadata"].get("annotations") or {}).get(RESTARTED_AT)


def test_a_restart_argo_cd_puts_back_is_not_run_again(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    create_deployment(kube, namespace, manifest("web", image("backend-1.4.2"), replicas=2))
    tracking = {TRACKING: f"mail-score:{GROUP}/Restart:{namespace}/quick-fix"}
    spec = {"targets": [{"name": "web"}], "reason": "P1: web answers 502"}
    first = create(kube, namespace, "Restart", "quick-fix", spec, annotations=tracking)
    done = wait_phase(kube.api, namespace, "Restart", "quick-fix", "Completed", timeout=90)
    stamp = done["status"]["restartStamp"]
    assert restarted_at(kube, namespace, "web") == stamp

    delete(kube, namespace, "Restart", "quick-fix")  # someone deletes it; Git still has it
    ledger = client.CoreV1Api(kube.api).read_namespaced_config_map("runbook-runs", namespace)
    assert f'"uid":"{first["metadata"]["uid"]}"' in ledger.data["restart.quick-fix"]

    again = create(kube, namespace, "Restart", "quick-fix", spec, annotations=tracking)
    skipped = wait_phase(kube.api, namespace, "Restart", "quick-fix", "Skipped")
    ready = next(c for c in skipped["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "AlreadyRan")
    assert first["metadata"]["uid"] in ready["message"]
    assert "give spec.runId a new value" in ready["message"]
    event = wait_event(kube.api, namespace, "quick-fix", "AlreadyRan")
    assert event["type"] == "Normal"
    assert not skipped["metadata"].get("finalizers")
    # Nothing was restarted a second time: the same stamp, one new ReplicaSet in all.
    assert restarted_at(kube, namespace, "web") == stamp
    assert len(owned_replica_sets(kube, namespace, "web")) == 2
    assert again["metadata"]["uid"] != first["metadata"]["uid"]

    # Run it again on purpose: a new runId (the old one is deleted first, as Git would).
    delete(kube, namespace, "Restart", "quick-fix")
    create(
        kube, namespace, "Restart", "quick-fix", {**spec, "runId": "second"}, annotations=tracking
    )
    rerun = wait_phase(kube.api, namespace, "Restart", "quick-fix", "Completed", timeout=90)
    assert rerun["status"]["restartStamp"] != stamp
    assert restarted_at(kube, namespace, "web") == rerun["status"]["restartStamp"]
    assert len(owned_replica_sets(kube, namespace, "web")) == 3
    ready = next(c for c in rerun["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] != "AlreadyRan"


def test_a_restart_made_by_hand_runs_each_time_it_is_created(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    create_deployment(kube, namespace, manifest("web", image("backend-1.4.2"), replicas=1))
    spec = {"targets": [{"name": "web"}]}
    create(kube, namespace, "Restart", "by-hand", spec)
    first = wait_phase(kube.api, namespace, "Restart", "by-hand", "Completed", timeout=90)
    delete(kube, namespace, "Restart", "by-hand")
    create(kube, namespace, "Restart", "by-hand", spec)
    second = wait_phase(kube.api, namespace, "Restart", "by-hand", "Completed", timeout=90)
    assert second["status"]["restartStamp"] != first["status"]["restartStamp"]


NEXT_WEEK = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_manifest(namespace: str, **spec: Any) -> Obj:
    """The same manifest each time it is asked for, as Git holds it."""
    start = NEXT_WEEK
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MaintenanceWindow",
        "metadata": {"name": "weekly", "namespace": namespace},
        "spec": {"start": start, "duration": "1h", "reason": "database upgrade", **spec},
    }


def apply(kube: Cluster, body: Obj, manager: str) -> Obj:
    """Server-side apply, forced, as Flux's kustomize-controller syncs."""
    return custom(kube).patch_namespaced_custom_object(  # type: ignore[no-any-return]
        GROUP,
        VERSION,
        body["metadata"]["namespace"],
        "maintenancewindows",
        body["metadata"]["name"],
        body,
        field_manager=manager,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def patch(kube: Cluster, namespace: str, body: Obj) -> Obj:
    """What `kubectl patch --type merge` sends (its field manager is kubectl-patch)."""
    return custom(kube).patch_namespaced_custom_object(  # type: ignore[no-any-return]
        GROUP,
        VERSION,
        namespace,
        "maintenancewindows",
        "weekly",
        body,
        field_manager="kubectl-patch",
        _content_type="application/merge-patch+json",
    )


def test_approvals_and_cancel_by_kubectl_patch_survive_a_sync_from_git(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    git = window_manifest(namespace, approvals=[])  # approvals are never in Git
    apply(kube, git, FLUX)
    grant(kube, namespace, "runbook-approve", "alice", "bob")
    approve_as(kube, namespace, "weekly", "alice")
    approve_as(kube, namespace, "weekly", "bob", comment="checked the plan")
    patch(kube, namespace, {"spec": {"cancel": True}})

    after = apply(kube, git, FLUX)  # the next sync: the same manifest from Git
    approvals = after["spec"]["approvals"]
    assert [a["approver"] for a in approvals] == ["alice", "bob"]
    assert approvals[1]["comment"] == "checked the plan"
    assert after["spec"]["cancel"] is True
    managers = {m["manager"] for m in after["metadata"]["managedFields"]}
    assert {FLUX, "kubectl-patch"} <= managers
    wait_phase(kube.api, namespace, "MaintenanceWindow", "weekly", "Cancelled")


def test_cancel_from_git_cancels(kube: Cluster, operator: OperatorProcess, namespace: str) -> None:
    apply(kube, window_manifest(namespace), FLUX)

    def pending() -> bool:
        phase = get_cr(kube.api, namespace, "MaintenanceWindow", "weekly").get("status") or {}
        return phase.get("phase") in ("Pending", "Blocked")

    wait_for(pending, timeout=30, what="the window to be looked at")
    apply(kube, window_manifest(namespace, cancel=True), FLUX)
    wait_phase(kube.api, namespace, "MaintenanceWindow", "weekly", "Cancelled")


# --- targets that Argo CD or Flux manage -------------------------------------------


@pytest.fixture(scope="module")
def gitops_crds(kube: Cluster) -> None:
    for path in crd_files():
        kube.run_kubectl("apply", "--server-side", "-f", str(path))
    for name in ("applications.argoproj.io", "kustomizations.kustomize.toolkit.fluxcd.io"):
        kube.run_kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


AUTOMATED = {"prune": True, "selfHeal": True}


def application(kube: Cluster, namespace: str) -> Obj:
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "mail-score", "namespace": namespace},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example/mail-score.git", "path": "deploy"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": AUTOMATED, "syncOptions": ["ServerSideApply=true"]},
        },
    }
    return custom(kube).create_namespaced_custom_object(  # type: ignore[no-any-return]
        "argoproj.io", "v1alpha1", namespace, "applications", body
    )


def sync_policy(kube: Cluster, namespace: str) -> Obj:
    app = custom(kube).get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "applications", "mail-score"
    )
    return dict(app["spec"].get("syncPolicy") or {})


def argo_tracked_deployment(kube: Cluster, namespace: str, replicas: int = 2) -> None:
    body = manifest("web", image("backend-1.4.2"), replicas=replicas)
    tracking = f"{namespace}_mail-score:apps/Deployment:{namespace}/web"
    body["metadata"].setdefault("annotations", {})[TRACKING] = tracking
    create_deployment(kube, namespace, body)


def condition_of(obj: Obj, type_: str) -> Obj | None:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None
    )


def test_an_emergency_scale_pauses_argo_cd_while_active_and_restores_it(
    kube: Cluster, operator: OperatorProcess, namespace: str, gitops_crds: None
) -> None:
    application(kube, namespace)
    argo_tracked_deployment(kube, namespace)
    spec = {
        "targets": [{"name": "web", "replicas": 4}],
        "duration": "12s",
        "reason": "traffic spike",
        "gitops": {"pause": True},
    }
    create(kube, namespace, "EmergencyScale", "spike", spec)
    active = wait_phase(kube.api, namespace, "EmergencyScale", "spike", "Active")
    assert deployment(kube, namespace, "web")["spec"]["replicas"] == 4
    assert "automated" not in sync_policy(kube, namespace)  # self-heal cannot undo it now
    paused = active["status"]["gitops"]["paused"]
    assert [(p["kind"], p["namespace"], p["name"]) for p in paused] == [
        ("Application", namespace, "mail-score")
    ]
    managed = condition_of(get_cr(kube.api, namespace, "EmergencyScale", "spike"), "GitOpsManaged")
    assert managed is not None and managed["reason"] == "PausedDuringOperation"
    assert f"Argo CD Application {namespace}/mail-score" in managed["message"]

    wait_phase(kube.api, namespace, "EmergencyScale", "spike", "Completed", timeout=60)
    policy = sync_policy(kube, namespace)
    assert policy["automated"] == AUTOMATED  # exactly as it was
    assert policy["syncOptions"] == ["ServerSideApply=true"]
    wait_event(kube.api, namespace, "spike", "GitOpsResumed")
    done = get_cr(kube.api, namespace, "EmergencyScale", "spike")
    assert not (done["status"].get("gitops") or {}).get("paused")


def test_without_pause_the_owner_is_named_and_left_alone(
    kube: Cluster, operator: OperatorProcess, namespace: str, gitops_crds: None
) -> None:
    application(kube, namespace)
    argo_tracked_deployment(kube, namespace)
    spec = {"targets": [{"name": "web", "replicas": 3}], "duration": "10m"}
    create(kube, namespace, "EmergencyScale", "spike", spec)
    wait_phase(kube.api, namespace, "EmergencyScale", "spike", "Active")
    event = wait_event(kube.api, namespace, "spike", "GitOpsManaged")
    assert event["type"] == "Warning"
    assert "spec.gitops.pause: true" in event["message"]
    managed = condition_of(get_cr(kube.api, namespace, "EmergencyScale", "spike"), "GitOpsManaged")
    assert managed is not None and managed["reason"] == "SelfHealMayRevert"
    assert sync_policy(kube, namespace)["automated"] == AUTOMATED


def test_a_window_suspends_the_flux_kustomization_of_its_flag(
    kube: Cluster, operator: OperatorProcess, namespace: str, gitops_crds: None
) -> None:
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": namespace},
        "spec": {
            "interval": "10m",
            "path": "./deploy",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "mail-score"},
        },
    }
    flux = ("kustomize.toolkit.fluxcd.io", "v1", namespace, "kustomizations")
    custom(kube).create_namespaced_custom_object(*flux, kustomization)
    labels = {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": namespace,
    }
    config = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="frontend-config", labels=labels),
        data={"MAINTENANCE_MODE": "false"},
    )
    client.CoreV1Api(kube.api).create_namespaced_config_map(namespace, config)
    start = (datetime.now(UTC) + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = {
        "start": start,
        "duration": "8s",
        "policy": {"minimumNotice": "2s"},
        "maintenanceMode": {"configMap": "frontend-config"},
        "gitops": {"pause": True},
    }
    create(kube, namespace, "MaintenanceWindow", "flag", spec)

    def suspended_while_active() -> bool:
        window = get_cr(kube.api, namespace, "MaintenanceWindow", "flag")
        live = custom(kube).get_namespaced_custom_object(*flux, "apps")
        return (window.get("status") or {}).get("phase") == "Active" and live["spec"].get(
            "suspend"
        ) is True

    wait_for(suspended_while_active, timeout=30, what="the Kustomization suspended while Active")
    wait_phase(kube.api, namespace, "MaintenanceWindow", "flag", "Completed", timeout=60)
    live = custom(kube).get_namespaced_custom_object(*flux, "apps")
    assert "suspend" not in live["spec"]  # absent before, absent again
    flag = client.CoreV1Api(kube.api).read_namespaced_config_map("frontend-config", namespace)
    assert flag.data["MAINTENANCE_MODE"] == "false"
