"""What the steps of a MaintenanceWindow work with: the outside world and the window."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ....adapters.alertmanager import Silences
from ....core.names import holder_id
from ....core.ports import KubePort, Obj
from ....core.schedule import instant
from ..api import MaintenanceWindowSpec, MaintenanceWindowStatus, Originals

__all__ = ["Env", "Target"]


@dataclass(frozen=True)
class Env:
    """The outside world, as the steps reach it (fakes in unit tests)."""

    kube: KubePort
    silences: Callable[[str], Silences]
    """An Alertmanager client for a base URL."""
    http_status: Callable[[str], int]
    """GET a URL, return its status (raises HttpCheckError when there is no answer)."""
    prometheus: Callable[[str, str], float]
    """(url, query) -> the one value (raises an Exception saying why there is none)."""
    prometheus_url: str = ""
    """The operator's default Prometheus."""
    instance: str = ""
    """This operator replica (named beside the holds it takes)."""


@dataclass(frozen=True)
class Target:
    """The window being worked on."""

    namespace: str
    name: str
    uid: str
    spec: MaintenanceWindowSpec | None
    """None when the window is being deleted with a spec the operator cannot read: the
    undo steps then work from status alone."""
    status: MaintenanceWindowStatus
    now: datetime
    fresh: Mapping[str, Obj] = field(default_factory=dict)
    """Named objects ('Kind/name') the checklist read in this very call, nothing of ours
    changed since: the step right after it starts from them instead of reading again."""

    @property
    def holder(self) -> str:
        return holder_id("MaintenanceWindow", self.name, self.uid)

    @property
    def marker(self) -> str:
        """Written into the silence's comment, so a repeat finds it instead of adding one."""
        start = instant(self.status.next_start or self.now)
        return f"mw:{self.uid}:{start}"

    @property
    def originals(self) -> Originals:
        return self.status.originals or Originals()
