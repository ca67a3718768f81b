"""EmergencyScale on the real test bed: the runbook's example, HPAs, holds, edits, bad input.

The Mail Score app (examples/app/mail-score.yaml) runs in each test's namespace;
the operator under test is the real process with deploy/'s RBAC. Helpers used by
the other test_emergencyscale_* files live here too.
"""

from __future__ import annotations

import copy
import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.app import deploy_app
from support.crs import cond, condition, create_cr, delete_cr, get_cr, patch_cr, wait_gone
from support.events import wait_event, wait_reasons
from support.holds import operation_of
from support.images import image
from support.kube import Cluster, wait_for_rollout
from support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "emergencyscale" / "high-traffic.yaml"
KIND = "EmergencyScale"
HOLD = "ops.mailscore.com/held-by"
BACKEND, FRONTEND = "mail-score-backend", "mail-score-frontend"
OPERATOR_MANAGER = "OpenAPI-Generator"
"""The field manager the kubernetes client (the operator's) writes with."""


# --- helpers (also used by the other EmergencyScale e2e files) --------------------------


def deployment(kube: Cluster, namespace: str, name: str) -> Any:
    return client.AppsV1Api(kube.api).read_namespaced_deployment(name, namespace)


def replicas(kube: Cluster, namespace: str, name: str) -> int:
    return int(deployment(kube, namespace, name).spec.replicas)


def held_by(kube: Cluster, namespace: str, name: str) -> str | None:
    annotations = deployment(kube, namespace, name).metadata.annotations or {}
    return operation_of(annotations.get(HOLD))


def hpa_bounds(kube: Cluster, namespace: str, name: str = "backend-hpa") -> tuple[int, int]:
    hpa = client.AutoscalingV2Api(kube.api).read_namespaced_horizontal_pod_autoscaler(
        name, namespace
    )
    return int(hpa.spec.min_replicas), int(hpa.spec.max_replicas)


def make_deployment(kube: Cluster, namespace: str, name: str, count: int) -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": count,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image("app-1")}]},
            },
        },
    }
    client.AppsV1Api(kube.api).create_namespaced_deployment(namespace, body)
    wait_for_rollout(kube.api, namespace, name)


