"""The real CustomResourceDefinitions of Argo CD's Application and Flux's Kustomization.

They come from the projects' own Go modules, fetched through the Go module proxy the way
the test bed is built (`go mod download`, cached in Go's module cache), so the objects a
test pauses are validated by the same schema a real cluster has. The controllers
themselves do not run: a test checks what the operator writes to their objects.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

__all__ = ["ARGOCD", "FLUX", "crd_files"]

ARGOCD = ("github.com/argoproj/argo-cd/v3", "v3.5.0", "manifests/crds/application-crd.yaml")
FLUX = (
    "github.com/fluxcd/kustomize-controller",
    "v1.9.0",
    "config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
)


def _module_dir(module: str, version: str) -> Path:
    with tempfile.TemporaryDirectory() as empty:  # outside any go.mod
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            cwd=empty,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    info = json.loads(result.stdout or "{}")
    if not info.get("Dir"):
        raise RuntimeError(f"go mod download {module}@{version} failed: {result.stderr}{info}")
    return Path(info["Dir"])


def crd_files() -> list[Path]:
    """The two CRD files, downloaded once (later calls read Go's module cache)."""
    return [_module_dir(module, version) / path for module, version, path in (ARGOCD, FLUX)]
