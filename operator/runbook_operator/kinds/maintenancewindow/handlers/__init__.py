"""MaintenanceWindow on the operation core: the checklist, then the steps, in one pass.

A pass repeats one step (passes.step) as long as it makes progress: each step's result
is written to status (synchronously, optimistically) before the next one begins, so
whenever the operator dies status says exactly how far it got and the step after it
has not begun. The failpoint `maintenancewindow-step-<n>` (core.failpoints) stops the
operator right after the n-th step is recorded, for the crash tests.

What a pass cannot finish now it leaves to the watch events of the Deployments it
changes (rollouts, scale-downs, holds released) and of the DatabaseBackups its
checklist counts, or to the clock (start, end, deadlines, timeouts, the health check):
`Result` says which. Before the start the checklist is evaluated again on such an
event, at most once per POLICY_INTERVAL, and once more at the start.

Deletion undoes, step by step and recorded the same way, from status alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ....adapters import prometheus
from ....adapters.alertmanager import Alertmanager, Silences
from ....adapters.httpcheck import get_status
from ....adapters.kube import KubeError
from ....core import failpoints, identity
from ....core.conditions import StatusBase
from ....core.context import Pass
from ....core.kind import Kind, Result, due_in
from ....core.spec import InvalidSpec
from .. import logic
from ..api import (
    MAINTENANCE_POLICY,
    MAINTENANCE_WINDOW,
    MaintenanceWindowSpec,
    MaintenanceWindowStatus,
    WindowPhase,
)
from ..logic.policy import Stamps
from .env import Env, Target
from .passes import step, undo_step
from .steps import release_holds

__all__ = ["MaintenanceWindowKind"]

MAX_STEPS = 40
"""Steps one pass may take (a whole start is 11, a whole end 7)."""
RETRY_SECONDS = 2.0


class MaintenanceWindowKind(Kind):
    resource = MAINTENANCE_WINDOW
    finalizer_beside = True  # a first pass's first step writes its status; before, holds
    policies = (MAINTENANCE_POLICY,)
    namespace_labels = True

    def __init__(
        self,
        *,
        silences: Callable[[str], Silences] = Alertmanager,
        http_status: Callable[[str], int] = get_status,
        query: Callable[[str, str], float] = prometheus.query_one,
    ) -> None:
        self.silences = silences
        self.http_status = http_status
        self.query = query

    def _env(self, ctx: Pass) -> Env:
        return Env(
            kube=ctx.kube,
            silences=self.silences,
            http_status=self.http_status,
            prometheus=self.query,
            prometheus_url=ctx.settings.prometheus_url,
            instance=ctx.instance,
        )

    @staticmethod
    def _ref(ctx: Pass) -> tuple[str, str, str]:
        return ctx.namespace, ctx.name, ctx.uid

    @staticmethod
    def _record(ctx: Pass, before: MaintenanceWindowStatus, p: logic.Pass) -> bool:
        """Write the step's status, then tell; die here if the crash tests ask to."""
        wrote = ctx.write(p.status)
        ctx.recorder.events(p.events)
        if wrote and len(p.status.steps) > len(before.steps):
            failpoints.hit(f"maintenancewindow-step-{len(p.status.steps)}")
        return wrote

    # --- reconcile --------------------------------------------------------

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(MaintenanceWindowSpec)
        env = self._env(ctx)
        checked = deferred = False
        _record_canceller(ctx, spec)
        for _ in range(MAX_STEPS):
            before: MaintenanceWindowStatus = ctx.status()
            w = logic.Window(spec, before, ctx.created, ctx.generation or 1, stamps=_stamps(ctx))
            now = ctx.tick()
            if _pending_before_start(before, now):
                if not logic.policy_due(w, now) or checked:
                    deferred = not checked
                    break  # the checklist was just evaluated; an event will say more
                checked = True
            p = step(env, w, self._ref(ctx), now)
            try:
                recorded = self._record(ctx, before, p)
            except KubeError:
                if not before.steps:  # holds this step took, recorded nowhere: let go
                    release_holds(env, Target(*self._ref(ctx), spec, before, now))
                raise
            if not recorded:
                break
        return self._result(ctx, spec, deferred)

    def _result(self, ctx: Pass, spec: MaintenanceWindowSpec, deferred: bool) -> Result:
        status: MaintenanceWindowStatus = ctx.status()
        w = logic.Window(spec, status, ctx.created, ctx.generation or 1, stamps=_stamps(ctx))
        poll = timedelta(seconds=ctx.settings.tick_seconds)
        due = logic.wake_at(w, ctx.now, poll)
        if deferred and status.policy_checked_at is not None:
            again = status.policy_checked_at + logic.POLICY_INTERVAL
            due = again if due is None else min(due, again)
        watch = _watches(spec, status, ctx.namespace)
        return Result(requeue_after=due_in(due, ctx.now), watch=watch)

    # --- finalize ---------------------------------------------------------

    def finalize(self, ctx: Pass) -> Result | None:
        try:
            spec: MaintenanceWindowSpec | None = ctx.spec(MaintenanceWindowSpec)
        except InvalidSpec:
            spec = None  # undo from status alone
        env = self._env(ctx)
        for _ in range(MAX_STEPS):
            before: MaintenanceWindowStatus = ctx.status()
            now = ctx.tick()
            p = undo_step(env, before, spec, self._ref(ctx), ctx.generation, now)
            self._record(ctx, before, p)
            if p.finished:
                return None
            if p.status.last_error:
                return Result(requeue_after=RETRY_SECONDS)
        return Result(requeue_after=0.1)

    def invalid(self, ctx: Pass, status: StatusBase, message: str) -> StatusBase:
        """Nothing is started; a window under way keeps its phase (deletion still undoes it)."""
        assert isinstance(status, MaintenanceWindowStatus)
        return logic.invalid_spec(status, ctx.generation or 1, message, ctx.now).status