def status(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def wait_es(
    kube: Cluster,
    namespace: str,
    name: str,
    *,
    phase: str | None = None,
    ready: tuple[str, str] | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Wait for a phase and/or a Ready (status, reason); fail with the last status seen."""

    def check() -> dict[str, Any] | None:
        obj = get_cr(kube.api, namespace, KIND, name)
        if phase is not None and status(obj).get("phase") != phase:
            return None
        if ready is not None:
            cond = condition(obj, "Ready")
            if cond is None or (cond["status"], cond["reason"]) != ready:
                return None
        return obj

    what = f"EmergencyScale {name} phase={phase} Ready={ready}"
    try:
        return wait_for(check, timeout=timeout, what=what)
    except AssertionError as exc:
        last = status(get_cr(kube.api, namespace, KIND, name))
        raise AssertionError(f"{exc}\nlast status: {yaml.safe_dump(last)}") from None


def parse_status_time(text: str) -> float:
    """A status timestamp (RFC 3339) as seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def ready_message(obj: dict[str, Any]) -> str:
    cond = condition(obj, "Ready")
    return "" if cond is None else str(cond["message"])


def example_spec(duration: str = "20s") -> dict[str, Any]:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    spec: dict[str, Any] = copy.deepcopy(manifest["spec"])
    spec["duration"] = duration
    return spec


def frontend_only(count: int, **extra: Any) -> dict[str, Any]:
    return {"targets": [{"name": FRONTEND, "replicas": count}], **extra}


# --- the runbook's example ----------------------------------------------------------------


def test_scale_up_for_high_traffic_through_the_hpa_and_back_exactly(
    kube: Cluster, namespace: str
) -> None:
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "high-traffic", example_spec("25s"))

    obj = wait_es(kube, namespace, "high-traffic", phase="Active", ready=("True", "Scaled"))
    st = status(obj)
    assert st["originals"] == [
        {
            "kind": "Deployment",
            "name": BACKEND,
            "hpa": "backend-hpa",
            "replicas": 3,
            "minReplicas": 3,
            "maxReplicas": 10,
        },
        {"kind": "Deployment", "name": FRONTEND, "replicas": 2},
    ]
    assert hpa_bounds(kube, namespace) == (10, 15)
    assert replicas(kube, namespace, FRONTEND) == 6
    # The HPA scaled the backend (we only raised its bounds), and nothing fights it.
    assert deployment(kube, namespace, BACKEND).status.ready_replicas == 10
    assert held_by(kube, namespace, BACKEND) == "EmergencyScale/high-traffic"
    assert held_by(kube, namespace, FRONTEND) == "EmergencyScale/high-traffic"
    assert st["targetsSummary"] == (
        "mail-score-backend 3->10 (backend-hpa), mail-score-frontend 2->6"
    )
    assert st["expiresAt"]
    listed = kube.run_kubectl("get", "escale", "-n", namespace).stdout
    assert "Active" in listed and "mail-score-backend 3->10 (backend-hpa)" in listed
    assert "high-traffic" in kube.run_kubectl("get", "runbook", "-n", namespace).stdout

    obj = wait_es(kube, namespace, "high-traffic", phase="Completed", timeout=60)
    assert cond(obj, "Ready")["reason"] == "Reverted"
    assert cond(obj, "Scaled")["status"] == "False"
    assert status(obj)["completedAt"]
    assert hpa_bounds(kube, namespace) == (3, 10)
    wait_for(lambda: replicas(kube, namespace, FRONTEND) == 2, timeout=10, what="frontend 2")
    assert held_by(kube, namespace, BACKEND) is None
    assert held_by(kube, namespace, FRONTEND) is None

    steps = {"RecordedOriginals", "Applied", "Scaled", "Reverting", "Restored", "Completed"}
    posted = wait_reasons(kube.api, namespace, "high-traffic", steps)
    # Each step is one event with its own reason, not also a copy as a "Logging" event.
    assert "Logging" not in posted, posted


def test_the_hpa_is_not_fought(kube: Cluster, namespace: str) -> None:
    """While Active, the backend Deployment is left to backend-hpa: the operator never
    writes its replicas, and `kubectl scale` on it (the runbook's old command) is
    undone by the HPA within its sync period."""
    deploy_app(kube, namespace)
    spec = {"targets": [{"name": BACKEND, "replicas": 5}]}
    create_cr(kube.api, namespace, KIND, "backend", spec)
    wait_es(kube, namespace, "backend", phase="Active", ready=("True", "Scaled"))
    assert hpa_bounds(kube, namespace) == (5, 10)  # max was already above 5: left alone

    kube.run_kubectl("scale", "-n", namespace, f"deployment/{BACKEND}", "--replicas=2")
    wait_for(
        lambda: replicas(kube, namespace, BACKEND) >= 5,
        timeout=45,
        what="backend-hpa to scale the backend back to its minimum",
    )
    owners = {
        m.manager
        for m in deployment(kube, namespace, BACKEND).metadata.managed_fields
        if "f:replicas" in json.dumps(m.fields_v1 or {})
    }
    assert OPERATOR_MANAGER not in owners, owners

    delete_cr(kube.api, namespace, KIND, "backend")
    wait_gone(kube.api, namespace, KIND, "backend")
    assert hpa_bounds(kube, namespace) == (3, 10)
    assert held_by(kube, namespace, BACKEND) is None


# --- holds, edits, deletion -------------------------------------------------------------


def test_a_second_emergencyscale_waits_for_the_first_and_says_who_holds(
    kube: Cluster, namespace: str
) -> None:
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "first", frontend_only(6))
    wait_es(kube, namespace, "first", phase="Active", ready=("True", "Scaled"))

    create_cr(kube.api, namespace, KIND, "second", frontend_only(4))
    obj = wait_es(kube, namespace, "second", phase="Pending", ready=("False", "WorkloadHeld"))
    assert "mail-score-frontend is held by EmergencyScale/first" in ready_message(obj)
    assert condition(obj, "Stalled") is None
    assert status(obj).get("originals") in (None, [])
    assert wait_event(kube.api, namespace, "second", "WorkloadHeld")["type"] == "Warning"
    assert replicas(kube, namespace, FRONTEND) == 6

    delete_cr(kube.api, namespace, KIND, "first")  # reverts to 2, releases
    obj = wait_es(kube, namespace, "second", phase="Active", ready=("True", "Scaled"))
    assert status(obj)["originals"] == [{"kind": "Deployment", "name": FRONTEND, "replicas": 2}]
    assert replicas(kube, namespace, FRONTEND) == 4
    assert held_by(kube, namespace, FRONTEND) == "EmergencyScale/second"

    delete_cr(kube.api, namespace, KIND, "second")
    wait_gone(kube.api, namespace, KIND, "second")
    assert replicas(kube, namespace, FRONTEND) == 2
    assert held_by(kube, namespace, FRONTEND) is None


