"""Container images for the e2e suite's workloads: ones any node can run without a pull.

On the local test bed kwok plays the kubelet and accepts any image. On a real cluster
(kind, for users who have Docker) a pod whose image cannot be pulled never becomes
Ready, so no rollout would ever complete. Every node has the pod-sandbox ("pause")
image, which runs for ever without arguments; but revisions need distinct images.

So each version is the pause image by digest with its own tag: ``<repo>:<version>@<digest>``.
A container runtime resolves a reference that carries both by its digest alone (the tag
is dropped when the reference is normalised), so every version is the image the node
already has, while the Deployment's template, `kubectl rollout history` and the
operator's status all see distinct images. The digest is the one the cluster's nodes
report in status.images (`use_cluster`); kwok's nodes report none, and any digest does.

    image("web-2")   # registry.k8s.io/pause:web-2@sha256:...
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes import client

__all__ = ["PULL_POLICY", "image", "use_cluster", "version_of"]

PAUSE_REPO = "registry.k8s.io/pause"
PULL_POLICY = "IfNotPresent"
_DIGEST = {"value": "sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a"}
"""registry.k8s.io/pause:3.10; replaced by what the cluster's nodes have (use_cluster)."""
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def image(version: str) -> str:
    """The image of one version, e.g. image("backend-1.4.2"); distinct per version."""
    if not _TAG.match(version):
        raise ValueError(f"{version!r} cannot be an image tag")
    return f"{PAUSE_REPO}:{version}@{_DIGEST['value']}"


def version_of(reference: str) -> str:
    """The version an image() reference names (the inverse of image())."""
    return reference.split("@", 1)[0].rsplit(":", 1)[-1]


def use_cluster(api: client.ApiClient) -> str | None:
    """Take the pause image's digest from the nodes' status.images; None when they report
    none (kwok), which keeps the default."""
    for node in client.CoreV1Api(api).list_node().items:
        for entry in (node.status.images if node.status else None) or []:
            digest = _pause_digest(entry.names or [])
            if digest is not None:
                _DIGEST["value"] = digest
                return digest
    return None


def _pause_digest(names: list[Any]) -> str | None:
    for name in names:
        repo, _, digest = str(name).partition("@")
        if digest.startswith("sha256:") and repo.endswith("/pause"):
            return digest
    return None
