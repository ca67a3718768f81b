"""MaintenanceWindow's status: where it stands, what it changed, the originals."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from ....core.conditions import StatusBase
from ....core.model import ApiModel

__all__ = [
    "ApprovalRecord",
    "ContainerImage",
    "EndingReason",
    "FlagOriginal",
    "MaintenanceWindowStatus",
    "OccurrenceRecord",
    "Originals",
    "ReplicasOriginal",
    "RestartOriginal",
    "RollbackEntry",
    "SilenceStatus",
    "StepRecord",
    "WindowPhase",
]


# --- status ----------------------------------------------------------------


class WindowPhase(StrEnum):
    PENDING = "Pending"
    """Waiting for the start; the checklist is evaluated continuously."""
    BLOCKED = "Blocked"
    """The checklist was unmet at the start (or it could not start in time): nothing changed."""
    STARTING = "Starting"
    """The start steps are being applied."""
    ACTIVE = "Active"
    """Maintenance in effect. DatabaseRestore is allowed in this phase only."""
    ENDING = "Ending"
    """The originals are being put back and verified."""
    COMPLETED = "Completed"
    """Everything restored and verified."""
    FAILED = "Failed"
    """A step or the verification failed; what could be restored was restored."""
    CANCELLED = "Cancelled"
    """Cancelled before or during the window; everything restored."""


class EndingReason(StrEnum):
    ENDED = "Ended"
    CANCELLED = "Cancelled"
    DELETED = "Deleted"
    FAILED = "Failed"


class StepRecord(ApiModel):
    """One step done, in order."""

    name: str
    """The step, e.g. SetMaintenanceFlag."""
    at: datetime
    """When it was done."""
    message: str = ""
    """What it did."""


class FlagOriginal(ApiModel):
    """The maintenance flag before the window."""

    config_map: str
    """The ConfigMap."""
    key: str
    """The key of the flag."""
    present: bool
    """Whether the key existed (if not, it is removed again at the end)."""
    value: str | None = None
    """Its value before the window."""
    maintenance_value: str
    """The value set for the window."""


class RestartOriginal(ApiModel):
    """A restarted Deployment's pod-template annotation before the window."""

    name: str
    """The Deployment."""
    restarted_at: str | None = None
    """Its kubectl.kubernetes.io/restartedAt template annotation (unset: there was none)."""


class ReplicasOriginal(ApiModel):
    """A scaled Deployment (and its HPA) before the window."""

    name: str
    """The Deployment."""
    maintenance_replicas: int
    """The size during the window."""
    replicas: int | None = None
    """Its spec.replicas before the window."""
    hpa: str | None = None
    """The HPA targeting it, if any."""
    min_replicas: int | None = None
    """The HPA's minReplicas before the window."""
    max_replicas: int | None = None
    """The HPA's maxReplicas before the window."""


class Originals(ApiModel):
    """Everything the window changed, as it was before; recorded before each change."""

    maintenance_flag: FlagOriginal | None = None
    """The ConfigMap flag."""
    restart_stamp: str | None = None
    """The restartedAt value the window put on the restarted Deployments."""
    restarts: list[RestartOriginal] | None = None
    """The restarted Deployments."""
    replicas: list[ReplicasOriginal] | None = None
    """The scaled Deployments and HPAs."""


class SilenceStatus(ApiModel):
    """The Alertmanager silence of the current occurrence."""

    id: str | None = None
    """The silence id in Alertmanager."""
    url: str | None = None
    """The Alertmanager it is in (expired from here, even if the spec changed since)."""
    ends_at: datetime | None = None
    """When Alertmanager lets it lapse on its own (after the window, in case nobody expires it)."""


class ContainerImage(ApiModel):
    """One container's image."""

    container: str
    """Container name."""
    image: str
    """Its image."""


class RollbackEntry(ApiModel):
    """What a Deployment ran at the start: what to roll back to if the maintenance goes wrong."""

    name: str
    """The Deployment."""
    revision: str | None = None
    """Its deployment.kubernetes.io/revision at the start."""
    images: list[ContainerImage] = Field(default_factory=list)
    """Its containers' images at the start."""


class ApprovalRecord(ApiModel):
    """One approval as the operator judged it, with the identity admission stamped on it."""

    approved_by: str
    """The approver's user name, as the API server authenticated them."""
    groups: list[str] = Field(default_factory=list)
    """Their groups when they approved."""
    plan_revision: int | None = None
    """The plan revision it was given for."""
    at: datetime
    """When the operator first saw it."""
    counted: bool
    """Whether it counts toward policy.approvals.required (or a MaintenancePolicy's
    minimum)."""
    note: str = ""
    """Why it does not count (not a named approver, self-approval, voided by an edit)."""


class OccurrenceRecord(ApiModel):
    """How the previous occurrence of a recurring window ended."""

    start: datetime
    """Its scheduled start."""
    end: datetime
    """Its scheduled end."""
    phase: str
    """Completed, Failed, Cancelled or Blocked."""
    message: str = ""
    """Why, in words."""


class MaintenanceWindowStatus(StatusBase):
    """Where the window stands, what it changed and what it recorded before changing it."""

    TERMINAL: ClassVar[frozenset[str]] = frozenset(
        {WindowPhase.COMPLETED, WindowPhase.FAILED, WindowPhase.CANCELLED}
    )

    phase: WindowPhase | None = None
    """Pending, Blocked, Starting, Active, Ending, Completed, Failed or Cancelled."""
    next_start: datetime | None = None
    """Start of the current or next occurrence."""
    next_end: datetime | None = None
    """End of the current or next occurrence (moves when duration is extended)."""
    started_at: datetime | None = None
    """When the start steps began."""
    active_at: datetime | None = None
    """When every start step was done."""
    ending_at: datetime | None = None
    """When the end steps began."""
    ending_reason: EndingReason | None = None
    """Why it is ending: Ended (on time), Cancelled, Deleted or Failed."""
    ended_at: datetime | None = None
    """When the last end step was done."""
    failure: str | None = None
    """What failed, in words."""
    plan: list[str] = Field(default_factory=list)
    """The start steps of this occurrence, fixed when it started."""
    steps: list[StepRecord] = Field(default_factory=list)
    """The steps done so far in this occurrence, in order."""
    holds: list[str] = Field(default_factory=list)
    """Deployments this window holds (annotation ops.mailscore.com/held-by)."""
    originals: Originals | None = None
    """What was changed, as it was before."""
    silence: SilenceStatus | None = None
    """The Alertmanager silence."""
    rollback_plan: list[RollbackEntry] = Field(default_factory=list)
    """Revisions and images recorded at the start."""
    policy_checked_at: datetime | None = None
    """When the checklist was last evaluated."""
    last_error: str | None = None
    """The last failed attempt of the current step (it is retried)."""
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    """Every approval in spec.approvals, who gave it (as authenticated), and whether it counts."""
    governed_by: list[str] = Field(default_factory=list)
    """The MaintenancePolicies (cluster-wide minimums) whose namespaceSelector picks this
    window's namespace, as of the last look at the checklist."""
    cancelled_by: str | None = None
    """Who set spec.cancel, as the API server authenticated them."""
    last_occurrence: OccurrenceRecord | None = None
    """How the previous occurrence of a recurring window ended."""
