"""EmergencyScale: the runbook's "Scaling Operations" for P1/P2 incidents.

Scale Deployments (or StatefulSets) now, or once a Prometheus condition has
held for a while, through their HPA when one manages them, and put the saved
originals back when it ends: after `duration`, after the trigger has been clear
for `cooldown`, or when the object is deleted.

Life of one object (it is one-shot: create a new one to arm again):

    Pending -> [Waiting for the trigger] -> Active -> Reverting -> Completed
                                                              \\-> Failed (trigger said Fail)

Validation the API server can do is here; what only the operator can judge
(a workload that does not exist, a size over the operator's cap, a query that
returns several series) becomes a Stalled condition with the reason.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from ...core import gitops
from ...core.conditions import StatusBase
from ...core.fields import GoDuration, ObjectName, Workload, WorkloadKind
from ...core.model import ApiModel, cel
from ...core.prometheus import GateStatus, PrometheusCondition
from ...core.resource import Column, Resource

__all__ = [
    "EMERGENCY_SCALE",
    "MAX_REPLICAS",
    "EmergencyScalePhase",
    "EmergencyScaleSpec",
    "EmergencyScaleStatus",
    "EndReason",
    "GateStatus",
    "ScaleTarget",
    "TargetKind",
    "TargetOriginal",
]

MAX_REPLICAS = 1000
"""The schema's hard ceiling; the operator's own cap (RUNBOOK_MAX_REPLICAS, default 50) is lower."""
MAX_TARGETS = 50

Replicas = Annotated[int, Field(ge=0, le=MAX_REPLICAS)]


TargetKind = WorkloadKind


class ScaleTarget(ApiModel):
    """One workload and the size it should have during the emergency."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.maxReplicas) || self.maxReplicas >= self.replicas",
                    "maxReplicas must be at least replicas (it is the HPA's upper bound)",
                ),
            ]
        }
    }

    kind: TargetKind = TargetKind.DEPLOYMENT
    """Deployment or StatefulSet."""
    name: ObjectName
    """Name of the workload in this namespace."""
    replicas: Replicas
    """Replicas wanted. Where an HPA manages the workload, this is its minReplicas instead.
    The workload itself is then left to the HPA."""
    max_replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] | None = None
    """Only where an HPA manages the workload: its maxReplicas during the emergency, e.g. 15.
    Default: the HPA's own, raised to `replicas` if it is below."""


class EmergencyScaleSpec(ApiModel):
    """Scale workloads for an incident and revert on time."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "self.targets.all(t, self.targets.exists_one(u, u.name == t.name "
                    "&& (has(u.kind) ? u.kind : 'Deployment') "
                    "== (has(t.kind) ? t.kind : 'Deployment')))",
                    "each workload may be listed only once in targets",
                ),
                cel(
                    "!has(self.cooldown) || has(self.trigger)",
                    "cooldown applies only with a trigger (without one, use duration)",
                ),
                cel(
                    "has(self.trigger) == has(oldSelf.trigger)",
                    "a trigger cannot be added or removed once the EmergencyScale exists; "
                    "create a new one instead",
                ),
            ]
        }
    }

    targets: Annotated[list[ScaleTarget], Field(min_length=1, max_length=MAX_TARGETS)]
    """The workloads to scale. Editing `replicas` while Active applies at once.
    Removing a target puts its original back."""
    duration: GoDuration | None = None
    """How long the emergency size holds once applied, e.g. 2h; then the originals come back.
    Unset: until the object is deleted, or with a trigger until it is clear for `cooldown`."""
    trigger: PrometheusCondition | None = None
    """Scale only once this Prometheus condition has held for `for`. Unset: at once."""
    cooldown: GoDuration | None = None
    """With a trigger: how long the condition must have been clear before reverting.
    Default 5m."""
    revert: bool = True
    """Put the saved originals back when it ends (or is deleted). false keeps the new size."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why: the incident, for the record."""


class EmergencyScalePhase(StrEnum):
    PENDING = "Pending"
    """Accepted; checking the targets, waiting for a workload another operation holds, or
    recording the originals."""
    WAITING = "Waiting"
    """Waiting for the trigger to hold for `for`."""
    ACTIVE = "Active"
    """The emergency size is applied."""
    REVERTING = "Reverting"
    """Putting the originals back and waiting for the workloads to settle."""
    COMPLETED = "Completed"
    """Ended; the originals are back (or kept the new size, with revert: false)."""
    FAILED = "Failed"
    """The trigger could not be evaluated and onNoData says Fail; anything changed was put back."""
    SKIPPED = "Skipped"
    """Not run: the same run (spec.runId, or the spec of an object Git manages) ran
    already under this name; created again, most likely by Git."""


class EndReason(StrEnum):
    EXPIRED = "Expired"
    """`duration` passed since the emergency size was applied."""
    TRIGGER_CLEARED = "TriggerCleared"
    """The trigger's condition was clear for `cooldown`."""
    TRIGGER_FAILED = "TriggerFailed"
    """No data or Prometheus unreachable, and onNoData is Fail."""


class TargetOriginal(Workload):
    """What a target looked like before the operator changed it."""

    hpa: str | None = None
    """Name of the HPA that manages it, when one does: then the HPA was changed instead."""
    replicas: int | None = None
    """The workload's spec.replicas before the change."""
    min_replicas: int | None = None
    """The HPA's minReplicas before the change."""
    max_replicas: int | None = None
    """The HPA's maxReplicas before the change."""


class EmergencyScaleStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset(
        {EmergencyScalePhase.COMPLETED, EmergencyScalePhase.FAILED, EmergencyScalePhase.SKIPPED}
    )

    phase: EmergencyScalePhase | None = None
    """Pending, Waiting (for the trigger), Active, Reverting, Completed or Failed."""
    originals: list[TargetOriginal] = Field(default_factory=list)
    """Recorded before any change, so the revert survives crashes and restarts."""
    activated_at: datetime | None = None
    """When the emergency size was applied."""
    expires_at: datetime | None = None
    """When it reverts (activatedAt + duration)."""
    completed_at: datetime | None = None
    """When the originals were back (or the operation ended)."""
    end_reason: EndReason | None = None
    """Why it is reverting or ended: Expired, TriggerCleared or TriggerFailed."""
    targets_summary: str | None = None
    """The targets in one line, for `kubectl get`."""
    gate: GateStatus | None = None
    """The trigger's last evaluation."""
    revert: bool | None = None
    """spec.revert as last applied: whether deletion puts the originals back (read from
    here, not from the spec, so even a spec the operator cannot read is undone)."""


EMERGENCY_SCALE = Resource(
    kind="EmergencyScale",
    plural="emergencyscales",
    short_names=("escale", "es"),
    spec=EmergencyScaleSpec,
    status=EmergencyScaleStatus,
    one_shot=True,
    targets=gitops.listed,
    description=(
        "Scale Deployments for an incident, at once or when a Prometheus condition holds, "
        "through their HPA when one manages them, and put the originals back when it ends."
    ),
    columns=(
        Column("Phase", ".status.phase"),
        Column("Targets", ".status.targetsSummary"),
        Column("Duration", ".spec.duration", description="How long the emergency size holds"),
        Column("Active", ".status.activatedAt", type="date", description="Time since applied"),
        Column("Expires", ".status.expiresAt", description="When it reverts (UTC)"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason", priority=1),
        Column("Value", ".status.gate.value", type="number", priority=1),
        Column("Message", ".status.conditions[?(@.type=='Ready')].message", priority=1),
    ),
)
