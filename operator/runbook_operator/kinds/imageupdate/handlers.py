"""ImageUpdate on the operation core: the hold, the recorded originals, the change, the undo.

A pass takes the hold, records the images and revision it replaces, then sets the new
images; each later step is written to status before the change it records. What is left
to wait for comes as watch events of the Deployment (the rollout's progress), or from the
clock (the timeout, the health check every tick). The failpoint `imageupdate-<phase>`
stops the operator right after a status of that phase is written, for the crash tests.
"""

from __future__ import annotations

from typing import Any

from ...adapters.kube import Conflict
from ...core import failpoints
from ...core.context import Pass
from ...core.health import HealthCheck
from ...core.holding import (
    acquire_hold,
    clean_replicaset_holds,
    let_go_unless_recorded,
    release_hold,
)
from ...core.kind import Result, Watch
from ...core.reading import observe_deployment
from ...core.spec import InvalidSpec
from ...core.stepping import SteppingKind
from . import logic
from .api import IMAGE_UPDATE, ImageUpdateSpec, ImageUpdateStatus

__all__ = ["ImageUpdateKind"]

DEPLOYMENT = "Deployment"
MAX_STEPS = 12
"""Steps one pass may take: record and set, follow, verify, roll back, follow, end."""


def _name(spec: ImageUpdateSpec | None, obj: dict[str, Any]) -> str | None:
    """The Deployment, from the spec (immutable), read raw when it cannot be parsed."""
    if spec is not None:
        return spec.deployment
    raw = obj.get("spec")
    value = raw.get("deployment") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


class ImageUpdateKind(SteppingKind[ImageUpdateSpec, ImageUpdateStatus, logic.Plan]):
    resource = IMAGE_UPDATE
    finalizer_beside = True  # its first change comes after a status write; before, a hold
    spec_model = ImageUpdateSpec
    max_steps = MAX_STEPS

    def decide(self, ctx: Pass, spec: ImageUpdateSpec, status: ImageUpdateStatus) -> logic.Plan:
        seen = observe_deployment(ctx.kube, ctx.namespace, spec.deployment)
        return logic.reconcile(
            spec, status, seen, holder=self.holder(ctx), generation=ctx.generation, now=ctx.now
        )

    after_probe = staticmethod(logic.after_probe)
    wake_at = staticmethod(logic.wake_at)

    def health_check(self, spec: ImageUpdateSpec) -> HealthCheck | None:
        return spec.health_check

    def watching(self, spec: ImageUpdateSpec, status: ImageUpdateStatus) -> frozenset[Watch]:
        return frozenset({(DEPLOYMENT, spec.deployment)})

    def act(self, ctx: Pass, spec: ImageUpdateSpec, plan: logic.Plan) -> bool:
        """The hold, then the status, then the change, the release and the events."""
        holder = self.holder(ctx)
        name = spec.deployment
        taken: list[tuple[str, str]] = []
        if plan.acquire:
            other = acquire_hold(ctx.kube, DEPLOYMENT, ctx.namespace, name, holder, ctx.instance)
            if other is None:
                taken.append((DEPLOYMENT, name))
            else:
                before: ImageUpdateStatus = ctx.status()
                plan = logic.held_plan(
                    spec,
                    before,
                    f"{name} is held by {other}",
                    generation=ctx.generation,
                    now=ctx.now,
                )
        if plan.release and plan.status.is_done():
            # Released before the end is written: a terminal phase means let go. A crash in
            # between ends again on the next pass, with nothing left to change.
            self._release(ctx, name, holder)
        unrecorded = taken if ctx.status().phase is None else []
        with let_go_unless_recorded(ctx.kube, ctx.namespace, holder, unrecorded):
            wrote = ctx.write(plan.status)
        if wrote and plan.status.phase is not None:
            failpoints.hit(f"imageupdate-{plan.status.phase.value}")
        try:
            if plan.set_images is not None:
                ctx.kube.patch_deployment(ctx.namespace, name, plan.set_images)
            if plan.undo is not None:
                ctx.kube.json_patch_deployment(ctx.namespace, name, plan.undo)
        except Conflict:
            return True  # it changed since it was read: decide again on what it is now
        if plan.release and not plan.status.is_done():
            self._release(ctx, name, holder)
        ctx.recorder.events(plan.events)
        return wrote or plan.set_images is not None or plan.undo is not None

    @staticmethod
    def _release(ctx: Pass, name: str, holder: str) -> None:
        release_hold(ctx.kube, DEPLOYMENT, ctx.namespace, name, holder)
        clean_replicaset_holds(ctx.kube, ctx.namespace, name, holder)

    def finalize(self, ctx: Pass) -> Result | None:
        """Release the hold. A deleted ImageUpdate leaves the images as they are: deleting
        the record of a security patch must not undo the patch."""
        try:
            spec: ImageUpdateSpec | None = ctx.spec(ImageUpdateSpec)
        except InvalidSpec:
            spec = None
        name = _name(spec, ctx.obj)
        if name is not None:
            self._release(ctx, name, self.holder(ctx))
        return None
