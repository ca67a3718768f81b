"""`kubectl rollout undo`, as pure functions of wire objects: Rollback's, and ImageUpdate's
when it returns to the revision it recorded.

Written from kubectl's documentation and from its observed behaviour on a
real control plane (the parity e2e test compares the two): the ReplicaSets a
Deployment controls (by owner uid), the revision each carries in its
`deployment.kubernetes.io/revision` annotation, "previous" as the second highest
revision, the pod template copied back without `pod-template-hash`, the
annotations kubectl keeps from the Deployment and those it copies from the
ReplicaSet, and its refusals (`kubectl rollout status` is core.rollout's).
Also: which GitOps tool tracks a Deployment, since its next sync undoes an undo.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .conditions import Condition, Conditions, set_condition
from .gitops import DEFAULT_ARGOCD_NAMESPACE, owner_of
from .names import HOLD_ANNOTATION, HOLD_INSTANCE_ANNOTATION, REVISION_ANNOTATION

__all__ = [
    "GITOPS_MANAGED",
    "HASH_LABEL",
    "KEPT_ANNOTATIONS",
    "REVISION_ANNOTATION",
    "Choice",
    "Observed",
    "Refusal",
    "annotations_of",
    "choose",
    "equal_ignore_hash",
    "gitops_managed",
    "gitops_manager",
    "images",
    "meta",
    "new_replica_set",
    "owned_replica_sets",
    "revision",
    "rollback_annotations",
    "rollback_patch",
    "template_of",
]

Obj = dict[str, Any]

GITOPS_MANAGED = "GitOpsManaged"
"""The condition that warns: a GitOps tool tracks the Deployment and will undo the change."""
HASH_LABEL = "pod-template-hash"
KEPT_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
"""kubectl keeps these from the Deployment and never copies them from the ReplicaSet."""

_INT = re.compile(r"^[+-]?[0-9]+$")


# --- kubectl rollout undo -----------------------------------------------------


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict(meta(obj).get("annotations") or {})


def revision(obj: Obj) -> int | None:
    """The revision annotation: 0 when absent (like kubectl), None when not a number."""
    text = annotations_of(obj).get(REVISION_ANNOTATION)
    if text is None:
        return 0
    return int(text) if _INT.match(text) else None


def owned_replica_sets(deployment: Obj, replica_sets: Iterable[Obj]) -> list[Obj]:
    """The ReplicaSets whose controller is this Deployment (by uid), in listing order."""
    uid = meta(deployment).get("uid")
    return [
        rs
        for rs in replica_sets
        if any(
            ref.get("controller") and ref.get("uid") == uid
            for ref in meta(rs).get("ownerReferences") or []
        )
    ]


def _normal(value: Any) -> Any:
    """Empty maps and lists count as absent, as in the API machinery's semantic equality."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _without_hash(template: Obj) -> Obj:
    out = copy.deepcopy(template)
    labels = (out.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return out


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Whether two pod templates are equal once `pod-template-hash` is ignored."""
    return bool(_normal(_without_hash(a)) == _normal(_without_hash(b)))


def template_of(obj: Obj) -> Obj:
    return (obj.get("spec") or {}).get("template") or {}


def new_replica_set(deployment: Obj, owned: Sequence[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (the controller's choice)."""
    by_age = sorted(
        owned, key=lambda rs: (meta(rs).get("creationTimestamp") or "", meta(rs).get("name"))
    )
    current = template_of(deployment)
    return next((rs for rs in by_age if equal_ignore_hash(template_of(rs), current)), None)


@dataclass(frozen=True)
class Refusal:
    """Why kubectl (and so the operator) refuses to roll this Deployment back."""

    reason: str
    message: str


@dataclass(frozen=True)
class Choice:
    """The ReplicaSet to go back to, and whether the Deployment already has its template."""

    replica_set: Obj
    to_revision: int
    already: bool


def _history(owned: Sequence[Obj]) -> list[int]:
    return sorted({r for r in (revision(rs) for rs in owned) if r is not None})


def _unknown_revision(name: str, wanted: int, owned: Sequence[Obj]) -> Refusal:
    known = ", ".join(str(r) for r in _history(owned)) or "none"
    return Refusal(
        "RevisionNotFound",
        f"Deployment {name} has no revision {wanted} in its history "
        f"(available revisions: {known}; see `kubectl rollout history deployment/{name}`)",
    )


def choose(
    name: str, deployment: Obj | None, replica_sets: Iterable[Obj], to_revision: int | None
) -> Choice | Refusal:
    """kubectl rollout undo's choice: refusals first, then the ReplicaSet by revision."""
    if deployment is None:
        return Refusal("DeploymentNotFound", f"Deployment {name} does not exist in this namespace")
    if (deployment.get("spec") or {}).get("paused"):
        return Refusal(
            "DeploymentPaused",
            f"Deployment {name} is paused and kubectl refuses to roll back a paused Deployment: "
            f"resume it with `kubectl rollout resume deployment/{name}`, then create the "
            "Rollback again",
        )
    owned = owned_replica_sets(deployment, replica_sets)
    new = new_replica_set(deployment, owned)
    ordered = [rs for rs in owned if rs is not new] + ([new] if new is not None else [])
    chosen = _by_revision(ordered, to_revision)
    if chosen is None:
        if to_revision is not None:
            return _unknown_revision(name, to_revision, owned)
        return Refusal(
            "NoRolloutHistory",
            f"Deployment {name} has no previous revision to roll back to "
            "(it has never been changed since it was created)",
        )
    rs, number = chosen
    return Choice(rs, number, equal_ignore_hash(template_of(rs), template_of(deployment)))


def _by_revision(ordered: Sequence[Obj], to_revision: int | None) -> tuple[Obj, int] | None:
    """The named revision, or the second highest one (kubectl's scan, ties included)."""
    latest: tuple[Obj, int] | None = None
    previous: tuple[Obj, int] | None = None
    for rs in ordered:
        number = revision(rs)
        if number is None:
            continue
        if to_revision is not None:
            if number == to_revision:
                return rs, number
        elif latest is None or latest[1] < number:
            previous, latest = latest, (rs, number)
        elif previous is None or previous[1] < number:
            previous = (rs, number)
    return previous if to_revision is None else None


def rollback_annotations(
    deployment: Obj, replica_set: Obj, holder: str | None = None, instance: str = ""
) -> dict[str, str]:
    """The Deployment's annotations after the undo, as kubectl computes them.

    kubectl keeps the Deployment's own bookkeeping annotations (KEPT_ANNOTATIONS),
    copies every other annotation of the ReplicaSet (so `kubernetes.io/change-cause`
    comes back), and drops the rest. The operator's hold, when given, is kept on top, with
    the replica that took it (`instance`, when this patch takes it).
    """
    current = annotations_of(deployment)
    out = {k: v for k, v in current.items() if k in KEPT_ANNOTATIONS}
    out.update({k: v for k, v in annotations_of(replica_set).items() if k not in KEPT_ANNOTATIONS})
    out.pop(HOLD_ANNOTATION, None)  # a stale hold copied with an old template never comes back
    out.pop(HOLD_INSTANCE_ANNOTATION, None)
    if holder is not None:
        out[HOLD_ANNOTATION] = holder
        if HOLD_INSTANCE_ANNOTATION in current:  # who took the hold stays beside it
            out[HOLD_INSTANCE_ANNOTATION] = current[HOLD_INSTANCE_ANNOTATION]
        elif instance:
            out[HOLD_INSTANCE_ANNOTATION] = instance
    return out


def rollback_patch(
    deployment: Obj, replica_set: Obj, holder: str | None = None, instance: str = ""
) -> list[Obj]:
    """The JSON patch kubectl sends, guarded by the resourceVersion the decision was made on."""
    template = _without_hash(template_of(replica_set))
    return [
        {  # the API server answers 409 Conflict when the object changed since it was read
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": meta(deployment).get("resourceVersion"),
        },
        {"op": "replace", "path": "/spec/template", "value": template},
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": rollback_annotations(deployment, replica_set, holder, instance),
        },
    ]


def images(template: Obj) -> list[str]:
    """The template's containers as `name=image` (init containers first)."""
    spec = template.get("spec") or {}
    return [
        f"{c.get('name')}={c.get('image')}"
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    ]


# --- GitOps -------------------------------------------------------------------


def gitops_manager(deployment: Obj) -> str | None:
    """Which GitOps tool tracks this Deployment (so its next sync re-applies Git's revision)."""
    owner = owner_of(meta(deployment), DEFAULT_ARGOCD_NAMESPACE)
    return owner.words() if owner is not None else None


@dataclass(frozen=True)
class Observed:
    """A Deployment and the ReplicaSets its selector matches, as read in one pass
    (ownership is checked by owned_replica_sets)."""

    deployment: Obj | None
    replica_sets: tuple[Obj, ...] = ()


def gitops_managed(
    conditions: Iterable[Condition], message: str, *, generation: int | None, now: datetime
) -> Conditions:
    """The conditions with GitOpsManaged=True saying `message`."""
    return set_condition(
        conditions,
        GITOPS_MANAGED,
        True,
        GITOPS_MANAGED,
        message,
        generation=generation,
        now=now,
    )
