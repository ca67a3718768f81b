"""EmergencyScale on the operation core: observe -> logic -> holds, status, patches.

One pass carries the operation as far as it can go now: each step's status is
written (synchronously, optimistically) before the patches it records are made, and
the next step follows in the same pass. No change is made before the holds on its
workloads are taken and their originals recorded, and an original recorded for a
workload someone else holds or changed does not stay:
- the one workload of a step that nobody holds takes its hold in the same patch as its
  new size, after the status, written with the resourceVersion its original was read
  at: the size changes only on the workload exactly as recorded;
- the holds of workloads nobody holds, whose originals the step records (an HPA's
  minimum to raise, several workloads), go out beside that status write, each written
  with the resourceVersion it was read at, and the changes wait for both;
- any other hold is taken before the status.
When a hold is refused the record goes back and the step is decided again on a fresh
read.
What is left to wait for is a watch event of the targets (replicas ready, a hold
released, a workload created) or the clock (the end of `duration`, the next question
to Prometheus): `Result` says which.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

from ...adapters.kube import KubeError, NotFound
from ...core import failpoints, fanout, sampling
from ...core.context import Pass
from ...core.gate import NEEDS_HUMAN, Problem, Sample
from ...core.holding import (
    acquire_hold,
    clean_replicaset_holds,
    hold_with,
    let_go_unless_recorded,
    release_hold,
)
from ...core.identity import requested_by
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

ANSWER_SECONDS = 60.0
"""How long the API server's answer on whether a requester may patch an HPA is reused."""


def _context(ctx: Pass, refused: logic.Refused | None = None) -> logic.Context:
    return logic.Context(
        holder=holder_id(KIND, ctx.name, ctx.uid),
        cap=ctx.settings.max_replicas,
        generation=ctx.generation,
        now=ctx.tick(),
        refused=refused,
    )


class Observed:
    """What one pass has read: the namespace's HPAs and the workloads, each read once and
    kept current with the answers to our own patches (holds, sizes).

    Every step of a pass used to read its workloads again, and taking a hold read the
    workload once more: three reads of one Deployment before an EmergencyScale's first
    change, each a round trip on the critical path. A list after a write also waits until
    the API server's watch cache has caught up with it (consistent reads from cache).
    Nobody else changes a workload we hold without a watch event, which runs the next
    pass on fresh reads; within a pass, our own patches' answers say what it is now. A
    copy that went stale costs nothing unsafe: a hold is written with the
    resourceVersion it was read with, and the sizes we patch are absolute."""

    def __init__(self, ctx: Pass, keys: list[logic.Key]) -> None:
        self.ctx = ctx
        self.workloads: dict[logic.Key, dict[str, Any] | None] = {}
        # The operator's own watch cache first (core.watchcache): a new EmergencyScale's
        # first change then waits for no read of its targets, and a pass woken by a
        # target's event reads the copy that woke it. What it does not know is read.
        missing: list[logic.Key] = []
        for key in dict.fromkeys(keys):
            cached = ctx.cache.workload(key[0], ctx.namespace, key[1])
            if cached is None:
                missing.append(key)
            else:
                self.workloads[key] = self._keep(key, cached)
        # From the API server's watch cache (core.ports): a consistent list of HPAs, a
        # kind rarely written, waited up to 100 ms for the cache to catch up with the
        # EmergencyScale's own creation, and was most of its reaction time. Whether an
        # HPA manages a target is never answered from our own cache: an HPA not seen
        # yet would be one that is not there.
        hpas = functools.partial(ctx.kube.list_hpas, ctx.namespace, cached=True)
        reads: list[Callable[[], Any]] = [hpas]
        reads += [functools.partial(self._read, key) for key in missing]
        answers = fanout.gather(reads)  # side by side: none depends on another
        self.hpas: list[dict[str, Any]] = answers[0]
        self.workloads.update(zip(missing, answers[1:], strict=True))

    def _read(self, key: logic.Key) -> dict[str, Any] | None:
        try:
            obj = self.ctx.kube.get_workload(key[0], self.ctx.namespace, key[1])
        except NotFound:
            self.ctx.cache.forget(key[0], self.ctx.namespace, key[1])
            return None
        return self._keep(key, obj)

    def _keep(self, key: logic.Key, obj: dict[str, Any]) -> dict[str, Any]:
        self.ctx.read[key] = obj  # its GitOps owner is known without reading it again
        return obj

    def workload(self, key: logic.Key) -> dict[str, Any] | None:
        """The workload as last read or patched in this pass; None when it does not exist."""
        if key not in self.workloads:
            self.workloads[key] = self._read(key)
        return self.workloads[key]

    def patched(self, key: logic.Key, obj: dict[str, Any]) -> None:
        self.workloads[key] = obj

    def scaled(self, key: logic.Key, scale: dict[str, Any]) -> None:
        """Our own scale's answer, a Scale: the workload as known, with the new replicas,
        the generation the API server gives a changed spec, and the Scale's
        resourceVersion (the workload's own). Read again after the change, it was one
        round trip more per operation, and nothing in it was news."""
        known = self.workloads.get(key)
        if known is None:
            return
        meta, spec = dict(known["metadata"]), dict(known.get("spec") or {})
        replicas = int((scale.get("spec") or {}).get("replicas", 0))
        if int(spec.get("replicas", 1)) != replicas:
            meta["generation"] = int(meta.get("generation") or 0) + 1
        meta["resourceVersion"] = (scale.get("metadata") or {}).get("resourceVersion")
        spec["replicas"] = replicas
        self.workloads[key] = {**known, "metadata": meta, "spec": spec}

    def forget(self, key: logic.Key) -> None:
        """Read it again, from the API server, when next needed (a hold lost to a race, a
        hold released, a copy found stale)."""
        self.workloads.pop(key, None)

    def patched_hpa(self, hpa: dict[str, Any]) -> None:
        name = hpa["metadata"]["name"]
        self.hpas = [h for h in self.hpas if h["metadata"]["name"] != name] + [hpa]


