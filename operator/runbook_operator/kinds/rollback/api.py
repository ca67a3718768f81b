"""Rollback: the runbook's "Emergency rollback" (`kubectl rollout undo`) as an object.

The rollback itself has exactly the semantics of `kubectl rollout undo`: the
ReplicaSet chosen by its revision annotation, its pod template copied back
without `pod-template-hash`, kubectl's annotations copied back, paused
Deployments refused. The object adds what an incident needs around it: several
Deployments at once, the decision recorded in status before anything changes
(so a crash never applies it twice), completion tracked to the end of the
rollout, and an armed mode that fires on a Prometheus signal after a deploy.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from ...core import gitops
from ...core.conditions import StatusBase
from ...core.fields import GoDuration, ObjectName
from ...core.model import ApiModel, cel
from ...core.prometheus import GateStatus, PrometheusCondition
from ...core.resource import Column, Resource

__all__ = [
    "ROLLBACK",
    "RollbackPhase",
    "RollbackSpec",
    "RollbackStatus",
    "RollbackTarget",
    "RollbackTrigger",
    "TargetState",
    "TargetStatus",
    "TriggerStatus",
]

MAX_TARGETS = 20


class RollbackTarget(ApiModel):
    """One Deployment and the revision it goes back to."""

    name: ObjectName
    """Name of the Deployment in this namespace."""
    to_revision: Annotated[int, Field(ge=1)] | None = None
    """The revision to go back to, as `kubectl rollout history` lists it (`--to-revision`).
    Unset: the previous revision (the second highest)."""


class RollbackTrigger(PrometheusCondition):
    """Arm the rollback: fire when this condition holds soon after a new revision rolled out."""

    window: GoDuration
    """How long after a new revision of a target finished rolling out it may fire, e.g. 30m.
    Outside every target's window the trigger is not evaluated."""


class RollbackSpec(ApiModel):
    """Roll Deployments back like `kubectl rollout undo`, now or when a trigger fires."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "self.targets.all(t, self.targets.exists_one(u, u.name == t.name))",
                    "each Deployment may be listed only once in targets",
                ),
                cel(
                    "!has(self.trigger) || self.targets.all(t, !has(t.toRevision))",
                    "an armed Rollback (with a trigger) undoes the revision that just rolled "
                    "out; toRevision cannot be combined with trigger",
                ),
                cel(
                    "self.targets == oldSelf.targets",
                    "targets cannot be changed once set; create a new Rollback instead",
                ),
                cel(
                    "has(self.trigger) == has(oldSelf.trigger) "
                    "&& (!has(self.trigger) || self.trigger == oldSelf.trigger)",
                    "trigger cannot be added, removed or changed once set; "
                    "create a new Rollback instead",
                ),
            ]
        }
    }

    targets: Annotated[list[RollbackTarget], Field(min_length=1, max_length=MAX_TARGETS)]
    """The Deployments to roll back (the runbook rolls back backend and frontend together)."""
    trigger: RollbackTrigger | None = None
    """Armed mode: wait (phase Armed) and roll back once, when this condition holds.
    It counts only within `window` after a new revision of a target finished rolling out.
    Unset: roll back at once."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why: the incident or the change being undone, for the record."""


class RollbackPhase(StrEnum):
    PENDING = "Pending"
    """Accepted; waiting to start (e.g. for a Deployment held by another operation)."""
    ARMED = "Armed"
    """Watching the trigger; nothing has been changed."""
    ROLLING_BACK = "RollingBack"
    """Templates restored; waiting for the rollouts to complete."""
    COMPLETED = "Completed"
    """Every target rolled out the revision it went back to (or already was at it)."""
    FAILED = "Failed"
    """A target's rollout exceeded its progress deadline, or a target changed under us."""
    REFUSED = "Refused"
    """Nothing was changed: a target is missing, paused, or lacks the revision asked for."""
    SKIPPED = "Skipped"
    """Not run: the same run (spec.runId, or the spec of an object Git manages) ran
    already under this name; created again, most likely by Git."""


