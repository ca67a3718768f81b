"""One pass over one object: what a kind's handlers get, typed.

A `Pass` holds the object as last read or written (through its `StatusWriter`), the
clients, the settings, the recorder for events and log lines, the cancel flag of
long work, and the clock. Kinds read `spec()` and `status()`, decide with their pure
logic, `write()` the status before the change it records, then make the change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from ..settings import Settings
from .conditions import StatusBase
from .ports import KubePort, Obj
from .recorder import Recorder
from .resource import Resource
from .spec import parse
from .watchcache import WatchCache
from .writer import StatusWriter

__all__ = ["Pass", "now_utc"]

M = TypeVar("M", bound=BaseModel)


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class Pass:
    kube: KubePort
    settings: Settings
    resource: Resource
    writer: StatusWriter
    recorder: Recorder
    instance: str = ""
    """This operator process's id (status.attemptBy of long work, holds in HA)."""
    stopped: threading.Event = field(default_factory=threading.Event)
    """Set when the object is being deleted or the operator is stopping: long work stops."""
    fenced: Callable[[], bool] = lambda: False
    """True when this process is not (or no longer) the leader: work that writes no API
    object (committing an artifact) asks before it lands; API writes are refused anyway."""
    clock: Callable[[], datetime] = now_utc
    """Where `now` comes from (a test's own clock in unit tests)."""
    now: datetime = field(default_factory=now_utc)
    extra: dict[str, Any] = field(default_factory=dict)
    """Kind-specific clients (Alertmanager, Prometheus, stores): set by the runtime."""
    read: dict[tuple[str, str], Obj] = field(default_factory=dict)
    """Objects of the namespace the kind read in this pass, by (Kind, name): the core
    looks here before reading one again for what no patch of ours changes (the GitOps
    tracking labels and annotations of a target, core.guarding)."""

    cache: WatchCache = field(default_factory=WatchCache)
    """The workloads as the operator's watches last delivered them: a kind may decide on
    them where a stale copy costs a conflict, never a lost update."""

    # --- the object ------------------------------------------------------

    @property
    def obj(self) -> Obj:
        return self.writer.obj

    @property
    def meta(self) -> Obj:
        return dict(self.obj.get("metadata") or {})

    @property
    def namespace(self) -> str:
        return str(self.meta["namespace"])

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def uid(self) -> str:
        return str(self.meta.get("uid", ""))

    @property
    def generation(self) -> int | None:
        generation = self.meta.get("generation")
        return int(generation) if generation is not None else None

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(str(self.meta["creationTimestamp"]).replace("Z", "+00:00"))

    @property
    def deleting(self) -> bool:
        return bool(self.meta.get("deletionTimestamp"))

    def spec(self, model: type[M]) -> M:
        """The spec, parsed; raises core.spec.InvalidSpec with the field and the reason."""
        return parse(model, self.obj.get("spec"))

    def status(self) -> Any:
        """The status as last read or written, parsed with the kind's status model."""
        return self.resource.status.model_validate(self.obj.get("status") or {})

    # --- doing -----------------------------------------------------------

    def write(self, status: StatusBase) -> bool:
        """Write the status now (optimistic lock); False when nothing changed."""
        return self.writer.write(status)

    def __post_init__(self) -> None:
        self.now = self.clock()

    def tick(self) -> datetime:
        """A fresh `now`, for the next step of the same pass."""
        self.now = self.clock()
        return self.now
