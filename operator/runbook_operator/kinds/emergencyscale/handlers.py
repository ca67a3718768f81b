"""EmergencyScale on the operation core: observe -> logic -> holds, status, patches.

One pass carries the operation as far as it can go now: each step's status is
written (synchronously, optimistically) before the patches it records are made, and
the next step follows in the same pass. Holds are taken before the originals are
recorded, so an original is never recorded for a workload someone else is changing.
What is left to wait for is a watch event of the targets (replicas ready, a hold
released, a workload created) or the clock (the end of `duration`, the next question
to Prometheus): `Result` says which.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ...adapters.kube import NotFound
from ...core import failpoints, sampling
from ...core.context import Pass
from ...core.gate import NEEDS_HUMAN, Problem, Sample
from ...core.holding import acquire_hold, clean_replicaset_holds, release_hold
from ...core.kind import Kind, Result, due_in
from ...core.names import holder_id
from ...core.spec import InvalidSpec
from . import logic
from .api import (
    EMERGENCY_SCALE,
    EmergencyScalePhase,
    EmergencyScaleSpec,
    EmergencyScaleStatus,
)

__all__ = ["EmergencyScaleKind"]

KIND = EMERGENCY_SCALE.kind
MAX_STEPS = 8
"""Steps one pass may take (record, apply, end, revert... never more than a few)."""

Sampler = Callable[[str, str], Sample]


def _context(ctx: Pass) -> logic.Context:
    return logic.Context(
        holder=holder_id(KIND, ctx.name, ctx.uid),
        cap=ctx.settings.max_replicas,
        generation=ctx.generation,
        now=ctx.tick(),
    )


class Hpas:
    """The namespace's HPAs, listed once per pass and kept current with our own patches.

    A list after a write waits until the API server's watch cache has caught up with it
    (consistent reads from cache): tens of milliseconds per list, at every step of a pass
    that lists again. Nobody else changes an HPA we hold; our own patches' answers say
    what it is now."""

    def __init__(self, ctx: Pass) -> None:
        self.items = ctx.kube.list_hpas(ctx.namespace)

    def patched(self, hpa: dict[str, Any]) -> None:
        name = hpa["metadata"]["name"]
        self.items = [h for h in self.items if h["metadata"]["name"] != name] + [hpa]


def observe(ctx: Pass, keys: list[logic.Key], hpas: Hpas | None = None) -> logic.World:
    listed = (hpas or Hpas(ctx)).items
    world: dict[logic.Key, logic.Workload | None] = {}
    for kind, name in dict.fromkeys(keys):
        try:
            obj = ctx.kube.get_workload(kind, ctx.namespace, name)
        except NotFound:
            world[(kind, name)] = None
            continue
        world[(kind, name)] = logic.read_workload(kind, obj, listed)
    return world


def _keys(spec: EmergencyScaleSpec | None, status: EmergencyScaleStatus) -> list[logic.Key]:
    targets = [logic.key_of(t) for t in spec.targets] if spec is not None else []
    return [*targets, *(logic.key_of(o) for o in status.originals)]


class EmergencyScaleKind(Kind):
    resource = EMERGENCY_SCALE

    def __init__(self, sample: Sampler = sampling.sample) -> None:
        self.sample = sample

    # --- reconcile --------------------------------------------------------

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(EmergencyScaleSpec)
        sample = self._sample(ctx, spec, ctx.status())
        hpas = Hpas(ctx)
        for _ in range(MAX_STEPS):
            status: EmergencyScaleStatus = ctx.status()
            if status.is_done():
                break
            lctx = _context(ctx)
            world = observe(ctx, _keys(spec, status), hpas)
            outcome = logic.reconcile(spec, status, world, sample, lctx)
            # Asked once per pass; later steps reuse the recorded answer, except a problem
            # that needs a human (the record keeps only its text, and the next step would
            # read it as no data: Stalled, then Ready again within one pass).
            if sample is not None and sample.problem not in NEEDS_HUMAN:
                sample = None
            if not self._act(ctx, spec, status, outcome, lctx, hpas):
                break
        status = ctx.status()
        poll = timedelta(seconds=ctx.settings.tick_seconds)
        return Result(
            requeue_after=due_in(logic.wake_at(spec, status, ctx.now, poll), ctx.now),
            watch=frozenset(_keys(spec, status)),
        )

    def _sample(
        self, ctx: Pass, spec: EmergencyScaleSpec, status: EmergencyScaleStatus
    ) -> Sample | None:
        """A fresh answer from Prometheus when one is due, else None (reuse the last)."""
        if spec.trigger is None or status.phase == EmergencyScalePhase.REVERTING:
            return None
        last = status.gate.evaluated_at if status.gate else None
        if last is not None and (ctx.now - last).total_seconds() < ctx.settings.tick_seconds * 0.8:
            return None
        url = spec.trigger.url or ctx.settings.prometheus_url
        if not url:
            return Sample.failed(
                Problem.BAD_QUERY,
                "no Prometheus URL: set spec.trigger.url or the operator's RUNBOOK_PROMETHEUS_URL",
            )
        return self.sample(url, spec.trigger.query)

    def _act(
        self,
        ctx: Pass,
        spec: EmergencyScaleSpec,
        status: EmergencyScaleStatus,
        outcome: logic.Outcome,
        lctx: logic.Context,
        hpas: Hpas,
    ) -> bool:
        """Holds, then the status, then the patches, then the releases and the events (the
        releases come before a terminal status).
        Returns whether anything happened (so the next step may be due at once)."""
        taken: list[logic.Key] = []
        recorded = {logic.key_of(o) for o in status.originals}
        for kind, name in outcome.acquire:
            holder = acquire_hold(ctx.kube, kind, ctx.namespace, name, lctx.holder, ctx.instance)
            if holder is not None:
                for key in taken:
                    if key not in recorded:
                        release_hold(ctx.kube, key[0], ctx.namespace, key[1], lctx.holder)
                before = status.model_copy(update={"gate": outcome.status.gate})
                outcome = logic.held_elsewhere(spec, before, name, holder, lctx)
                break
            taken.append((kind, name))
        done = outcome.status.is_done()
        if done:
            # Whoever reads the terminal status finds every hold gone already; a crash
            # between the two leaves workloads at their originals, which the next pass
            # recognises as reverted.
            self._release(ctx, outcome.release, lctx.holder)
        wrote = ctx.write(outcome.status)
        if wrote:
            failpoints.hit(f"emergencyscale-{outcome.status.phase}")
        self._patch(ctx, outcome.changes, hpas)
        if not done:
            self._release(ctx, outcome.release, lctx.holder)
        ctx.recorder.events(outcome.notes)
        return wrote or bool(outcome.changes or outcome.release or taken)

    @staticmethod
    def _patch(ctx: Pass, changes: tuple[logic.Change, ...], hpas: Hpas) -> None:
        for change in changes:
            if change.hpa is not None:
                hpas.patched(ctx.kube.patch_hpa(ctx.namespace, change.hpa, change.patch))
            else:
                assert change.replicas is not None  # a workload's change is its replicas
                kind, name = change.key
                ctx.kube.scale_workload(kind, ctx.namespace, name, change.replicas)

    @staticmethod
    def _release(ctx: Pass, keys: tuple[logic.Key, ...], holder: str) -> None:
        for kind, name in keys:
            release_hold(ctx.kube, kind, ctx.namespace, name, holder)
            if kind == "Deployment":
                clean_replicaset_holds(ctx.kube, ctx.namespace, name, holder)

    # --- finalize ---------------------------------------------------------

    def finalize(self, ctx: Pass) -> Result | None:
        """Put the originals back (unless revert: false), release the holds, let go."""
        status: EmergencyScaleStatus = ctx.status()
        try:
            spec: EmergencyScaleSpec | None = ctx.spec(EmergencyScaleSpec)
        except InvalidSpec:
            spec = None  # everything recorded is in status: undo from there
        lctx = _context(ctx)
        hpas = Hpas(ctx)
        world = observe(ctx, _keys(spec, status), hpas)
        outcome = logic.finalize(status, world, lctx, spec=spec)
        self._patch(ctx, outcome.changes, hpas)
        self._release(ctx, outcome.release, lctx.holder)
        ctx.recorder.events(outcome.notes)
        return None