class TargetState(StrEnum):
    PENDING = "Pending"
    """Not decided yet."""
    PLANNED = "Planned"
    """The revision to go back to is recorded; the template is not restored yet."""
    ROLLING_OUT = "RollingOut"
    """The template is restored; the Deployment is rolling it out."""
    COMPLETE = "Complete"
    """The rollout completed."""
    ALREADY_AT_REVISION = "AlreadyAtRevision"
    """The Deployment already had that revision's template; left alone."""
    NOT_RECENT = "NotRecent"
    """Armed mode: no new revision in its window when the trigger fired; left alone."""
    FAILED = "Failed"
    """The rollout exceeded the Deployment's progress deadline, or it changed under us."""


class TargetStatus(ApiModel):
    """What happened to one target, recorded before any change is made."""

    name: str
    """The Deployment."""
    state: TargetState = TargetState.PENDING
    """Pending, Planned, RollingOut, Complete, AlreadyAtRevision, NotRecent or Failed."""
    from_revision: int | None = None
    """The revision it had before the rollback.
    Roll forward again with `kubectl rollout undo deployment/NAME --to-revision=FROM`."""
    from_replica_set: str | None = None
    """The ReplicaSet of fromRevision."""
    from_images: list[str] = Field(default_factory=list)
    """Images before the rollback, as container=image."""
    to_revision: int | None = None
    """The revision whose template was copied back."""
    to_replica_set: str | None = None
    """The ReplicaSet whose template was copied back."""
    to_images: list[str] = Field(default_factory=list)
    """Images after the rollback, as container=image."""
    new_revision: int | None = None
    """The revision number the Deployment gave the restored template (kubectl renumbers too)."""
    applied_at: datetime | None = None
    """When the template was restored."""
    completed_at: datetime | None = None
    """When the rollout completed (or failed)."""
    message: str | None = None
    """The last thing worth knowing about this target."""
    gitops: str | None = None
    """The GitOps tool tracking the Deployment (Argo CD, Flux), when one does."""
    watched_revision: int | None = None
    """Armed mode: the latest revision seen fully rolled out."""
    rolled_out_at: datetime | None = None
    """Armed mode: when watchedRevision finished rolling out."""
    window_ends_at: datetime | None = None
    """Armed mode: until when the trigger may fire for watchedRevision."""


class TriggerStatus(GateStatus):
    """The last evaluation of the armed trigger, and when it fired."""

    fired_at: datetime | None = None
    """When the trigger fired (it fires once)."""


class RollbackStatus(StatusBase):
    """Where the rollback stands. Each decision is recorded here before it is carried out."""

    TERMINAL: ClassVar[frozenset[str]] = frozenset(
        {
            RollbackPhase.COMPLETED,
            RollbackPhase.FAILED,
            RollbackPhase.REFUSED,
            RollbackPhase.SKIPPED,
        }
    )

    phase: RollbackPhase | None = None
    """Pending, Armed, RollingBack, Completed, Failed or Refused."""
    targets: list[TargetStatus] = Field(default_factory=list)
    """Per Deployment: from/to revision and images, times. Recorded before any change."""
    started_at: datetime | None = None
    """When the rollback decision was recorded (holds taken)."""
    completed_at: datetime | None = None
    """When the operation ended (Completed, Failed or Refused)."""
    targets_summary: str | None = None
    """The targets in one line, for `kubectl get`."""
    trigger: TriggerStatus | None = None
    """Armed mode: the trigger's last evaluation."""


ROLLBACK = Resource(
    kind="Rollback",
    plural="rollbacks",
    short_names=("rb",),
    spec=RollbackSpec,
    status=RollbackStatus,
    one_shot=True,
    targets=gitops.listed,
    description=(
        "Roll Deployments back exactly like `kubectl rollout undo` (to the previous or a named "
        "revision), now or armed to fire when a Prometheus condition holds after a new rollout, "
        "and track the rollout to completion."
    ),
    columns=(
        Column("Phase", ".status.phase"),
        Column("Targets", ".status.targetsSummary", description="deployment from→to revision"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
        Column("Completed", ".status.completedAt", type="date", priority=1),
    ),
)
