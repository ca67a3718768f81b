"""Names the operator writes into other objects: annotations, labels, finalizer.

Kept in one module so that a rename is one change and tests can refer to them.
"""

from __future__ import annotations

from .api.common import GROUP

__all__ = [
    "ANNOTATION_PREFIX",
    "FINALIZER",
    "HOLD_ANNOTATION",
    "MANAGED_BY_LABEL",
    "OPERATOR_NAME",
    "holder_id",
]

OPERATOR_NAME = "runbook-operator"
FINALIZER = f"{GROUP}/{OPERATOR_NAME}"
"""Put on every object the operator works on, so deletion can undo its changes first."""
ANNOTATION_PREFIX = f"runbook.{GROUP}"
"""Kopf keeps its handler progress and diff-base under this prefix."""
HOLD_ANNOTATION = f"{GROUP}/held-by"
"""On a workload being changed by an operation: which one (`Kind/name`)."""
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


def holder_id(kind: str, name: str) -> str:
    """The value of HOLD_ANNOTATION for an operation (same namespace as the workload)."""
    return f"{kind}/{name}"
