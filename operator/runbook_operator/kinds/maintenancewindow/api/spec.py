"""MaintenanceWindow's spec: when, the checklist, and what the window does.

The runbook says: announce 24 h ahead, take a backup, get approvals, prepare a
rollback plan, silence alerts; then set MAINTENANCE_MODE in frontend-config,
restart the frontend, scale the backend down; afterwards undo it all. This
spec writes that down once; its validation is the API server's (CEL) and the
same in Python.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, Field

from ....core.fields import (
    CronSchedule,
    DeploymentRef,
    GoDuration,
    ObjectName,
    TimeZone,
)
from ....core.health import HealthCheck, HttpCheck, PrometheusCheck, Url
from ....core.model import ApiModel, cel

__all__ = [
    "TRANSITION_RULES",
    "Approval",
    "ApprovalRule",
    "BackupRule",
    "Emergency",
    "HealthCheck",
    "HttpCheck",
    "MaintenanceMode",
    "MaintenanceWindowSpec",
    "Matcher",
    "Policy",
    "PrometheusCheck",
    "RollbackPlanRule",
    "ScaleDownTarget",
    "SilenceSpec",
]

_NOT_BLANK = r"\S"

Text = Annotated[str, Field(max_length=1024)]


# --- spec ------------------------------------------------------------------


class Matcher(ApiModel):
    """One Alertmanager silence matcher (label name, value, how to compare)."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    """Label name, e.g. namespace or alertname."""
    value: Annotated[str, Field(max_length=1024)]
    """Label value, or a regular expression when isRegex is true."""
    is_regex: bool = False
    """Match value as a regular expression."""
    is_equal: bool = True
    """false inverts the match (!= or !~)."""


class SilenceSpec(ApiModel):
    """Silence alerts in Alertmanager for the window; the silence is expired at its end."""

    url: Url
    """Alertmanager base URL, e.g. http://alertmanager.monitoring:9093."""
    matchers: Annotated[list[Matcher], Field(min_length=1, max_length=20)]
    """Which alerts to silence; all matchers must match."""
    comment: Text | None = None
    """Extra text for the silence's comment (the window's name and reason are always there)."""


class MaintenanceMode(ApiModel):
    """The maintenance flag in a ConfigMap, and the Deployments that read it."""

    config_map: ObjectName = "frontend-config"
    """The ConfigMap that holds the flag."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = (
        "MAINTENANCE_MODE"
    )
    """The key of the flag in the ConfigMap."""
    value: Annotated[str, Field(max_length=1024)] = "true"
    """The value during the window. The original value is saved and put back."""
    restart: Annotated[
        list[DeploymentRef],
        Field(
            max_length=20,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = Field(default_factory=list)
    """Deployments that read the flag: rolled (like `kubectl rollout restart`) after it is set,
    and again after it is put back, so their pods see the change."""


class ScaleDownTarget(ApiModel):
    """A Deployment and its size during the window."""

    name: ObjectName
    """Name of the Deployment."""
    replicas: Annotated[int, Field(ge=0, le=1000)]
    """Replicas during the window. Under an HPA its minReplicas and maxReplicas are pinned to
    this value (0 leaves the HPA alone: an HPA does not act on a Deployment at zero)."""


class BackupRule(ApiModel):
    """A successful DatabaseBackup must exist, completed shortly before the start."""

    name: ObjectName
    """A DatabaseBackup (one-shot), or a scheduled one whose runs (children) count too."""
    max_age: GoDuration = "24h"
    """The backup must have completed no more than this long before the start."""


class ApprovalRule(ApiModel):
    """Approvals that must be recorded in spec.approvals before the start."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "(has(self.approvers) && size(self.approvers) > 0) "
                    "|| (has(self.approverGroups) && size(self.approverGroups) > 0)",
                    "name who may approve: approvers (user names) or approverGroups "
                    "(groups), as the API server authenticates them",
                ),
                cel(
                    "!has(self.approvers) || size(self.approvers) == 0 "
                    "|| (has(self.approverGroups) && size(self.approverGroups) > 0) "
                    "|| self.required <= size(self.approvers)",
                    "required approvals cannot exceed the number of named approvers",
                ),
            ]
        }
    }

    required: Annotated[int, Field(ge=1, le=20)] = 1
    """How many distinct approvals are needed."""
    approvers: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=253)]],
        Field(max_length=50, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = Field(default_factory=list)
    """User names who may approve, as the API server authenticates them."""
    approver_groups: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=253)]],
        Field(max_length=50, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = Field(default_factory=list)
    """Groups whose members may approve (the groups the API server gave the approver when
    they approved). Approvals by anyone else are reported and not counted."""
    allow_self_approval: bool = False
    """Whether the requester's own approval counts (it never does unless this is true)."""


class RollbackPlanRule(ApiModel):
    """Deployments whose revision and images are recorded at the start."""

    deployments: Annotated[
        list[DeploymentRef],
        Field(
            min_length=1,
            max_length=20,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ]
    """They must exist at the start; `status.rollbackPlan` then says what to roll back to."""


class Policy(ApiModel):
    """The pre-maintenance checklist. Every rule is checked continuously before the start and
    reported as a condition; a window whose rules are unmet at its start does not start."""

    minimum_notice: GoDuration = "24h"
    """How long before the start the window must have been created. An emergency window
    (spec.emergency) skips this rule, and that is recorded."""
    backup: BackupRule | None = None
    """Require a fresh successful DatabaseBackup."""
    approvals: ApprovalRule | None = None
    """Require approvals recorded in spec.approvals."""
    rollback_plan: RollbackPlanRule | None = None
    """Require (and record at start) the revisions and images of these Deployments."""


class Approval(ApiModel):
    """One approval, added by the approver themselves (`kubectl patch --type=json`, adding
    an entry to spec.approvals). The admission policy refuses an approval in someone else's
    name and stamps the approver's groups and the plan revision it approves."""

    approver: Annotated[str, Field(min_length=1, max_length=253)]
    """Your user name, exactly as the API server authenticates you."""
    comment: Text | None = None
    """Anything the approver wants on record."""
    groups: Annotated[str, Field(max_length=8192)] | None = None
    """Written by admission: the approver's groups when they approved, comma-separated."""
    plan_revision: Annotated[int, Field(ge=1)] | None = None
    """Written by admission: the revision of the plan (annotation
    ops.mailscore.com/plan-revision) this approval was given for. An edit of what the
    window will do raises the revision, which voids the approval."""


class Emergency(ApiModel):
    """Marks an emergency window: the minimum-notice rule is waived, and that is recorded."""

    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=_NOT_BLANK)]
    """Why this cannot wait for the notice period: the incident, in words."""