def _stamps(ctx: Pass) -> Stamps:
    who = identity.requested_by(ctx.obj)
    return Stamps(
        requester=who.user if who is not None else None,
        plan_revision=identity.plan_revision(ctx.obj),
    )


def _record_canceller(ctx: Pass, spec: MaintenanceWindowSpec) -> None:
    """status.cancelledBy, before the cancellation is acted on (named in its event too)."""
    status: MaintenanceWindowStatus = ctx.status()
    by = identity.cancelled_by(ctx.obj)
    if spec.cancel and by and status.cancelled_by != by:
        ctx.write(status.model_copy(update={"cancelled_by": by}))
        ctx.recorder.info("CancelRequested", f"Cancelled by {by}.")


def _pending_before_start(status: MaintenanceWindowStatus, now: datetime) -> bool:
    phase = status.phase or WindowPhase.PENDING
    return phase == WindowPhase.PENDING and (status.next_start is None or now < status.next_start)


def _watches(
    spec: MaintenanceWindowSpec, status: MaintenanceWindowStatus, namespace: str
) -> frozenset[tuple[str, str]]:
    names = set(status.holds)
    if spec.maintenance_mode is not None:
        names |= {d.name for d in spec.maintenance_mode.restart}
    names |= {t.name for t in spec.scale_down}
    if spec.policy.rollback_plan is not None:
        names |= {d.name for d in spec.policy.rollback_plan.deployments}
    watch = {("Deployment", name) for name in names}
    if spec.policy.backup is not None and not status.is_done():
        watch.add(("DatabaseBackup", "*"))
    if (status.phase or WindowPhase.PENDING) == WindowPhase.PENDING:
        # Before the start, the cluster's minimums can change under it: a MaintenancePolicy
        # edited, created or deleted, or the namespace's labels (which select them).
        watch |= {(MAINTENANCE_POLICY.kind, "*"), ("Namespace", namespace)}
    return frozenset(watch)
