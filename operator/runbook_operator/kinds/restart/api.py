"""Restart: the runbook's "Application Restart" (`kubectl rollout restart`) as an object.

The runbook's first procedure, and its P1 "quick fix": restart the backend, wait for
the rollout, check that the service answers. A Restart does the same to one or more
Deployments or StatefulSets, all at once or one after the other, exactly as
`kubectl rollout restart` does (the `kubectl.kubernetes.io/restartedAt` pod-template
annotation), records the value it sets before setting it so that a resumed or
re-applied object never restarts anything twice, follows every rollout to its end
(progress deadline and `timeout`), and is Ready only once the optional health check
passes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from ...core import gitops
from ...core.conditions import StatusBase
from ...core.fields import GoDuration, ObjectName, Workload, WorkloadKind
from ...core.health import HealthCheck
from ...core.model import ApiModel, cel
from ...core.resource import Column, Resource

__all__ = [
    "RESTART",
    "Order",
    "RestartPhase",
    "RestartSpec",
    "RestartStatus",
    "RestartTarget",
    "TargetKind",
    "TargetState",
    "TargetStatus",
]

MAX_TARGETS = 20


TargetKind = WorkloadKind


class Order(StrEnum):
    IN_ORDER = "InOrder"
    """One after the other, in the listed order: each starts once the previous one has
    finished rolling out (the runbook's backend, then frontend)."""
    ALL_AT_ONCE = "AllAtOnce"
    """Every target at the same time."""


class RestartTarget(ApiModel):
    """One workload to restart."""

    kind: TargetKind = TargetKind.DEPLOYMENT
    """Deployment or StatefulSet."""
    name: ObjectName
    """Name of the workload in this namespace."""


class RestartSpec(ApiModel):
    """Rolling-restart workloads like `kubectl rollout restart`, and see them healthy."""

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
                    "self == oldSelf",
                    "a Restart cannot be changed once created; create a new one instead",
                ),
            ]
        }
    }

    targets: Annotated[list[RestartTarget], Field(min_length=1, max_length=MAX_TARGETS)]
    """The workloads to restart."""
    order: Order = Order.IN_ORDER
    """InOrder (each after the previous one finished) or AllAtOnce."""
    timeout: GoDuration = "10m"
    """How long each rollout may take before the Restart is Failed (the Deployment's own
    progressDeadlineSeconds counts too, whichever comes first)."""
    health_check: HealthCheck | None = None
    """Must pass after the last rollout, before the Restart is Ready (HTTP or Prometheus)."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why: the incident, for the record."""


class RestartPhase(StrEnum):
    PENDING = "Pending"
    """Accepted; waiting for a workload another operation holds."""
    RESTARTING = "Restarting"
    """Rollouts under way."""
    VERIFYING = "Verifying"
    """Every rollout finished; the health check is being asked."""
    COMPLETED = "Completed"
    """Every workload restarted, rolled out, and the health check passed."""
    FAILED = "Failed"
    """A rollout did not finish in time, or the health check did not pass."""
    REFUSED = "Refused"
    """Nothing was restarted: a workload is missing, paused, or cannot roll."""
    SKIPPED = "Skipped"
    """Not run: the same run (spec.runId, or the spec of an object Git manages) ran
    already under this name; created again, most likely by Git."""


class TargetState(StrEnum):
    WAITING = "Waiting"
    """Not restarted yet (InOrder: the previous one is still rolling out)."""
    RESTARTING = "Restarting"
    """The restart annotation is set; the rollout is under way."""
    COMPLETE = "Complete"
    """The rollout finished."""
    FAILED = "Failed"
    """The rollout did not finish in time."""


class TargetStatus(Workload):
    """One workload: what it was, what was set, how its rollout went."""

    state: TargetState = TargetState.WAITING
    """Waiting, Restarting, Complete or Failed."""
    previous_restarted_at: str | None = None
    """Its restartedAt pod-template annotation before (unset: there was none)."""
    old_revision: str | None = None
    """Before the restart: the Deployment's revision, or the StatefulSet's currentRevision."""
    old_replica_set: str | None = None
    """Before the restart: the Deployment's ReplicaSet."""
    new_revision: str | None = None
    """After the rollout: the new revision (Deployment) or updateRevision (StatefulSet)."""
    new_replica_set: str | None = None
    """After the rollout: the Deployment's new ReplicaSet."""
    started_at: datetime | None = None
    """When the restart annotation was set."""
    completed_at: datetime | None = None
    """When its rollout finished (or failed)."""
    ready_replicas: int | None = None
    """Ready replicas at the last look."""
    message: str | None = None
    """Where its rollout stands, in words."""


class RestartStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset(
        {RestartPhase.COMPLETED, RestartPhase.FAILED, RestartPhase.REFUSED, RestartPhase.SKIPPED}
    )

    phase: RestartPhase | None = None
    """Pending, Restarting, Verifying, Completed, Failed or Refused."""
    restart_stamp: str | None = None
    """The kubectl.kubernetes.io/restartedAt value this Restart sets, recorded before it sets
    it: a workload that has it is restarted already and is never restarted again."""
    targets: list[TargetStatus] = Field(default_factory=list)
    """Per workload, recorded before any change."""
    started_at: datetime | None = None
    """When the first restart was made."""
    rolled_out_at: datetime | None = None
    """When the last rollout finished (the health check's clock starts here)."""
    completed_at: datetime | None = None
    """When it ended (Completed, Failed or Refused)."""
    health: str | None = None
    """The health check's last answer."""
    targets_summary: str | None = None
    """The targets in one line, for `kubectl get`."""


RESTART = Resource(
    kind="Restart",
    plural="restarts",
    short_names=("rst",),
    spec=RestartSpec,
    status=RestartStatus,
    one_shot=True,
    targets=gitops.listed,
    description=(
        "Rolling-restart Deployments and StatefulSets exactly like `kubectl rollout restart`, "
        "in order or all at once, follow every rollout to its end, then check the service "
        "is healthy. Never restarts anything twice."
    ),
    columns=(
        Column("Phase", ".status.phase"),
        Column("Targets", ".status.targetsSummary"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
        Column("Completed", ".status.completedAt", type="date", priority=1),
        Column("Message", ".status.conditions[?(@.type=='Ready')].message", priority=1),
    ),
)
