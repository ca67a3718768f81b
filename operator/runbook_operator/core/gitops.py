"""Targets that Argo CD or Flux also manage: say so, and pause their sync on request.

An operation changes workloads and ConfigMaps that often come from Git too. Argo CD's
self-heal, or Flux's next reconciliation, would then undo the change in the middle of
the incident (a scaled Deployment scaled back, a maintenance flag flipped back). So:

- An operation's targets are read once. Each one that a GitOps tool manages (Argo CD's
  tracking annotation, Flux's labels) is named in the `GitOpsManaged` condition (True),
  with its owner and what to do, and one Warning event says the same.
- With `spec.gitops.pause: true`, the owner's automated sync is paused while the
  operation is acting (from the status write that starts its changes until the one
  that ends them): an Argo CD Application's `spec.syncPolicy.automated` is removed, a
  Flux Kustomization or HelmRelease gets `spec.suspend: true`. The original is recorded
  in `status.gitops.paused` before the change, and put back exactly afterwards (also
  when the operation is deleted), like every other original.

Pure: the I/O is in `core.guarding`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from .model import ApiModel

__all__ = [
    "GITOPS_MANAGED",
    "GitOpsRecord",
    "GitOpsSpec",
    "Owner",
    "Paused",
    "acting",
    "managed_message",
    "owner_of",
    "pause_patch",
    "restore_patch",
]

GITOPS_MANAGED = "GitOpsManaged"
DEFAULT_ARGOCD_NAMESPACE = "argocd"
ARGOCD_TRACKING = "argocd.argoproj.io/tracking-id"
FLUX = {
    "kustomize.toolkit.fluxcd.io": ("Kustomization", "kustomizations", "v1"),
    "helm.toolkit.fluxcd.io": ("HelmRelease", "helmreleases", "v2"),
}
SKIPPED = "Skipped"
"""The phase of a one-shot operation not run because it ran already (core.reruns)."""
NOT_ACTING = frozenset({"Pending", "Waiting", "Blocked", "Refused", "Armed", SKIPPED})
"""Phases in which an operation holds no change (a recurring window between occurrences)."""


class GitOpsSpec(ApiModel):
    """What to do about targets that Argo CD or Flux also manage."""

    pause: bool = False
    """Pause the owning Argo CD Application's automated sync (or suspend the Flux
    Kustomization or HelmRelease) while this operation is acting, and restore it after."""


class Paused(ApiModel):
    """One GitOps object this operation paused, and how it was before."""

    api_version: str
    """Its apiVersion, e.g. argoproj.io/v1alpha1."""
    kind: str
    """Application, Kustomization or HelmRelease."""
    namespace: str
    """Its namespace."""
    name: str
    """Its name."""
    original: str
    """Its sync setting before the pause, as JSON (`null`: it was not set)."""
    restored: bool = False
    """Put back to `original`."""


class GitOpsRecord(ApiModel):
    """GitOps objects whose sync this operation paused, with their originals."""

    paused: list[Paused] = Field(default_factory=list)
    """GitOps objects paused by this operation (spec.gitops.pause)."""


@dataclass(frozen=True)
class Owner:
    """The GitOps object that manages a target."""

    api_version: str
    kind: str
    plural: str
    namespace: str
    name: str

    @property
    def group(self) -> str:
        return self.api_version.split("/", 1)[0]

    @property
    def version(self) -> str:
        return self.api_version.split("/", 1)[1]

    def words(self) -> str:
        tool = "Argo CD" if self.kind == "Application" else "Flux"
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{tool} {self.kind} {where}{self.name}"

    def same(self, paused: Paused) -> bool:
        return (self.kind, self.namespace, self.name) == (
            paused.kind,
            paused.namespace,
            paused.name,
        )


def owner_of(meta: Mapping[str, Any], argocd_namespace: str) -> Owner | None:
    """Who manages an object, by Argo CD's tracking annotation (`app:group/kind:ns/name`,
    the app written `namespace_app` when it lives outside Argo CD's namespace) or Flux's
    labels; None when neither is there."""
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    tracking = annotations.get(ARGOCD_TRACKING)
    app = tracking.split(":", 1)[0] if isinstance(tracking, str) and ":" in tracking else None
    if app is None:  # label tracking: Argo CD's own label, or the common one beside an
        # Argo CD annotation (Helm sets app.kubernetes.io/instance too)
        app = labels.get("argocd.argoproj.io/instance")
        if not app and any(str(k).startswith("argocd.argoproj.io/") for k in annotations):
            app = labels.get("app.kubernetes.io/instance")
    if isinstance(app, str) and app:
        namespace, _, name = app.rpartition("_")
        return Owner(
            "argoproj.io/v1alpha1",
            "Application",
            "applications",
            namespace or argocd_namespace,
            name,
        )
    for group, (kind, plural, version) in FLUX.items():
        flux_name = labels.get(f"{group}/name")
        flux_namespace = labels.get(f"{group}/namespace") or meta.get("namespace") or ""
        if isinstance(flux_name, str) and flux_name:
            return Owner(f"{group}/{version}", kind, plural, str(flux_namespace), flux_name)
    return None


def managed_message(kind: str, managed: Iterable[tuple[str, Owner]], pause: bool) -> str:
    """The GitOpsManaged condition's message, for a person at 3 a.m."""
    items = list(managed)
    owners = sorted({owner.words() for _, owner in items})
    targets = "; ".join(f"{target} by {owner.words()}" for target, owner in items)
    text = f"Managed by GitOps: {targets}. "
    if pause:
        return text + (
            f"Automated sync of {', '.join(owners)} is paused while this {kind} acts, "
            f"and restored when it ends."
        )
    return text + (
        "Its automated sync may undo this operation's changes while it acts. Set "
        "spec.gitops.pause: true to pause it for the duration (restored afterwards), or "
        "leave the fields this operation changes out of Git."
    )


def pause_patch(owner: Owner, obj: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(the original as JSON, the merge patch that pauses it); None when it does not sync
    by itself (nothing to pause)."""
    spec = obj.get("spec") or {}
    if owner.kind == "Application":
        automated = (spec.get("syncPolicy") or {}).get("automated")
        if automated is None or (isinstance(automated, dict) and automated.get("enabled") is False):
            return None
        return json.dumps(automated, sort_keys=True), {"spec": {"syncPolicy": {"automated": None}}}
    suspend = spec.get("suspend")
    if suspend is True:
        return None
    return json.dumps(suspend), {"spec": {"suspend": True}}


def restore_patch(paused: Paused) -> dict[str, Any]:
    """The merge patch that puts a paused object's sync setting back exactly."""
    original = json.loads(paused.original)
    if paused.kind == "Application":
        return {"spec": {"syncPolicy": {"automated": original}}}
    return {"spec": {"suspend": original}}


def acting(phase: str | None, terminal: Iterable[str]) -> bool:
    """Whether an operation in this phase holds changes GitOps could undo."""
    return phase is not None and phase not in NOT_ACTING and phase not in set(terminal)


def listed(spec: Mapping[str, Any], field: str = "targets") -> list[tuple[str, str]]:
    """(kind, name) of each entry of a spec list of workloads (kind Deployment unless said)."""
    out: list[tuple[str, str]] = []
    for item in spec.get(field) or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out.append((str(item.get("kind") or "Deployment"), item["name"]))
    return out
