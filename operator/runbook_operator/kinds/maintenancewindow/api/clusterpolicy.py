"""MaintenancePolicy: the organisation's minimums for MaintenanceWindows, cluster-wide.

A window's own `spec.policy` is written by whoever writes the window, so on its own it
binds only those who play fair. A MaintenancePolicy is cluster-scoped: only someone
with cluster-wide RBAC creates or edits it, and it governs every window in the
namespaces its selector picks (e.g. `tier=production`: 2 approvals, 24 h notice). The
operator enforces the stricter of the window's own rule and every matching policy's,
so nothing in a window's spec can weaken it; the window's conditions name the policy
that demanded what.

It is part of the MaintenanceWindow kind (no controller acts on it, it has no status):
only windows read it, and kinds never import each other.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ....core.fields import GoDuration
from ....core.model import ApiModel, cel
from ....core.resource import Column, Resource
from ....core.selector import LabelSelector
from .status import MaintenanceWindowStatus

__all__ = ["MAINTENANCE_POLICY", "MaintenancePolicySpec", "MinimumApprovals"]

Name = Annotated[str, Field(min_length=1, max_length=253)]


class MinimumApprovals(ApiModel):
    """At least this many approvals, from these people, on every window it governs."""

    required: Annotated[int, Field(ge=1, le=20)]
    """How many distinct approvals every governed window needs at least."""
    approvers: Annotated[
        list[Name], Field(max_length=50, json_schema_extra={"x-kubernetes-list-type": "set"})
    ] = Field(default_factory=list)
    """User names whose approvals count toward this minimum. When neither this nor
    approverGroups is set, the approvers the window itself names count."""
    approver_groups: Annotated[
        list[Name], Field(max_length=50, json_schema_extra={"x-kubernetes-list-type": "set"})
    ] = Field(default_factory=list)
    """Groups whose members' approvals count toward this minimum (as the API server
    authenticated them when they approved)."""
    allow_self_approval: bool = False
    """Whether the requester's own approval counts toward this minimum (only when the
    window allows it as well)."""


class MaintenancePolicySpec(ApiModel):
    """Which namespaces, and the least every MaintenanceWindow in them must ask for."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.minimumNotice) || has(self.approvals)",
                    "a MaintenancePolicy sets a minimum: minimumNotice, approvals, or both",
                ),
            ]
        }
    }

    namespace_selector: LabelSelector = Field(default_factory=LabelSelector)
    """The namespaces it governs, by their labels, e.g. matchLabels: {tier: production}.
    Empty: every namespace."""
    minimum_notice: GoDuration | None = None
    """The least notice a governed window must give (it may ask for more)."""
    emergency_waives_notice: bool = False
    """Whether an emergency window (spec.emergency) may skip this policy's minimum notice.
    By default it may not: marking a window an emergency waives only its own notice rule.
    Approvals are never waived."""
    approvals: MinimumApprovals | None = None
    """The least approvals a governed window needs (it may ask for more)."""


MAINTENANCE_POLICY = Resource(
    kind="MaintenancePolicy",
    plural="maintenancepolicies",
    short_names=("mpol",),
    spec=MaintenancePolicySpec,
    status=MaintenanceWindowStatus,  # unused: a cluster-scoped policy has no status
    operation=False,
    cluster_scoped=True,
    description=(
        "Organisation-wide minimums for MaintenanceWindows (cluster-scoped): in the "
        "namespaces its selector picks, every window needs at least this much notice and "
        "these approvals. The stricter of a window's own policy and every matching "
        "MaintenancePolicy applies, so a window's spec cannot weaken it; the window's "
        "conditions name the policy that demanded what."
    ),
    columns=(
        Column("Namespaces", ".spec.namespaceSelector", description="Its namespaceSelector"),
        Column("Notice", ".spec.minimumNotice", description="Minimum notice"),
        Column("Approvals", ".spec.approvals.required", type="integer"),
    ),
)
