"""EmergencyScale: the runbook's "Scaling Operations" for P1/P2 incidents.

Scale Deployments now (or when a Prometheus condition holds), through their
HPA when one manages them, and put the saved originals back when it ends.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .common import (
    ApiModel,
    GoDuration,
    ObjectName,
    PrometheusCondition,
    StatusBase,
    cel,
)
from .resource import Column, Resource

__all__ = [
    "EMERGENCY_SCALE",
    "MAX_REPLICAS",
    "EmergencyScalePhase",
    "EmergencyScaleSpec",
    "EmergencyScaleStatus",
    "ScaleTarget",
    "TargetOriginal",
]

MAX_REPLICAS = 1000
"""The schema's hard ceiling; the operator's own cap (default 50) is lower."""

Replicas = Annotated[int, Field(ge=0, le=MAX_REPLICAS)]


class TargetKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"


class ScaleTarget(ApiModel):
    """One workload and the size it should have during the emergency."""

    kind: TargetKind = TargetKind.DEPLOYMENT
    """Deployment or StatefulSet."""
    name: ObjectName
    """Name of the workload in this namespace."""
    replicas: Replicas
    """Replicas wanted. Under an HPA this becomes the HPA's minReplicas."""
    min_replicas: Replicas | None = None
    """Explicit HPA minReplicas (only where an HPA targets the workload)."""
    max_replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] | None = None
    """Explicit HPA maxReplicas, e.g. the runbook's 15. Default: raised to `replicas` if below."""


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
            ]
        }
    }

    targets: Annotated[list[ScaleTarget], Field(min_length=1, max_length=50)]
    """The workloads to scale."""
    duration: GoDuration | None = None
    """How long the emergency size holds, e.g. 2h; then the originals come back.

    Unset: until the object is deleted."""
    trigger: PrometheusCondition | None = None
    """Scale only while this Prometheus condition holds (after `for`). Unset: at once."""
    cooldown: GoDuration | None = None
    """With a trigger: how long the condition must be clear before reverting. Default 5m."""
    revert: bool = True
    """Put the saved originals back at the end. false keeps the new size."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why: the incident, for the record."""


class EmergencyScalePhase(StrEnum):
    PENDING = "Pending"
    WAITING = "Waiting"
    ACTIVE = "Active"
    REVERTING = "Reverting"
    COMPLETED = "Completed"
    FAILED = "Failed"


class TargetOriginal(ApiModel):
    """What a target looked like before the operator changed it."""

    kind: TargetKind = TargetKind.DEPLOYMENT
    name: str
    """The workload."""
    hpa: str | None = None
    """Name of the HPA that manages it, when one does (then the HPA was changed)."""
    replicas: int | None = None
    """The workload's spec.replicas before the change (no HPA)."""
    min_replicas: int | None = None
    """The HPA's minReplicas before the change."""
    max_replicas: int | None = None
    """The HPA's maxReplicas before the change."""


class GateStatus(ApiModel):
    """The last evaluation of the Prometheus trigger."""

    value: float | None = None
    """The query's last value; unset when there was no data."""
    holds: bool = False
    """Whether the comparison held at the last evaluation."""
    since: datetime | None = None
    """Since when it has held (or been clear) without interruption."""
    evaluated_at: datetime | None = None
    """When Prometheus was last asked."""
    error: str | None = None
    """Why the last evaluation had no value (no data, unreachable, several series)."""


class EmergencyScaleStatus(StatusBase):
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
    targets_summary: str | None = None
    """The targets in one line, for `kubectl get`."""
    gate: GateStatus | None = None
    """The trigger's last evaluation."""


EMERGENCY_SCALE = Resource(
    kind="EmergencyScale",
    plural="emergencyscales",
    short_names=("escale", "es"),
    spec=EmergencyScaleSpec,
    status=EmergencyScaleStatus,
    description=(
        "Scale Deployments for an incident, at once or when a Prometheus condition holds, "
        "through their HPA when one manages them, and put the originals back when it ends."
    ),
    columns=(
        Column("Phase", ".status.phase"),
        Column("Targets", ".status.targetsSummary"),
        Column("Expires", ".status.expiresAt", type="date"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason", priority=1),
    ),
)