_SPEC_RULES: list[Any] = [
    cel(
        "has(self.start) != has(self.schedule)",
        "set either start (a one-off window) or schedule (a recurring one), not both",
    ),
    cel(
        "!has(self.timeZone) || has(self.schedule)",
        "timeZone applies to schedule only; start already carries its UTC offset",
    ),
    cel(
        "!has(self.emergency) || has(self.start)",
        "an emergency window is a one-off: give it a start, not a schedule",
    ),
]


def _unchanged(field: str, what: str) -> dict[str, str]:
    return cel(
        f"has(self.{field}) == has(oldSelf.{field}) "
        f"&& (!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"{what} cannot be changed once set: cancel this window and create a new one "
        "(the notice period then starts again)",
    )


TRANSITION_RULES = (
    _unchanged("start", "start"),
    _unchanged("schedule", "schedule"),
    _unchanged("timeZone", "timeZone"),
    cel(
        "!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",
        "a cancelled window cannot be resumed: create a new one",
    ),
)
"""Rules comparing the new spec with the old one (they need `oldSelf`, so they sit on .spec)."""


class MaintenanceWindowSpec(ApiModel):
    """When the window is, what it requires, and what it does to the application."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": _SPEC_RULES}}

    start: AwareDatetime | None = None
    """A one-off window's start, RFC 3339 with offset, e.g. 2025-03-02T02:00:00+01:00."""
    schedule: CronSchedule | None = None
    """A recurring window: cron expression of its starts, in timeZone, e.g. '0 2 * * 0'."""
    time_zone: TimeZone | None = None
    """IANA time zone of schedule, e.g. Europe/Berlin. Default: UTC. A start that falls in a
    daylight-saving gap moves forward by the gap; a repeated wall time starts once (the first)."""
    duration: GoDuration
    """How long the window lasts (elapsed time, also across daylight-saving changes), e.g. 2h.
    May be changed while Active: the end moves."""
    starting_deadline: GoDuration = "5m"
    """How late the window may still start when something is in the way at its start
    (a Deployment held by another operation, the operator not running). Past it: Blocked."""
    rollout_timeout: GoDuration = "10m"
    """How long a rollout or a scale-down may take before the window is marked Failed."""
    reason: Text | None = None
    """What the maintenance is for; shown in events and in the Alertmanager silence."""
    emergency: Emergency | None = None
    """An emergency one-off window: skips the minimum-notice rule, with a written reason."""
    policy: Policy = Field(default_factory=Policy)
    """The pre-maintenance checklist enforced before the start."""
    approvals: Annotated[
        list[Approval],
        Field(
            max_length=50,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["approver"],
            },
        ),
    ] = Field(default_factory=list)
    """Approvals recorded on the object, one per approver."""
    maintenance_mode: MaintenanceMode | None = None
    """Set the maintenance flag for the window and restart the Deployments that read it."""
    scale_down: Annotated[
        list[ScaleDownTarget],
        Field(
            max_length=20,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = Field(default_factory=list)
    """Deployments to scale for the window (through their HPA when one targets them)."""
    silence: SilenceSpec | None = None
    """Silence alerts in Alertmanager for the window."""
    health_check: HealthCheck | None = None
    """Verified after the originals are back, before the window counts as Completed."""
    cancel: bool = False
    """true ends the window now (or keeps it from starting). Deleting the object also ends it."""
