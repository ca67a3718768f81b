"""What a kind gives the runtime: a reconcile pass, a finalize pass, and a few words.

`reconcile(ctx)` runs for an object that is not being deleted: it carries the operation
forward as far as it can now (recording in status before each change) and returns a
`Result`: when to look again if nothing else happens (`requeue_after`, seconds), and
which other objects' changes should wake it (`watch`). It runs again on every change
of the object or of what it watches, and at its due time: one funnel for create,
update, resume and time. `finalize(ctx)` runs once the object is being deleted; it
undoes from status alone (never the spec) and returns None when nothing is left,
after which the finalizer goes, or a Result to be called again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from .conditions import StatusBase, stalled
from .context import Pass
from .resource import Resource

__all__ = ["DATABASE", "PASSES", "Kind", "Result", "Watch", "due_in"]

PASSES = "passes"
"""The thread pool of ordinary passes (Kubernetes API calls only)."""
DATABASE = "database"
"""The bounded pool of passes that run pg_dump or pg_restore."""

Watch = tuple[str, str]
"""(Kind, name) of an object in the same namespace whose changes wake this one;
name "*" for any object of that kind (e.g. ("MaintenanceWindow", "*")). A cluster-scoped
kind's objects wake it wherever they are (("MaintenancePolicy", "*")), and
("Namespace", <its namespace>) is its own namespace."""


@dataclass(frozen=True)
class Result:
    requeue_after: float | None = None
    """Seconds until the next pass is due if nothing else happens; None: only on a change."""
    watch: frozenset[Watch] = frozenset()


def due_in(moment: datetime | None, now: datetime, *, at_least: float = 0.05) -> float | None:
    """Seconds from `now` until `moment` (None stays None), never less than `at_least`."""
    if moment is None:
        return None
    return max((moment - now).total_seconds(), at_least)


class Kind(ABC):
    """One kind's handlers. Subclasses set `resource` (and `pool` for database work)."""

    resource: Resource
    pool: str = PASSES
    policies: tuple[Resource, ...] = ()
    """Cluster-scoped configuration the kind reads (a MaintenancePolicy): rendered into
    CRDs with the kind, and watched, so a change wakes the operations that watch it."""
    finalizer_beside: bool = False
    """The kind's first pass changes nothing before its first status write but holds, so
    the finalizer may be added beside its first reads and holds (StatusWriter.settle puts
    it on before that write): one round trip less before the first change. A hold whose
    operation went before its finalizer was on is stale, and the next operation takes it
    over (core.holds); the kind itself lets go of it when that write fails."""
    namespace_labels: bool = False
    """The kind reads its namespace's labels: a change of a Namespace wakes the operations
    in it that watch ("Namespace", its name)."""

    @abstractmethod
    def reconcile(self, ctx: Pass) -> Result: ...

    @abstractmethod
    def finalize(self, ctx: Pass) -> Result | None: ...

    def invalid(self, ctx: Pass, status: StatusBase, message: str) -> StatusBase:
        """The status for a spec that cannot be used: Stalled, reason InvalidSpec."""
        text = f"The spec cannot be used: {message}"
        conditions = stalled(
            status.conditions, "InvalidSpec", text, generation=ctx.generation, now=ctx.now
        )
        return status.model_copy(
            update={"conditions": conditions, "observed_generation": ctx.generation}
        )