def test_editing_replicas_while_active_applies_at_once(kube: Cluster, namespace: str) -> None:
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "edit", frontend_only(4))
    wait_es(kube, namespace, "edit", phase="Active", ready=("True", "Scaled"))
    patch_cr(
        kube.api,
        namespace,
        KIND,
        "edit",
        {"spec": {"targets": [{"name": FRONTEND, "replicas": 7}]}},
    )
    wait_for(lambda: replicas(kube, namespace, FRONTEND) == 7, timeout=20, what="frontend 7")
    obj = wait_es(kube, namespace, "edit", phase="Active", ready=("True", "Scaled"))
    assert status(obj)["originals"][0]["replicas"] == 2
    delete_cr(kube.api, namespace, KIND, "edit")
    wait_gone(kube.api, namespace, KIND, "edit")
    assert replicas(kube, namespace, FRONTEND) == 2


def test_revert_false_keeps_the_new_size(kube: Cluster, namespace: str) -> None:
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "keep", frontend_only(5, duration="5s", revert=False))
    obj = wait_es(kube, namespace, "keep", phase="Completed", ready=("True", "KeptNewSize"))
    assert status(obj)["endReason"] == "Expired"
    assert replicas(kube, namespace, FRONTEND) == 5
    assert held_by(kube, namespace, FRONTEND) is None


