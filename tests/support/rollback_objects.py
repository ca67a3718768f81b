"""Deployments and ReplicaSets as the API server returns them, for the Rollback's unit tests.

`history("web", ["img:1", "img:2", "img:3"])` is a Deployment at revision 3 with
one ReplicaSet per revision, as the Deployment controller leaves them.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

__all__ = ["deployment", "history", "replica_set", "template"]

Obj = dict[str, Any]
UID = "0d6f5b8e-0000-4000-8000-00000000d001"


def template(image: str, *, container: str = "app", app: str = "web") -> Obj:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": container, "image": image, "resources": {}}]},
    }


def _hash(tpl: Obj) -> str:
    return hashlib.sha256(repr(tpl).encode()).hexdigest()[:10]


def deployment(
    name: str = "web",
    *,
    tpl: Obj | None = None,
    revision: int | None = 2,
    replicas: int = 3,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    paused: bool = False,
    generation: int = 2,
    observed: int | None = None,
    status: Obj | None = None,
    progressing: Obj | None = None,
) -> Obj:
    """A Deployment whose rollout is complete unless `status` says otherwise."""
    notes = dict(annotations or {})
    if revision is not None:
        notes["deployment.kubernetes.io/revision"] = str(revision)
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": copy.deepcopy(tpl or template("img:2", app=name)),
        "progressDeadlineSeconds": 600,
    }
    if paused:
        spec["paused"] = True
    conditions = [progressing] if progressing else []
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": UID,
            "generation": generation,
            "resourceVersion": "1000",
            "annotations": notes,
            "labels": dict(labels or {"app": name}),
        },
        "spec": spec,
        "status": status
        or {
            "observedGeneration": generation if observed is None else observed,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": conditions,
        },
    }


def replica_set(
    tpl: Obj,
    revision: int | None,
    *,
    deployment_name: str = "web",
    owner: str = UID,
    controller: bool = True,
    annotations: dict[str, str] | None = None,
    created: str = "2024-05-01T10:00:00Z",
    replicas: int = 0,
) -> Obj:
    """The ReplicaSet the controller made for `tpl`, named and labelled by its hash."""
    hash_ = _hash(tpl)
    rs_tpl = copy.deepcopy(tpl)
    rs_tpl["metadata"].setdefault("labels", {})["pod-template-hash"] = hash_
    notes = dict(annotations or {})
    if revision is not None:
        notes["deployment.kubernetes.io/revision"] = str(revision)
    return {
        "metadata": {
            "name": f"{deployment_name}-{hash_}",
            "namespace": "ns",
            "uid": f"rs-{hash_}",
            "resourceVersion": "500",
            "creationTimestamp": created,
            "annotations": notes,
            "labels": {**rs_tpl["metadata"]["labels"]},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deployment_name,
                    "uid": owner,
                    "controller": controller,
                }
            ],
        },
        "spec": {"replicas": replicas, "template": rs_tpl},
    }


def history(
    name: str = "web",
    images: list[str] | None = None,
    *,
    causes: dict[int, str] | None = None,
    **kwargs: Any,
) -> tuple[Obj, list[Obj]]:
    """A Deployment at the last of `images`, with one ReplicaSet per revision (1, 2, ...)."""
    images = images or ["img:1", "img:2", "img:3"]
    causes = causes or {}
    sets = []
    for number, image in enumerate(images, start=1):
        notes = {"kubernetes.io/change-cause": causes[number]} if number in causes else {}
        sets.append(
            replica_set(
                template(image, app=name),
                number,
                deployment_name=name,
                annotations=notes,
                created=f"2024-05-01T10:00:{number:02d}Z",
                replicas=3 if number == len(images) else 0,
            )
        )
    last = len(images)
    notes = {"kubernetes.io/change-cause": causes[last]} if last in causes else {}
    notes.update(kwargs.pop("annotations", {}) or {})
    dep = deployment(
        name,
        tpl=template(images[-1], app=name),
        revision=last,
        annotations=notes,
        generation=last,
        **kwargs,
    )
    return dep, sets
