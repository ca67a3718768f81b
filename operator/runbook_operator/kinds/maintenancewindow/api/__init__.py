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

from typing import Any

from ....core import gitops
from ....core.resource import Column, Resource
from .clusterpolicy import MAINTENANCE_POLICY, MaintenancePolicySpec, MinimumApprovals
from .spec import (
    TRANSITION_RULES,
    Approval,
    ApprovalRule,
    BackupRule,
    Emergency,
    HealthCheck,
    HttpCheck,
    MaintenanceMode,
    MaintenanceWindowSpec,
    Matcher,
    Policy,
    PrometheusCheck,
    RollbackPlanRule,
    ScaleDownTarget,
    SilenceSpec,
)
from .status import (
    ApprovalRecord,
    ContainerImage,
    EndingReason,
    FlagOriginal,
    MaintenanceWindowStatus,
    OccurrenceRecord,
    Originals,
    ReplicasOriginal,
    RestartOriginal,
    RollbackEntry,
    SilenceStatus,
    StepRecord,
    WindowPhase,
)

__all__ = [
    "MAINTENANCE_POLICY",
    "MAINTENANCE_WINDOW",
    "Approval",
    "ApprovalRecord",
    "ApprovalRule",
    "BackupRule",
    "ContainerImage",
    "Emergency",
    "EndingReason",
    "FlagOriginal",
    "HealthCheck",
    "HttpCheck",
    "MaintenanceMode",
    "MaintenancePolicySpec",
    "MaintenanceWindowSpec",
    "MaintenanceWindowStatus",
    "Matcher",
    "MinimumApprovals",
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


def _targets(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The maintenance flag's ConfigMap, the Deployments that read it, those scaled down."""
    mode = spec.get("maintenanceMode")
    out: list[tuple[str, str]] = []
    if isinstance(mode, dict):
        out.append(("ConfigMap", str(mode.get("configMap") or "frontend-config")))
        out += gitops.listed(mode, "restart")
    return out + gitops.listed(spec, "scaleDown")


MAINTENANCE_WINDOW = Resource(
    kind="MaintenanceWindow",
    plural="maintenancewindows",
    short_names=("mw", "mwin"),
    spec=MaintenanceWindowSpec,
    status=MaintenanceWindowStatus,
    targets=_targets,
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
