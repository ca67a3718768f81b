"""Restart on the operation core: holds, the recorded stamp, the restarts, the rollouts.

A pass takes the holds (all or none), records the restart stamp and every original
before the first patch, then restarts what is due and follows the rollouts, writing
each step to status before the patch it records. What is left to wait for comes as
watch events of the workloads (a rollout's progress), or from the clock (a timeout,
the health check every tick). The failpoint `restart-<phase>` stops the operator
right after a status of that phase is written, for the crash tests.
"""

from __future__ import annotations

from ...adapters.kube import NotFound
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
from ...core.reading import current_replica_set
from ...core.spec import InvalidSpec
from ...core.stepping import SteppingKind
from . import logic
from .api import RESTART, RestartPhase, RestartSpec, RestartStatus

__all__ = ["RestartKind"]

MAX_STEPS = 3 * 20
"""Steps one pass may take (a few per target)."""


def _current_replica_set(ctx: Pass, deployment: dict[str, object]) -> str | None:
    rs = current_replica_set(ctx.kube, ctx.namespace, dict(deployment))
    return None if rs is None else str(rs["metadata"].get("name"))


def observe(ctx: Pass, keys: list[logic.Key]) -> dict[logic.Key, logic.Seen]:
    seen: dict[logic.Key, logic.Seen] = {}
    for kind, name in dict.fromkeys(keys):
        try:
            obj = ctx.kube.get_workload(kind, ctx.namespace, name)
        except NotFound:
            seen[(kind, name)] = logic.Seen(None)
            continue
        rs = _current_replica_set(ctx, obj) if kind == "Deployment" else None
        seen[(kind, name)] = logic.Seen(obj, rs)
    return seen


def _keys(spec: RestartSpec | None, status: RestartStatus) -> list[logic.Key]:
    keys = [logic.key_of(t) for t in spec.targets] if spec is not None else []
    return [*keys, *(logic.key_of(t) for t in status.targets)]


class RestartKind(SteppingKind[RestartSpec, RestartStatus, logic.Plan]):
    resource = RESTART
    finalizer_beside = True  # its first change comes after a status write; before, holds
    spec_model = RestartSpec
    max_steps = MAX_STEPS

    def decide(self, ctx: Pass, spec: RestartSpec, status: RestartStatus) -> logic.Plan:
        seen = observe(ctx, _keys(spec, status))
        return logic.reconcile(
            spec, status, seen, holder=self.holder(ctx), generation=ctx.generation, now=ctx.now
        )

    after_probe = staticmethod(logic.after_probe)
    wake_at = staticmethod(logic.wake_at)

    def health_check(self, spec: RestartSpec) -> HealthCheck | None:
        return spec.health_check

    def watching(self, spec: RestartSpec, status: RestartStatus) -> frozenset[Watch]:
        return frozenset(_keys(spec, status))

    def act(self, ctx: Pass, spec: RestartSpec, plan: logic.Plan) -> bool:
        """Holds (all or none), then the status, then the patches, releases and events."""
        holder = self.holder(ctx)
        taken: list[logic.Key] = []
        for kind, name in plan.acquire:
            other = acquire_hold(ctx.kube, kind, ctx.namespace, name, holder, ctx.instance)
            if other is not None:
                for key in taken:
                    release_hold(ctx.kube, key[0], ctx.namespace, key[1], holder)
                message = f"{name} is held by {other}; the restart starts when it is released"
                plan = logic.held_elsewhere(
                    spec=spec,
                    status=ctx.status(),
                    message=message,
                    generation=ctx.generation,
                    now=ctx.now,
                )
                break
            taken.append((kind, name))
        if plan.status.is_done():
            # Released before the end is written: Completed (or Failed) means let go. A crash
            # in between finds the rollouts done and ends again, without taking any hold.
            self._release(ctx, plan.release, holder)
        unrecorded = taken if ctx.status().phase is None else []
        with let_go_unless_recorded(ctx.kube, ctx.namespace, holder, unrecorded):
            wrote = ctx.write(plan.status)
        if wrote and plan.status.phase is not None:
            failpoints.hit(f"restart-{plan.status.phase.value}")
        stamp = plan.status.restart_stamp
        for kind, name in plan.patches:
            assert stamp is not None
            ctx.kube.patch_workload(kind, ctx.namespace, name, logic.restart_patch(stamp))
        if not plan.status.is_done():
            self._release(ctx, plan.release, holder)
        ctx.recorder.events(plan.events)
        return wrote or bool(plan.patches or plan.release)

    @staticmethod
    def _release(ctx: Pass, keys: list[logic.Key], holder: str) -> None:
        for kind, name in keys:
            release_hold(ctx.kube, kind, ctx.namespace, name, holder)
            if kind == "Deployment":
                clean_replicaset_holds(ctx.kube, ctx.namespace, name, holder)

    def finalize(self, ctx: Pass) -> Result | None:
        """Release the holds; a restart is never undone (its pods are new already)."""
        status: RestartStatus = ctx.status()
        try:
            spec: RestartSpec | None = ctx.spec(RestartSpec)
        except InvalidSpec:
            spec = None
        self._release(ctx, list(dict.fromkeys(_keys(spec, status))), self.holder(ctx))
        if status.phase == RestartPhase.RESTARTING:
            ctx.recorder.info("Deleted", "deleted while restarting; rollouts already begun go on")
        return None