def test_a_statefulset_target(kube: Cluster, namespace: str) -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "cache"},
        "spec": {
            "replicas": 1,
            "serviceName": "cache",
            "selector": {"matchLabels": {"app": "cache"}},
            "template": {
                "metadata": {"labels": {"app": "cache"}},
                "spec": {"containers": [{"name": "c", "image": image("cache-1")}]},
            },
        },
    }
    apps = client.AppsV1Api(kube.api)
    apps.create_namespaced_stateful_set(namespace, body)
    spec = {"targets": [{"kind": "StatefulSet", "name": "cache", "replicas": 3}], "duration": "8s"}
    create_cr(kube.api, namespace, KIND, "sts", spec)
    wait_es(kube, namespace, "sts", phase="Active")
    assert apps.read_namespaced_stateful_set("cache", namespace).spec.replicas == 3
    wait_es(kube, namespace, "sts", phase="Completed", timeout=90)
    assert apps.read_namespaced_stateful_set("cache", namespace).spec.replicas == 1


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"targets": [{"name": FRONTEND, "replicas": 6}, {"name": FRONTEND, "replicas": 7}]},
            "each workload may be listed only once in targets",
        ),
        ({"targets": [{"name": FRONTEND, "replicas": 5000}]}, "less than or equal to 1000"),
        (
            {"targets": [{"name": BACKEND, "replicas": 10, "maxReplicas": 5}]},
            "maxReplicas must be at least replicas",
        ),
        ({"targets": [{"name": FRONTEND, "replicas": 6}], "cooldown": "5m"}, "only with a trigger"),
        ({"targets": [{"name": FRONTEND, "replicas": 6}], "duration": "2 hours"}, "30m, 2h"),
        ({"targets": []}, "should have at least 1 items"),
    ],
)
def test_the_api_server_refuses_bad_input_with_the_reason(
    kube: Cluster, namespace: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as refused:
        create_cr(kube.api, namespace, KIND, "bad", spec)
    assert refused.value.status == 422
    assert message in str(refused.value.body)


def test_adding_a_trigger_later_is_refused(kube: Cluster, namespace: str) -> None:
    create_cr(kube.api, namespace, KIND, "plain", frontend_only(3))
    with pytest.raises(ApiException) as refused:
        patch_cr(
            kube.api,
            namespace,
            KIND,
            "plain",
            {"spec": {"trigger": {"query": "up", "threshold": 1}}},
        )
    assert "cannot be added or removed" in str(refused.value.body)


def test_a_missing_target_and_a_size_over_the_cap_stall_with_the_reason(
    kube: Cluster, namespace: str
) -> None:
    deploy_app(kube, namespace)
    create_cr(
        kube.api,
        namespace,
        KIND,
        "typo",
        {"targets": [{"name": "mail-score-frontnd", "replicas": 6}]},
    )
    create_cr(kube.api, namespace, KIND, "huge", frontend_only(60))
    obj = wait_es(kube, namespace, "typo", phase="Pending", ready=("False", "TargetNotFound"))
    assert cond(obj, "Stalled")["status"] == "True"
    assert ready_message(obj) == "Deployment mail-score-frontnd does not exist in this namespace"
    obj = wait_es(kube, namespace, "huge", phase="Pending", ready=("False", "OverCap"))
    assert "60 replicas is over the operator's cap of 50" in ready_message(obj)
    assert replicas(kube, namespace, FRONTEND) == 2
    assert held_by(kube, namespace, FRONTEND) is None
    assert wait_event(kube.api, namespace, "huge", "OverCap")["type"] == "Warning"
    # A human fixes it: the edit is taken up.
    patch_cr(kube.api, namespace, KIND, "huge", {"spec": frontend_only(8)})
    wait_es(kube, namespace, "huge", phase="Active", ready=("True", "Scaled"))
    assert replicas(kube, namespace, FRONTEND) == 8
    delete_cr(kube.api, namespace, KIND, "huge")
    wait_gone(kube.api, namespace, KIND, "huge")
    assert replicas(kube, namespace, FRONTEND) == 2


def test_kubectl_wait_works(kube: Cluster, namespace: str) -> None:
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "waited", frontend_only(3))
    result = subprocess.run(
        [
            kube.kubectl,
            f"--kubeconfig={kube.kubeconfig}",
            "wait",
            "-n",
            namespace,
            "--for=condition=Ready",
            "escale/waited",
            "--timeout=60s",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def audited(kube: Cluster, namespace: str, resources: set[str]) -> list[dict[str, Any]]:
    """The operator's requests for these resources of the namespace, in the order the API
    server received them, as its audit log records them (tests/testbed: the operator's
    writes, and its reads of workloads and HPAs)."""
    path = kube.kubeconfig.parent / "logs" / "audit.log"
    out = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if (
            event.get("stage") == "ResponseComplete"
            and ref.get("namespace") == namespace
            and ref.get("resource") in resources
            and (event.get("user") or {}).get("username", "").endswith(":runbook-operator")
        ):
            out.append(event)
    return sorted(out, key=lambda e: str(e["requestReceivedTimestamp"]))


def test_the_first_change_starts_from_the_operators_watch_without_a_read(
    kube: Cluster, namespace: str
) -> None:
    """The operator keeps the newest copy of each Deployment its watches delivered: a new
    EmergencyScale records its original and changes the Deployment without reading it
    first (whether an HPA manages it is still asked of the API server)."""
    if not kube.local:
        pytest.fail("needs the local test bed's audit log (tests/testbed records it)")
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "from-watch", frontend_only(4))
    wait_es(kube, namespace, "from-watch", phase="Active", ready=("True", "Scaled"))
    calls = [
        (e["verb"], e["objectRef"].get("name")) for e in audited(kube, namespace, {"deployments"})
    ]
    first_change = ("patch", FRONTEND)
    assert first_change in calls, calls
    assert calls[: calls.index(first_change)] == []  # no get before it
    lists = audited(kube, namespace, {"horizontalpodautoscalers"})
    assert [e["verb"] for e in lists][:1] == ["list"]  # the audit log does record reads
    assert status(get_cr(kube.api, namespace, KIND, "from-watch"))["originals"][0]["replicas"] == 2
    delete_cr(kube.api, namespace, KIND, "from-watch")
    wait_gone(kube.api, namespace, KIND, "from-watch")
    assert replicas(kube, namespace, FRONTEND) == 2
