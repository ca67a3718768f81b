"""The operator's finalizer, put on by admission at a new operation's creation
(deploy/admission/finalizer.yaml, applied by the session fixture): the operator's first
pass then records and changes without writing it, and deleting the operation still puts
back what it changed."""

from __future__ import annotations

import json

from kubernetes import client

from runbook_operator.core.names import FINALIZER
from support.crs import GROUP, VERSION, delete_cr, wait_gone, wait_phase
from support.identity import create_as, grant
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.rollback_cluster import create_deployment, manifest


def managers_of_finalizers(obj: dict[str, object]) -> list[str]:
    """The field managers that set metadata.finalizers (as managedFields record it)."""
    fields = obj["metadata"]["managedFields"]  # type: ignore[index]
    return [f["manager"] for f in fields if '"f:finalizers"' in json.dumps(f.get("fieldsV1"))]


def test_an_operation_has_the_finalizer_from_its_creation_and_the_operator_never_adds_it(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    grant(kube, namespace, "edit", "rita")
    create_deployment(kube, namespace, manifest("web", image("backend-1.4.2"), replicas=1))
    spec = {"targets": [{"name": "web", "replicas": 3}], "duration": "10m", "reason": "P1"}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EmergencyScale",
        "metadata": {"name": "surge", "namespace": namespace},
        "spec": spec,
    }
    stored = create_as(kube, "rita", body)
    assert stored["metadata"]["finalizers"] == [FINALIZER]  # as created, before any pass

    active = wait_phase(kube.api, namespace, "EmergencyScale", "surge", "Active")
    assert active["status"]["requestedBy"]["user"] == "rita"
    assert active["metadata"]["finalizers"] == [FINALIZER]
    # Admission's own: no field manager holds it. Had the operator added it, its patch
    # would (managedFields records every writer of metadata.finalizers).
    assert managers_of_finalizers(active) == []
    apps = client.AppsV1Api(kube.api)
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 3

    # The finalizer admission put on does its work: deletion waits for the revert.
    delete_cr(kube.api, namespace, "EmergencyScale", "surge")
    wait_gone(kube.api, namespace, "EmergencyScale", "surge", timeout=90)
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 1
