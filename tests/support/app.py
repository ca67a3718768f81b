"""The Mail Score application (examples/app/mail-score.yaml) in a test's namespace.

The example names Mail Score's own images, which a real kubelet (kind) cannot pull;
`manifests()` swaps each for the runnable stand-in of the same name and version
(support.images), so the same suite runs on kwok and on kind. Nothing else changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .images import PULL_POLICY, image
from .kube import Cluster, wait_for_rollout

__all__ = ["APP", "BACKEND", "FRONTEND", "app_image", "deploy_app", "manifests"]

APP = Path(__file__).resolve().parents[2] / "examples" / "app" / "mail-score.yaml"
BACKEND, FRONTEND = "mail-score-backend", "mail-score-frontend"


def app_image(reference: str) -> str:
    """registry.mailscore.com/mail-score-backend:1.4.2 -> image("mail-score-backend-1.4.2")."""
    name, _, tag = reference.rsplit("/", 1)[-1].partition(":")
    return image(f"{name}-{tag or 'latest'}")


def manifests(path: Path = APP) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            container["image"] = app_image(container["image"])
            container["imagePullPolicy"] = PULL_POLICY
    return docs


def deploy_app(kube: Cluster, namespace: str) -> None:
    """The Mail Score app, rolled out: backend 3 (backend-hpa 3..10), frontend 2."""
    import subprocess

    subprocess.run(
        [kube.kubectl, f"--kubeconfig={kube.kubeconfig}", "apply", "-n", namespace, "-f", "-"],
        input=yaml.safe_dump_all(manifests()),
        text=True,
        check=True,
        capture_output=True,
    )
    for name in (BACKEND, FRONTEND):
        wait_for_rollout(kube.api, namespace, name)
