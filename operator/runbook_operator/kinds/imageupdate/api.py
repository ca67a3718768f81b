"""ImageUpdate: the runbook's emergency security patch (`kubectl set image`) as an object.

    kubectl set image deployment/mail-score-backend backend=...:security-patch
    kubectl rollout status deployment/mail-score-backend

An ImageUpdate sets one or more container images of a Deployment (init containers
included, tags or digests), exactly as `kubectl set image` does, after recording the
images and the revision they replace. It follows the rollout to its end (the
Deployment's progress deadline and `timeout`), then the optional health check. When
the rollout or the check fails it returns to the recorded revision with the semantics
of `kubectl rollout undo` (onFailure: Rollback, the default) and ends Failed with
`rolledBack: true`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import Field

from ...core.conditions import StatusBase
from ...core.fields import GoDuration, ObjectName
from ...core.health import HealthCheck
from ...core.model import ApiModel, cel
from ...core.resource import Column, Resource

__all__ = [
    "IMAGE_UPDATE",
    "ContainerImage",
    "ImagePhase",
    "ImageUpdateSpec",
    "ImageUpdateStatus",
    "OnFailure",
    "PreviousImage",
]

MAX_IMAGES = 20

ContainerName = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
"""A container's name (a DNS label, as Kubernetes requires)."""

Image = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")]
"""An image reference: name[:tag][@sha256:digest], without spaces."""


class ContainerImage(ApiModel):
    """One container and the image it gets (`kubectl set image ... container=image`)."""

    container: ContainerName
    """The container's name; init containers count too."""
    image: Image
    """The new image, e.g. registry.mailscore.com/backend:1.4.3 or ...@sha256:<digest>."""


class OnFailure(StrEnum):
    ROLLBACK = "Rollback"
    """Return to the recorded revision, like `kubectl rollout undo --to-revision`."""
    KEEP = "Keep"
    """Leave the new images in place for someone to look at."""


class ImageUpdateSpec(ApiModel):
    """Set container images of a Deployment like `kubectl set image`, and see it healthy."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "self.images.all(i, self.images.exists_one(j, j.container == i.container))",
                    "each container may be listed only once in images",
                ),
                cel(
                    "self == oldSelf",
                    "an ImageUpdate cannot be changed once created; create a new one instead",
                ),
            ]
        }
    }

    deployment: ObjectName
    """The Deployment, in this namespace."""
    images: Annotated[list[ContainerImage], Field(min_length=1, max_length=MAX_IMAGES)]
    """The containers to change and their new images."""
    timeout: GoDuration = "10m"
    """How long the rollout may take (the Deployment's progressDeadlineSeconds counts too,
    whichever comes first)."""
    health_check: HealthCheck | None = None
    """Must pass after the rollout, before the ImageUpdate is Ready (HTTP or Prometheus)."""
    on_failure: OnFailure = OnFailure.ROLLBACK
    """Rollback (default: back to the recorded revision) or Keep."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why: the advisory or the incident, for the record."""


class ImagePhase(StrEnum):
    PENDING = "Pending"
    """Accepted; waiting for the Deployment another operation holds."""
    UPDATING = "Updating"
    """The images are recorded and set; the rollout is under way."""
    VERIFYING = "Verifying"
    """Rolled out; the health check is being asked."""
    ROLLING_BACK = "RollingBack"
    """The rollout or the check failed; returning to the recorded revision."""
    COMPLETED = "Completed"
    """The new images rolled out and the health check passed."""
    FAILED = "Failed"
    """The rollout or the health check failed (see rolledBack)."""
    REFUSED = "Refused"
    """Nothing was changed: the Deployment or a container is missing, or it is paused."""
    SKIPPED = "Skipped"
    """Not run: the same run (spec.runId, or the spec of an object Git manages) ran
    already under this name; created again, most likely by Git."""


class PreviousImage(ApiModel):
    """A container's image before the change."""

    container: str
    """The container."""
    image: str
    """Its image before."""
    init: bool = False
    """An init container."""


class ImageUpdateStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset(
        {ImagePhase.COMPLETED, ImagePhase.FAILED, ImagePhase.REFUSED, ImagePhase.SKIPPED}
    )

    phase: ImagePhase | None = None
    """Pending, Updating, Verifying, RollingBack, Completed, Failed or Refused."""
    previous: list[PreviousImage] = Field(default_factory=list)
    """The images replaced, recorded before the change."""
    previous_revision: int | None = None
    """The Deployment's revision before the change: what a rollback returns to."""
    previous_replica_set: str | None = None
    """The ReplicaSet of that revision (its name stays when its revision number moves)."""
    new_revision: int | None = None
    """The revision the new images rolled out as."""
    started_at: datetime | None = None
    """When the images were set."""
    rolled_out_at: datetime | None = None
    """When the rollout finished (the health check's clock starts here)."""
    failure: str | None = None
    """Why it failed, in words (kept while rolling back)."""
    failure_reason: str | None = None
    """RolloutFailed or Unhealthy."""
    rollback_started_at: datetime | None = None
    """When the undo to previousRevision was sent."""
    rolled_back: bool = False
    """The Deployment is back at previousRevision's template."""
    completed_at: datetime | None = None
    """When it ended (Completed, Failed or Refused)."""
    health: str | None = None
    """The health check's last answer."""
    images_summary: str | None = None
    """The change in one line, for `kubectl get`."""


def _targets(spec: dict[str, Any]) -> list[tuple[str, str]]:
    name = spec.get("deployment")
    return [("Deployment", name)] if isinstance(name, str) else []


IMAGE_UPDATE = Resource(
    kind="ImageUpdate",
    plural="imageupdates",
    short_names=("imgup",),
    spec=ImageUpdateSpec,
    status=ImageUpdateStatus,
    one_shot=True,
    targets=_targets,
    description=(
        "Set container images of a Deployment exactly like `kubectl set image`, after "
        "recording the images and revision they replace; follow the rollout and the "
        "health check, and on failure return to the recorded revision like "
        "`kubectl rollout undo`."
    ),
    columns=(
        Column("Deployment", ".spec.deployment"),
        Column("Phase", ".status.phase"),
        Column("Images", ".status.imagesSummary"),
        Column("RolledBack", ".status.rolledBack", type="boolean"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
        Column("Message", ".status.conditions[?(@.type=='Ready')].message", priority=1),
    ),
)
