"""MaintenanceWindow: the runbook's "Maintenance Procedures", with its checklist enforced.

The runbook says: announce 24 h ahead, take a backup, get approvals, prepare a
rollback plan, silence alerts; then set MAINTENANCE_MODE in frontend-config,
restart the frontend, scale the backend down; afterwards undo it all. This
kind writes that down once. The operator refuses to start a window whose
checklist is unmet (phase Blocked, with the reason), records every original
value in status before it changes anything, and puts them back at the end,
on cancel, or when the object is deleted.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, Field

from .common import (
    ApiModel,
    Comparison,
    CronSchedule,
    DeploymentRef,
    GoDuration,
    ObjectName,
    StatusBase,
    cel,
)
from .resource import Column, Resource

__all__ = [
    "MAINTENANCE_WINDOW",
    "Approval",
    "ApprovalRule",
    "BackupRule",
    "ContainerImage",
    "Emergency",
    "EndingReason",
    "FlagOriginal",
    "HealthCheck",
    "HttpCheck",
    "MaintenanceMode",
    "MaintenanceWindowSpec",
    "MaintenanceWindowStatus",
    "Matcher",
    "OccurrenceRecord",
    "Originals",
    "Policy",
    "PrometheusCheck",
    "ReplicasOriginal",
    "RestartOriginal",
    "RollbackEntry",
    "RollbackPlanRule",
    "ScaleDownTarget",
    "SilenceSpec",
    "SilenceStatus",
    "StepRecord",
    "WindowPhase",
]

_HTTP_URL = r"^https?://[^\s]+$"
_NOT_BLANK = r"\S"


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"{name!r} is not an IANA time zone like Europe/Berlin") from exc
    return name


TimeZone = Annotated[
    str,
    AfterValidator(_known_time_zone),
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"),
]
"""An IANA time zone name such as Europe/Berlin or America/New_York."""

Url = Annotated[str, Field(max_length=2048, pattern=_HTTP_URL)]
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


class HttpCheck(ApiModel):
    """An HTTP GET that must answer with the expected status."""

    url: Url
    """The URL to GET, e.g. http://mail-score-frontend/healthz."""
    expected_status: Annotated[int, Field(ge=100, le=599)] | None = None
    """The status code wanted. Default: any 2xx."""


class PrometheusCheck(ApiModel):
    """A PromQL query whose value must compare true with the threshold."""

    url: Url | None = None
    """Prometheus base URL. Default: the operator's RUNBOOK_PROMETHEUS_URL."""
    query: Annotated[str, Field(min_length=1, max_length=4096)]
    """PromQL returning one series, e.g. the 5xx ratio of the frontend."""
    comparison: Comparison = Comparison.LESS
    """How the value is compared with the threshold; healthy when the comparison holds."""
    threshold: float
    """The value compared with the query's result."""


class HealthCheck(ApiModel):
    """What must hold after the originals are back, before the window is Ready."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.http) != has(self.prometheus)",
                    "give exactly one of http or prometheus",
                )
            ]
        }
    }

    http: HttpCheck | None = None
    """Healthy when this URL answers as expected."""
    prometheus: PrometheusCheck | None = None
    """Healthy when this query compares true."""
    timeout: GoDuration = "5m"
    """How long to keep trying before the window is marked Failed."""


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
                    "!has(self.approvers) || size(self.approvers) == 0 "
                    "|| self.required <= size(self.approvers)",
                    "required approvals cannot exceed the number of named approvers",
                )
            ]
        }
    }

    required: Annotated[int, Field(ge=1, le=20)] = 1
    """How many distinct approvals are needed."""
    approvers: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=253)]],
        Field(max_length=50, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = Field(default_factory=list)
    """Who may approve. Empty: anyone. Approvals by others are reported and not counted."""


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
    """One approval, recorded on the object (e.g. `kubectl patch` by the approver)."""

    approver: Annotated[str, Field(min_length=1, max_length=253)]
    """Who approves; counted when listed in policy.approvals.approvers (or when that is empty)."""
    comment: Text | None = None
    """Anything the approver wants on record."""


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
    last_occurrence: OccurrenceRecord | None = None
    """How the previous occurrence of a recurring window ended."""


MAINTENANCE_WINDOW = Resource(
    kind="MaintenanceWindow",
    plural="maintenancewindows",
    short_names=("mw", "mwin"),
    spec=MaintenanceWindowSpec,
    status=MaintenanceWindowStatus,
    description=(
        "A maintenance window of the runbook: its checklist (notice, fresh backup, approvals, "
        "rollback plan) enforced before the start; maintenance flag, restarts, scale-down and "
        "alert silence applied at the start; every original put back and verified at the end."
    ),
    columns=(
        Column("Phase", ".status.phase"),
        Column("Start", ".status.nextStart", description="Start of the current or next window"),
        Column("End", ".status.nextEnd", description="End of the current or next window"),
        Column(
            "Reason",
            ".status.conditions[?(@.type=='Ready')].reason",
            description="The step in progress, or why it is not Ready",
        ),
        Column("Message", ".status.conditions[?(@.type=='Ready')].message", priority=1),
    ),
    spec_rules=TRANSITION_RULES,
)