class Decided(NamedTuple):
    """What one step was decided on: the spec, the status before it, the workloads as
    read, the logic's context, and the pass's reads (kept current by its patches)."""

    spec: EmergencyScaleSpec
    status: EmergencyScaleStatus
    world: logic.World
    lctx: logic.Context
    seen: Observed


def observe(ctx: Pass, keys: list[logic.Key], seen: Observed | None = None) -> logic.World:
    seen = seen or Observed(ctx, keys)
    world: dict[logic.Key, logic.Workload | None] = {}
    for key in dict.fromkeys(keys):
        obj = seen.workload(key)
        world[key] = None if obj is None else logic.read_workload(key[0], obj, seen.hpas)
    return world


def _keys(spec: EmergencyScaleSpec | None, status: EmergencyScaleStatus) -> list[logic.Key]:
    targets = [logic.key_of(t) for t in spec.targets] if spec is not None else []
    return [*targets, *(logic.key_of(o) for o in status.originals)]


class EmergencyScaleKind(Kind):
    resource = EMERGENCY_SCALE
    finalizer_beside = True  # its first change comes after a status write; before, holds

    def __init__(self, sample: Sampler = sampling.sample) -> None:
        self.sample = sample
        self._answers: dict[tuple[str, str], tuple[float, bool]] = {}
        """(uid, HPA) -> (when, whether its requester may patch it): an armed
        EmergencyScale waiting for its trigger asks once a minute, not every pass."""

    # --- reconcile --------------------------------------------------------

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(EmergencyScaleSpec)
        sample = self._sample(ctx, spec, ctx.status())
        seen = Observed(ctx, _keys(spec, ctx.status()))  # beside the finalizer, if it is new
        refused = self._authorize_hpas(ctx, spec, seen)
        for _ in range(MAX_STEPS):
            status: EmergencyScaleStatus = ctx.status()
            if status.is_done():
                break
            lctx = _context(ctx, refused)
            world = observe(ctx, _keys(spec, status), seen)
            outcome = logic.advance(spec, status, world, sample, lctx)
            # Asked once per pass; later steps reuse the recorded answer, except a problem
            # that needs a human (the record keeps only its text, and the next step would
            # read it as no data: Stalled, then Ready again within one pass).
            if sample is not None and sample.problem not in NEEDS_HUMAN:
                sample = None
            if not self._act(ctx, Decided(spec, status, world, lctx, seen), outcome):
                break
        status = ctx.status()
        poll = timedelta(seconds=ctx.settings.tick_seconds)
        return Result(
            requeue_after=due_in(logic.wake_at(spec, status, ctx.now, poll), ctx.now),
            watch=frozenset(_keys(spec, status)),
        )

    def _authorize_hpas(
        self, ctx: Pass, spec: EmergencyScaleSpec, seen: Observed
    ) -> logic.Refused | None:
        """May the requester patch each HPA an emergency size is still to be set through?
        Admission proved their right over the workloads; which HPA manages one is known
        only here. Asked as a LocalSubjectAccessReview, before anything is changed."""
        who = requested_by(ctx.obj)
        status = ctx.status()
        if who is None or status.is_done():
            return None
        world = observe(ctx, _keys(spec, status), seen)
        hpas = logic.hpas_to_authorize(spec, status.originals, world)
        now = time.monotonic()
        if len(self._answers) > 1000:  # keep only answers still in use
            self._answers = {k: v for k, v in self._answers.items() if now - v[0] <= ANSWER_SECONDS}
        refused = set()
        for hpa in hpas:
            key = (ctx.uid, hpa)
            asked = self._answers.get(key)
            if asked is None or now - asked[0] > ANSWER_SECONDS:
                allowed = ctx.kube.allowed(
                    who.user, who.groups, "patch", "autoscaling", "horizontalpodautoscalers",
                    ctx.namespace, hpa,
                )  # fmt: skip
                asked = self._answers[key] = (now, allowed)
            if not asked[1]:
                refused.add(hpa)
        return logic.Refused(who.user, frozenset(refused))

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

    def _act(self, ctx: Pass, step: Decided, outcome: logic.Outcome) -> bool:
        """Holds, then the status, then the patches, then the releases and the events (the
        releases come before a terminal status). A hold that can travel with its change
        (logic.hold_with_change) goes out with it, after the status.
        Returns whether anything happened (so the next step may be due at once)."""
        status, lctx, seen = step.status, step.lctx, step.seen
        if logic.holds_beside_record(outcome, status, step.world):
            return self._act_beside(ctx, step, outcome)
        recorded = {logic.key_of(o) for o in status.originals}
        took = self._take_holds(ctx, step, outcome)
        if took is None:
            return True  # the step is decided again, on what the holds' answers say
        outcome, taken, joint = took
        done = outcome.status.is_done()
        if done:
            # Whoever reads the terminal status finds every hold gone already; a crash
            # between the two leaves workloads at their originals, which the next pass
            # recognises as reverted.
            self._release(ctx, outcome.release, lctx.holder, seen)
        unrecorded = [k for k in taken if k not in recorded]
        with let_go_unless_recorded(ctx.kube, ctx.namespace, lctx.holder, unrecorded):
            wrote = ctx.write(outcome.status)
        if wrote:
            failpoints.hit(f"emergencyscale-{outcome.status.phase}")
        if joint is not None and not self._hold_with(ctx, joint, outcome.status, lctx, seen):
            # Changed or taken since it was read: nothing was changed, so the record goes
            # back to the step before, and the next step decides again on a fresh read.
            ctx.write(status.model_copy(update={"gate": outcome.status.gate}))
            return True
        self._patch(ctx, tuple(c for c in outcome.changes if c is not joint), seen)
        if not done:
            self._release(ctx, outcome.release, lctx.holder, seen)
        ctx.recorder.events(outcome.notes)
        return wrote or bool(outcome.changes or outcome.release or taken)

    def _act_beside(self, ctx: Pass, step: Decided, outcome: logic.Outcome) -> bool:
        """The holds side by side with the status that records their originals
        (logic.holds_beside_record), then the changes. A hold refused, or a workload
        found changed, made nothing change: the record goes back (to the step before, or
        to waiting for the other operation's hold) and the step is decided again."""
        status, lctx, seen = step.status, step.lctx, step.seen
        holding = fanout.start(functools.partial(self._take_holds, ctx, step, outcome))
        try:
            wrote = ctx.write(outcome.status)
        except KubeError:
            with contextlib.suppress(KubeError):
                took = holding.result()
                for kind, name in took[1] if took is not None else ():
                    release_hold(ctx.kube, kind, ctx.namespace, name, lctx.holder)
                    seen.forget((kind, name))
            raise
        took = holding.result()
        if took is None:
            ctx.write(status.model_copy(update={"gate": outcome.status.gate}))
            return True
        if took[0] is not outcome:  # held elsewhere
            ctx.write(took[0].status)
            ctx.recorder.events(took[0].notes)
            return True
        if wrote:
            failpoints.hit(f"emergencyscale-{outcome.status.phase}")
        self._patch(ctx, outcome.changes, seen)
        self._release(ctx, outcome.release, lctx.holder, seen)
        ctx.recorder.events(outcome.notes)
        return True

    def _take_holds(
        self, ctx: Pass, step: Decided, outcome: logic.Outcome
    ) -> tuple[logic.Outcome, list[logic.Key], logic.Change | None] | None:
        """The step's holds, before its status: the outcome to carry out (held elsewhere
        when one was lost to another operation), the holds taken, and the change whose hold
        goes out with it later. None: a workload changed between the pass's read and its
        hold, so what the step would record is not what it is now; its holds are let go."""
        spec, status, world, lctx, seen = step
        taken: list[logic.Key] = []
        recorded = {logic.key_of(o) for o in status.originals}
        joint = logic.hold_with_change(outcome, status, world)
        for kind, name in outcome.acquire:
            if joint is not None and joint.key == (kind, name):
                continue  # taken with its change, once the status records its original
            holder = acquire_hold(
                ctx.kube,
                kind,
                ctx.namespace,
                name,
                lctx.holder,
                ctx.instance,
                known=seen.workload((kind, name)),
                seen=functools.partial(seen.patched, (kind, name)),
            )
            if holder is not None:
                seen.forget((kind, name))
                for key in taken:
                    if key not in recorded:
                        release_hold(ctx.kube, key[0], ctx.namespace, key[1], lctx.holder)
                        seen.forget(key)
                before = status.model_copy(update={"gate": outcome.status.gate})
                return logic.held_elsewhere(spec, before, name, holder, lctx), [], None
            taken.append((kind, name))
        fresh = [k for k in taken if k not in recorded]
        if any(self._moved(key, world, seen) for key in fresh):
            for key in fresh:
                release_hold(ctx.kube, key[0], ctx.namespace, key[1], lctx.holder)
                seen.forget(key)
            return None
        return outcome, taken, joint

    @staticmethod
    def _moved(key: logic.Key, world: logic.World, seen: Observed) -> bool:
        """Whether what would be recorded of the workload changed since `world` was read."""
        decided, now = world.get(key), seen.workload(key)
        if decided is None or now is None:
            return (decided is None) != (now is None)
        return logic.snapshot(decided) != logic.snapshot(
            logic.read_workload(key[0], now, seen.hpas)
        )

    @staticmethod
    def _hold_with(
        ctx: Pass,
        change: logic.Change,
        status: EmergencyScaleStatus,
        lctx: logic.Context,
        seen: Observed,
    ) -> bool:
        """The hold and the new replicas in one patch (core.holding.hold_with), on the
        workload only as its original was recorded in `status`; whether it was made."""
        kind = change.key[0]
        original = next(o for o in status.originals if logic.key_of(o) == change.key)
        known = seen.workload(change.key)
        assert known is not None  # decided on it
        answer = hold_with(
            ctx.kube,
            kind,
            known,
            lctx.holder,
            ctx.instance,
            {"spec": {"replicas": change.replicas}},
            still=lambda w: logic.snapshot(logic.read_workload(kind, w, seen.hpas)) == original,
        )
        if answer is None:
            seen.forget(change.key)
            return False
        seen.patched(change.key, answer)
        return True

    @staticmethod
    def _patch(ctx: Pass, changes: tuple[logic.Change, ...], seen: Observed) -> None:
        for change in changes:
            if change.hpa is not None:
                seen.patched_hpa(ctx.kube.patch_hpa(ctx.namespace, change.hpa, change.patch))
            else:
                assert change.replicas is not None  # a workload's change is its replicas
                kind, name = change.key
                scale = ctx.kube.scale_workload(kind, ctx.namespace, name, change.replicas)
                if scale.get("metadata", {}).get("resourceVersion"):
                    seen.scaled(change.key, scale)
                else:
                    seen.forget(change.key)  # no answer to go by: read it when needed

    @staticmethod
    def _release(ctx: Pass, keys: tuple[logic.Key, ...], holder: str, seen: Observed) -> None:
        for kind, name in keys:
            release_hold(ctx.kube, kind, ctx.namespace, name, holder)
            seen.forget((kind, name))
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
        seen = Observed(ctx, _keys(spec, status))
        world = observe(ctx, _keys(spec, status), seen)
        outcome = logic.finalize(status, world, lctx, spec=spec)
        self._patch(ctx, outcome.changes, seen)
        self._release(ctx, outcome.release, lctx.holder, seen)
        ctx.recorder.events(outcome.notes)
        return None
