"""Reading what the rollout kinds decide on: a Deployment with the ReplicaSets it selects.

Rollback and ImageUpdate both decide from a Deployment and its ReplicaSets (which one
holds which revision: core.undo); this is the one read of the two, in one place.
"""

from __future__ import annotations

from ..adapters.kube import NotFound
from .names import REVISION_ANNOTATION
from .ports import KubePort, Obj
from .rollout import label_selector
from .undo import Observed

__all__ = ["current_replica_set", "observe_deployment", "replica_sets"]


def replica_sets(kube: KubePort, namespace: str, deployment: Obj) -> list[Obj]:
    """The ReplicaSets a Deployment's selector matches, from the API server's watch cache
    when that already holds the one of the Deployment's current revision, else from a
    consistent list.

    A consistent list waits for the cache to catch up with the latest write, up to
    100 ms (core.ports): a Rollback paid it three times between its template restore
    and its end. What the cache may lack is the ReplicaSet the Deployment controller
    made a moment ago, for the revision the Deployment (read fresh) already names: when
    that one is there, the older ones are too."""
    selector = label_selector(deployment)
    if not selector:
        return []
    listed = kube.list_replicasets(namespace, selector, cached=True)
    meta = deployment.get("metadata") or {}
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    if revision is None or any(_is_revision(rs, meta.get("uid"), revision) for rs in listed):
        return listed
    return kube.list_replicasets(namespace, selector)


def current_replica_set(kube: KubePort, namespace: str, deployment: Obj) -> Obj | None:
    """The Deployment's ReplicaSet of its current revision (owned by it, by uid)."""
    meta = deployment.get("metadata") or {}
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    if revision is None:
        return None
    found = replica_sets(kube, namespace, deployment)
    return next((rs for rs in found if _is_revision(rs, meta.get("uid"), revision)), None)


def _is_revision(rs: Obj, owner_uid: object, revision: str) -> bool:
    meta = rs.get("metadata") or {}
    owners = {o.get("uid") for o in meta.get("ownerReferences") or []}
    annotations = meta.get("annotations") or {}
    return owner_uid in owners and annotations.get(REVISION_ANNOTATION) == revision


def observe_deployment(
    kube: KubePort, namespace: str, name: str, known: Obj | None = None
) -> Observed:
    """The Deployment (None when it is gone) and the ReplicaSets its selector matches;
    `known`, a copy of the Deployment already at hand (the operator's watch cache), is
    not read again."""
    try:
        deployment = known if known is not None else kube.get_deployment(namespace, name)
    except NotFound:
        return Observed(None)
    return Observed(deployment, tuple(replica_sets(kube, namespace, deployment)))
