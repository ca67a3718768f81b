"""Reading what the rollout kinds decide on: a Deployment with the ReplicaSets it selects.

Rollback and ImageUpdate both decide from a Deployment and its ReplicaSets (which one
holds which revision: core.undo); this is the one read of the two, in one place.
"""

from __future__ import annotations

from ..adapters.kube import NotFound
from .ports import KubePort
from .rollout import label_selector
from .undo import Observed

__all__ = ["observe_deployment"]


def observe_deployment(kube: KubePort, namespace: str, name: str) -> Observed:
    """The Deployment (None when it is gone) and the ReplicaSets its selector matches."""
    try:
        deployment = kube.get_deployment(namespace, name)
    except NotFound:
        return Observed(None)
    selector = label_selector(deployment)
    replica_sets = kube.list_replicasets(namespace, selector) if selector else []
    return Observed(deployment, tuple(replica_sets))
