"""Names the operator writes into objects: finalizer, annotations, labels.

Kept in one module so that a rename is one change and tests can refer to them.
"""

from __future__ import annotations

from .model import GROUP

__all__ = [
    "ANNOTATION_PREFIX",
    "FINALIZER",
    "HOLD_ANNOTATION",
    "HOLD_INSTANCE_ANNOTATION",
    "KOPF_FINALIZER",
    "MANAGED_BY_LABEL",
    "OPERATOR_NAME",
    "PRE_RESTORE_LABEL",
    "RELEASE_ANNOTATION",
    "RESTARTED_AT",
    "REVISION_ANNOTATION",
    "SCHEDULED_AT_ANNOTATION",
    "SCHEDULE_LABEL",
    "holder_id",
]

OPERATOR_NAME = "runbook-operator"
FINALIZER = f"{GROUP}/{OPERATOR_NAME}"
"""On every object the operator works on, so deletion can undo its changes first. The
operator adds it itself before its first change, and removes it once nothing is left
to undo."""
KOPF_FINALIZER = f"runbook.{GROUP}/kopf"
"""Kopf's own finalizer name (unused: no handler of ours asks Kopf for one); it must
differ from FINALIZER so that Kopf never removes ours."""
ANNOTATION_PREFIX = f"runbook.{GROUP}"
"""Kopf keeps whatever it stores on objects under this prefix."""
HOLD_ANNOTATION = f"{GROUP}/held-by"
"""On a workload being changed by an operation: which one (`Kind/name/uid`)."""
HOLD_INSTANCE_ANNOTATION = f"{GROUP}/held-by-instance"
"""Beside the hold: the operator replica (its Lease identity) that took it. For people
and audits; which operation holds it is the hold itself, so a new leader carries on
with the holds its predecessor took for the same operation."""
RELEASE_ANNOTATION = f"{GROUP}/release"
"""Set by a person on an operation being deleted whose finalizer cannot finish (what it
would put back is gone or will never come back): the operator lets the object go without
putting anything back, and records that, with the annotation's value (the reason), as a
Warning event. See README, "When a deletion is stuck"."""
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
SCHEDULE_LABEL = f"{GROUP}/schedule"
"""On a DatabaseBackup created by a scheduled one: the name of that schedule."""
SCHEDULED_AT_ANNOTATION = f"{GROUP}/scheduled-at"
"""On every child of a scheduled DatabaseBackup: the schedule slot (RFC 3339)."""
PRE_RESTORE_LABEL = f"{GROUP}/pre-restore"
"""On the safety DatabaseBackup taken before a restore: the restore's name."""
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod-template annotation `kubectl rollout restart` sets."""
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def holder_id(kind: str, name: str, uid: str = "") -> str:
    """The value of HOLD_ANNOTATION for an operation (same namespace as the workload).

    With the operation's uid, so an operation deleted and created again under the same
    name is another holder: it never inherits, nor releases, the holds of the old one."""
    return f"{kind}/{name}/{uid}" if uid else f"{kind}/{name}"
