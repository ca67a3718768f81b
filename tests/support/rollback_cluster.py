"""Deployments with a rollout history on a real cluster, for the Rollback's e2e tests.

Histories are made the way people make them: `kubectl set image` (plus
`kubectl annotate ... kubernetes.io/change-cause=...`), each rollout waited for
with `kubectl rollout status`. `snapshot()` is what the parity test compares: the
Deployment's template and annotations and its ReplicaSets, as kubectl would
leave them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from .images import PULL_POLICY
from .kube import Cluster, create_namespace, delete_namespace, unique_name

__all__ = [
    "HOLD",
    "create_deployment",
    "deployment",
    "extra_namespace",
    "manifest",
    "owned_replica_sets",
    "revision",
    "rollout",
    "set_image",
    "snapshot",
]

Obj = dict[str, Any]
HOLD = "ops.mailscore.com/held-by"
REVISION = "deployment.kubernetes.io/revision"


def manifest(
    name: str,
    image: str,
    *,
    replicas: int = 2,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    progress_deadline: int | None = None,
    node_selector: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "revisionHistoryLimit": 10,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "50%"}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [{"name": "app", "image": image, "imagePullPolicy": PULL_POLICY}]
            },
        },
    }
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    if node_selector:
        spec["template"]["spec"]["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {"app": name, **(labels or {})},
            "annotations": dict(annotations or {}),
        },
        "spec": spec,
    }


def create_deployment(kube: Cluster, namespace: str, body: Obj, *, wait: bool = True) -> None:
    client.AppsV1Api(kube.api).create_namespaced_deployment(namespace, body)
    if wait:
        rollout(kube, namespace, body["metadata"]["name"])


def set_image(
    kube: Cluster,
    namespace: str,
    name: str,
    image: str,
    *,
    cause: str | None = None,
    wait: bool = True,
) -> None:
    """A new revision, as people make one (`kubectl set image`, then a change-cause)."""
    kube.run_kubectl("-n", namespace, "set", "image", f"deployment/{name}", f"app={image}")
    if cause:
        kube.run_kubectl(
            "-n",
            namespace,
            "annotate",
            "--overwrite",
            f"deployment/{name}",
            f"kubernetes.io/change-cause={cause}",
        )
    if wait:
        rollout(kube, namespace, name)


def rollout(kube: Cluster, namespace: str, name: str, timeout: int = 90) -> None:
    kube.run_kubectl(
        "-n",
        namespace,
        "rollout",
        "status",
        f"deployment/{name}",
        f"--timeout={timeout}s",
        timeout=timeout + 10,
    )


def deployment(kube: Cluster, namespace: str, name: str) -> Obj:
    response = client.AppsV1Api(kube.api).read_namespaced_deployment(
        name, namespace, _preload_content=False
    )
    return json.loads(response.data)  # type: ignore[no-any-return]


def revision(obj: Obj) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))


def owned_replica_sets(kube: Cluster, namespace: str, name: str) -> list[Obj]:
    dep = deployment(kube, namespace, name)
    selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
    response = client.AppsV1Api(kube.api).list_namespaced_replica_set(
        namespace, label_selector=selector, _preload_content=False
    )
    items = json.loads(response.data)["items"]
    uid = dep["metadata"]["uid"]
    return [
        rs
        for rs in items
        if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])
    ]


def snapshot(kube: Cluster, namespace: str, name: str) -> Obj:
    """What `kubectl rollout undo` decides: the template, the annotations, the history."""
    dep = deployment(kube, namespace, name)
    sets = owned_replica_sets(kube, namespace, name)
    return {
        "template": dep["spec"]["template"],
        "annotations": dep["metadata"].get("annotations") or {},
        "replicas": dep["spec"]["replicas"],
        "replica_sets": sorted(
            (
                {
                    "name": rs["metadata"]["name"],
                    "annotations": rs["metadata"].get("annotations") or {},
                    "template": rs["spec"]["template"],
                }
                for rs in sets
            ),
            key=lambda rs: rs["name"],
        ),
    }


@contextmanager
def extra_namespace(kube: Cluster, prefix: str, hint: str) -> Iterator[str]:
    """A second namespace served by the same operator (for twins with identical names)."""
    name = create_namespace(kube.api, unique_name(f"{hint}-{secrets.token_hex(2)}", prefix=prefix))
    try:
        yield name
    finally:
        delete_namespace(kube.api, name)
