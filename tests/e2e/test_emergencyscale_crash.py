"""EmergencyScale survives SIGKILL of the operator at the worst moments.

The operator is killed (no cleanup at all, as when its node dies) right after the
originals were recorded, while Active (and the duration runs out while it is
down), and while Reverting. Started again, it must finish the job with the
originals exactly as they were: never record the emergency size as "original",
never leave a hold behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

from support.app import deploy_app
from support.crs import GROUP, VERSION, create_cr, get_cr
from support.kube import Cluster
from support.operator import OperatorProcess
from support.wait import wait_for

from .test_emergencyscale import (
    BACKEND,
    FRONTEND,
    KIND,
    example_spec,
    frontend_only,
    held_by,
    hpa_bounds,
    parse_status_time,
    replicas,
    status,
    wait_es,
)


def kill_when(
    kube: Cluster,
    namespace: str,
    name: str,
    operator: OperatorProcess,
    seen: Callable[[dict[str, Any]], bool],
    timeout: int = 60,
) -> dict[str, Any]:
    """Watch the object and SIGKILL the operator the moment `seen(object)` holds."""
    api = client.CustomObjectsApi(kube.api)
    stream = watch.Watch()
    for event in stream.stream(
        api.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        "emergencyscales",
        field_selector=f"metadata.name={name}",
        timeout_seconds=timeout,
    ):
        obj: dict[str, Any] = event["object"]
        if seen(obj):
            operator.kill()
            stream.stop()
            return obj
    raise AssertionError(f"{name} never reached the moment to kill the operator")


def phase_is(phase: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: status(obj).get("phase") == phase


def test_killed_right_after_recording_the_originals(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "recorded", frontend_only(6))
    kill_when(kube, namespace, "recorded", operator, lambda o: bool(status(o).get("originals")))
    operator.start()
    obj = wait_es(kube, namespace, "recorded", phase="Active", ready=("True", "Scaled"))
    assert status(obj)["originals"] == [{"kind": "Deployment", "name": FRONTEND, "replicas": 2}]
    assert replicas(kube, namespace, FRONTEND) == 6


def test_killed_while_active_and_the_duration_ends_while_it_is_down(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "high-traffic", example_spec("20s"))
    wait_es(kube, namespace, "high-traffic", phase="Active")
    operator.kill()

    obj = get_cr(kube.api, namespace, KIND, "high-traffic")
    expires = parse_status_time(status(obj)["expiresAt"])
    wait_for(lambda: time.time() > expires + 2, timeout=30, what="the duration to run out")
    # Nobody reverted it: the operator was down.
    assert status(get_cr(kube.api, namespace, KIND, "high-traffic"))["phase"] == "Active"
    assert hpa_bounds(kube, namespace) == (10, 15)
    assert replicas(kube, namespace, FRONTEND) == 6

    operator.start()
    obj = wait_es(kube, namespace, "high-traffic", phase="Completed", timeout=60)
    assert status(obj)["endReason"] == "Expired"
    assert hpa_bounds(kube, namespace) == (3, 10)
    wait_for(lambda: replicas(kube, namespace, FRONTEND) == 2, timeout=10, what="frontend 2")
    assert held_by(kube, namespace, BACKEND) is None
    assert held_by(kube, namespace, FRONTEND) is None


def test_killed_while_reverting(kube: Cluster, namespace: str, operator: OperatorProcess) -> None:
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "short", example_spec("8s"))
    wait_es(kube, namespace, "short", phase="Active")
    at_kill = kill_when(kube, namespace, "short", operator, phase_is("Reverting"))
    assert status(at_kill)["phase"] == "Reverting"
    time.sleep(1)  # let anything in flight land; nothing may be lost either way
    assert status(get_cr(kube.api, namespace, KIND, "short"))["phase"] == "Reverting"
    assert status(at_kill)["originals"][0]["minReplicas"] == 3

    operator.start()
    obj = wait_es(kube, namespace, "short", phase="Completed", timeout=60)
    assert status(obj)["originals"] == status(at_kill)["originals"]
    assert hpa_bounds(kube, namespace) == (3, 10)
    wait_for(lambda: replicas(kube, namespace, FRONTEND) == 2, timeout=10, what="frontend 2")
    assert held_by(kube, namespace, BACKEND) is None
    assert held_by(kube, namespace, FRONTEND) is None


def test_deleted_while_the_operator_is_down(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """The finalizer keeps the object until the operator is back to put things back."""
    deploy_app(kube, namespace)
    create_cr(kube.api, namespace, KIND, "gone", frontend_only(5))
    wait_es(kube, namespace, "gone", phase="Active")
    operator.kill()
    client.CustomObjectsApi(kube.api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "emergencyscales", "gone"
    )
    time.sleep(1)
    assert get_cr(kube.api, namespace, KIND, "gone")["metadata"]["deletionTimestamp"]
    assert replicas(kube, namespace, FRONTEND) == 5
    operator.start()

    def gone() -> bool:
        try:
            get_cr(kube.api, namespace, KIND, "gone")
        except client.ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(gone, timeout=30, what="the finalizer to run")
    assert replicas(kube, namespace, FRONTEND) == 2
    assert held_by(kube, namespace, FRONTEND) is None
