"""Rollback on the operation core: decide, record, restore, follow, release.

A pass repeats one step of the logic as long as it moves: the decision (which
ReplicaSet each Deployment goes back to, from which revision and images) is written to
status, with the holds taken, before any template is touched; then each template is
restored with the JSON patch `kubectl rollout undo` sends, guarded by the
resourceVersion the decision was made on, and the target is recorded as rolling out
right after. A crash between the two finds the template already restored and says so
(FoundRestored); it never restores twice. One Deployment nobody holds takes its hold in
that patch instead of before the decision (logic.hold_with_restore): one round trip
less before the restore. The rollouts are then followed through watch
events of the Deployments; an armed Rollback asks Prometheus every tick while a window
is open. The failpoint `rollback-<phase>` stops the operator right after a status of
that phase is written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta

from ...adapters.kube import Conflict, NotFound
from ...core import failpoints, fanout, sampling
from ...core.context import Pass
from ...core.gate import Problem, Sample
from ...core.holding import (
    acquire_hold,
    clean_replicaset_holds,
    let_go_unless_recorded,
    release_hold,
)
from ...core.kind import Kind, Result, due_in
from ...core.names import holder_id
from ...core.ports import Obj
from ...core.reading import observe_deployment
from ...core.spec import InvalidSpec
from . import logic
from .api import ROLLBACK, RollbackPhase, RollbackSpec, RollbackStatus, TargetState

__all__ = ["RollbackKind"]

MAX_STEPS = 3 * 20
DEPLOYMENT = "Deployment"
Sampler = Callable[[str, str], Sample]


class Seen:
    """What one pass has read of each target (the Deployment and its ReplicaSets), kept
    current with our own patches' answers.

    Every step of a pass read each target again, and taking a hold read the Deployment
    once more: between the decision and the restored template, a Rollback waited for
    two reads of the Deployment and one of its ReplicaSets it already had. The hold's
    answer is the Deployment as the template patch must find it (its resourceVersion
    guards that patch, so a copy gone stale is refused, never overwritten); after the
    template patch or a release the target is read again, since the Deployment
    controller now acts on it.

    A decision not made yet starts from the operator's watch cache (core.watchcache):
    the GET of the Deployment was a round trip before every first restore. A copy may be
    behind by the events in flight. A restore or hold decided on it is refused by its
    resourceVersion guard and decided again on a fresh read; a decision that would end
    the Rollback with no change (already at the revision, refused) is never taken on a
    copy: `confirm()` drops the copies, and the step is decided again on fresh reads.
    Once a decision is recorded, passes read the Deployments from the API server as
    before: the first decision is what stands between a new Rollback and its restore."""

    def __init__(self, ctx: Pass, names: list[str], *, cached: bool = False) -> None:
        self.ctx = ctx
        known = {n: ctx.cache.workload(DEPLOYMENT, ctx.namespace, n) for n in names if cached}
        self.copies = {n for n, d in known.items() if d is not None}
        reads = [
            functools.partial(observe_deployment, ctx.kube, ctx.namespace, n, known.get(n))
            for n in names
        ]
        self.observed: dict[str, logic.Observed] = {}
        for name, observed in zip(names, fanout.gather(reads), strict=True):  # side by side
            self._keep(name, observed)

    def confirm(self) -> bool:
        """Drop what came from the watch cache, to be read fresh; whether anything did."""
        copies, self.copies = self.copies, set()
        for name in copies:
            self.forget(name)
        return bool(copies)

    def get(self, name: str) -> logic.Observed:
        if name not in self.observed:
            self._keep(name, observe_deployment(self.ctx.kube, self.ctx.namespace, name))
        return self.observed[name]

    def _keep(self, name: str, observed: logic.Observed) -> None:
        self.observed[name] = observed
        if observed.deployment is not None:  # its GitOps owner, without reading it again
            self.ctx.read[(DEPLOYMENT, name)] = observed.deployment

    def held(self, name: str, deployment: Obj) -> None:
        self.observed[name] = logic.Observed(deployment, self.get(name).replica_sets)

    def forget(self, name: str) -> None:
        self.observed.pop(name, None)
        self.copies.discard(name)


def _names(spec: RollbackSpec | None, status: RollbackStatus) -> list[str]:
    names = [t.name for t in spec.targets] if spec is not None else []
    return list(dict.fromkeys([*names, *(t.name for t in status.targets)]))


class RollbackKind(Kind):
    resource = ROLLBACK
    finalizer_beside = True  # its first change comes after a status write; before, holds

    def __init__(self, sample: Sampler = sampling.sample) -> None:
        self.sample = sample

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(RollbackSpec)
        holder = holder_id(ROLLBACK.kind, ctx.name, ctx.uid)
        asked = False
        # An armed Rollback decides when Prometheus says so, on reads of that moment.
        first = spec.trigger is None and all(
            t.state == TargetState.PENDING for t in ctx.status().targets
        )
        seen = Seen(ctx, [t.name for t in spec.targets], cached=first)
        told: list[logic.Event] = []
        try:
            for _ in range(MAX_STEPS):
                status: RollbackStatus = ctx.status()
                now = ctx.tick()
                observed = {t.name: seen.get(t.name) for t in spec.targets}
                plan = logic.reconcile(
                    spec,
                    status,
                    observed,
                    holder=holder,
                    generation=ctx.generation,
                    now=now,
                    instance=ctx.instance,
                )
                if plan.evaluate:
                    if asked:
                        break  # Prometheus is asked once per pass (and again at the next tick)
                    asked = True
                    plan = self._evaluate(ctx, spec, plan, now)
                if plan.status is not None and plan.status.is_done() and seen.confirm():
                    continue  # an end with no change is decided on fresh reads only
                if not self._act(ctx, plan, status, seen, holder, told):
                    break
        finally:
            # The steps' events, in order, once the pass has made its changes: posted
            # between steps, each was a round trip ahead of the template's restore.
            ctx.recorder.events(told)
        return self._result(ctx, spec)

    def _evaluate(
        self, ctx: Pass, spec: RollbackSpec, plan: logic.Plan, now: datetime
    ) -> logic.Plan:
        assert plan.status is not None and spec.trigger is not None
        url = spec.trigger.url or ctx.settings.prometheus_url
        sample = (
            self.sample(url, spec.trigger.query)
            if url
            else Sample.failed(
                Problem.BAD_QUERY, "no Prometheus to ask: set trigger.url or RUNBOOK_PROMETHEUS_URL"
            )
        )
        after = logic.after_trigger(
            spec, plan.status, plan.evaluate, sample, generation=ctx.generation, now=now
        )
        return logic.Plan(after.status, plan.events + after.events)

    def _act(
        self,
        ctx: Pass,
        plan: logic.Plan,
        before: RollbackStatus,
        seen: Seen,
        holder: str,
        told: list[logic.Event],
    ) -> bool:
        """One step's I/O in its order (its events into `told`); whether anything happened."""
        taken: list[str] = []
        if plan.hold and not logic.hold_with_restore(plan, seen.observed):
            plan = self._hold(ctx, plan, before, holder, seen)
            recorded = {t.name for t in before.targets}
            taken = [t for t in plan.hold if t not in recorded]
        if plan.apply is not None:
            target, operations = plan.apply
            seen.forget(target)  # the Deployment controller acts on it from now on
            try:
                ctx.kube.json_patch_deployment(ctx.namespace, target, operations)
            except Conflict:
                return True  # it changed since it was read: decide again on what it is now
            except NotFound:  # deleted since it was read (or since the watch said so)
                ctx.cache.forget(DEPLOYMENT, ctx.namespace, target)
                return True
        for target in plan.release:
            self._release(ctx, target, holder)
            seen.forget(target)
        unrecorded = [(DEPLOYMENT, target) for target in taken]
        with let_go_unless_recorded(ctx.kube, ctx.namespace, holder, unrecorded):
            wrote = plan.status is not None and ctx.write(plan.status)
        if wrote and plan.status is not None and plan.status.phase is not None:
            failpoints.hit(f"rollback-{plan.status.phase.value}")
        told.extend(plan.events)
        return wrote or plan.apply is not None or bool(plan.release)

    @staticmethod
    def _hold(
        ctx: Pass, plan: logic.Plan, before: RollbackStatus, holder: str, seen: Seen
    ) -> logic.Plan:
        """Every hold or none: a Rollback never starts on half of its targets."""
        taken: list[str] = []
        for target in sorted(plan.hold):
            try:
                other = acquire_hold(
                    ctx.kube,
                    DEPLOYMENT,
                    ctx.namespace,
                    target,
                    holder,
                    ctx.instance,
                    known=seen.get(target).deployment,
                    seen=functools.partial(seen.held, target),
                )
            except NotFound:
                other = None
                plan = logic.Plan(None)  # gone meanwhile: decide again
                ctx.cache.forget(DEPLOYMENT, ctx.namespace, target)
            if other is not None or plan.status is None:
                seen.forget(target)
                for mine in taken:
                    release_hold(ctx.kube, DEPLOYMENT, ctx.namespace, mine, holder)
                    seen.forget(mine)
                if other is None:
                    return plan
                return logic.held(before, target, other, generation=ctx.generation, now=ctx.now)
            taken.append(target)
        return plan

    @staticmethod
    def _release(ctx: Pass, target: str, holder: str) -> None:
        """Our hold off the Deployment, and off its ReplicaSets (the controller copied it)."""
        release_hold(ctx.kube, DEPLOYMENT, ctx.namespace, target, holder)
        clean_replicaset_holds(ctx.kube, ctx.namespace, target, holder)

    def _result(self, ctx: Pass, spec: RollbackSpec) -> Result:
        status: RollbackStatus = ctx.status()
        if status.is_done():
            return Result()
        watch = frozenset((DEPLOYMENT, name) for name in _names(spec, status))
        return Result(requeue_after=due_in(_wake_at(spec, status, ctx), ctx.now), watch=watch)

    def finalize(self, ctx: Pass) -> Result | None:
        """Release our holds; a restored template stays (undoing it would re-deploy the bad
        one). From status alone, with the spec's targets too when it can be read."""
        status: RollbackStatus = ctx.status()
        try:
            spec: RollbackSpec | None = ctx.spec(RollbackSpec)
        except InvalidSpec:
            spec = None
        holder = holder_id(ROLLBACK.kind, ctx.name, ctx.uid)
        for name in _names(spec, status):
            self._release(ctx, name, holder)
        return None


def _wake_at(spec: RollbackSpec, status: RollbackStatus, ctx: Pass) -> datetime | None:
    """Rollouts and new revisions are watch events; the clock is left for an open window's
    trigger (every tick) and for the end of a window."""
    now = ctx.now
    if status.phase == RollbackPhase.ARMED:
        ends = [
            t.window_ends_at for t in status.targets if t.window_ends_at and t.window_ends_at > now
        ]
        if ends:
            return min(now + timedelta(seconds=ctx.settings.tick_seconds), *ends)
        return None
    if status.phase == RollbackPhase.ROLLING_BACK:
        rolling = [
            t.applied_at + timedelta(minutes=10)
            for t in status.targets
            if t.state == TargetState.ROLLING_OUT and t.applied_at is not None
        ]
        return min(rolling) if rolling else None
    return None
