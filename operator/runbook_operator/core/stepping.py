"""The pass of a kind that steps towards an end: decide, act, again, until it must wait.

Restart and ImageUpdate (and any kind shaped like them) decide one step at a time, with
pure logic (core.draft), a plan holding the status to write before the change it records,
and the change. Their handlers are a `SteppingKind`, whose pass takes steps until the
operation is done or waits, asks the health check when a step says so (once a pass: the
next is due at the next tick), and then sleeps until `wake_at` or a change of what it is
`watching`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

from ..adapters import prometheus
from ..adapters.httpcheck import get_status
from .conditions import StatusBase
from .context import Pass
from .health import HealthCheck
from .kind import Kind, Result, Watch, due_in
from .names import holder_id
from .probing import probe

__all__ = ["StepPlan", "SteppingKind"]

SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=StatusBase)
PlanT = TypeVar("PlanT", bound="StepPlan")


class StepPlan(Protocol):
    """What a step's plan must say for the loop: the status to write, and whether the
    health check is to be asked before anything else is decided."""

    @property
    def status(self) -> StatusBase: ...

    @property
    def probe(self) -> bool: ...


class SteppingKind(Kind, Generic[SpecT, StatusT, PlanT]):
    """A kind whose pass takes steps (`decide`, then `act`) until nothing more can be done
    now, asks the health check when a step says so, and sleeps until `wake_at` or a change
    of what it `watching`."""

    spec_model: type[SpecT]
    max_steps: int = 12
    """Steps one pass may take; a bound against a plan that never settles (the rest waits
    for the next due time or change)."""

    def __init__(
        self,
        *,
        http_status: Callable[[str], int] = get_status,
        query: Callable[[str, str], float] = prometheus.query_one,
    ) -> None:
        self.http_status = http_status
        self.query = query

    @abstractmethod
    def decide(self, ctx: Pass, spec: SpecT, status: StatusT) -> PlanT:
        """Look at what the operation changes, and decide the next step (pure logic)."""

    @abstractmethod
    def after_probe(
        self,
        spec: SpecT,
        status: StatusT,
        healthy: bool,
        text: str,
        *,
        failed: str | None,
        generation: int | None,
        now: datetime,
    ) -> PlanT:
        """The next step, given the health check's answer (pure logic)."""

    @abstractmethod
    def health_check(self, spec: SpecT) -> HealthCheck | None: ...

    @abstractmethod
    def act(self, ctx: Pass, spec: SpecT, plan: PlanT) -> bool:
        """Write the plan's status, then make its change; False when it did nothing."""

    @abstractmethod
    def wake_at(
        self, spec: SpecT, status: StatusT, now: datetime, poll: timedelta
    ) -> datetime | None: ...

    @abstractmethod
    def watching(self, spec: SpecT, status: StatusT) -> frozenset[Watch]:
        """The workloads whose changes (a rollout's progress) wake this operation."""

    def holder(self, ctx: Pass) -> str:
        """The value of the hold this operation puts on the workloads it changes."""
        return holder_id(self.resource.kind, ctx.name, ctx.uid)

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(self.spec_model)
        for _ in range(self.max_steps):
            status: StatusT = ctx.status()
            if status.is_done():
                break
            ctx.tick()
            plan = self.decide(ctx, spec, status)
            asked = plan.probe
            if asked:
                check = self.health_check(spec)
                assert check is not None
                answer = probe(check, self.http_status, self.query, ctx.settings.prometheus_url)
                plan = self.after_probe(
                    spec,
                    status,
                    answer.healthy,
                    answer.text,
                    failed=answer.failed,
                    generation=ctx.generation,
                    now=ctx.now,
                )
            if not self.act(ctx, spec, plan) or asked:
                break  # the health check is asked once per pass (and again at each tick)
        status = ctx.status()
        poll = timedelta(seconds=ctx.settings.tick_seconds)
        due = self.wake_at(spec, status, ctx.now, poll)
        watch = frozenset() if status.is_done() else self.watching(spec, status)
        return Result(requeue_after=due_in(due, ctx.now), watch=watch)
