"""What the API server needs to know about a kind beyond its schema.

Each kind's api module declares one `Resource`: names, printer columns and the
spec/status models. `crdgen` turns it into a CustomResourceDefinition and the
runtime uses it to address the kind, so the two never disagree. Declaring one
registers it (`by_kind`), so core code can reach an operation named in a hold
without knowing any kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .conditions import StatusBase
from .model import GROUP, VERSION
from .notify import Seen

__all__ = ["CATEGORY", "Column", "Resource", "by_kind"]

CATEGORY = "runbook"
_REGISTRY: dict[str, Resource] = {}


@dataclass(frozen=True)
class Column:
    """An additionalPrinterColumn of `kubectl get`."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    """0 shows in `kubectl get`, 1 only with `-o wide`."""


@dataclass(frozen=True)
class Resource:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[StatusBase]
    description: str
    columns: tuple[Column, ...] = ()
    spec_rules: tuple[dict[str, str], ...] = field(default_factory=tuple)
    """Extra CEL rules on .spec (cross-field rules of the spec model go there too)."""
    operation: bool = True
    """An operation: listed by `kubectl get runbook`, and it tells Notifiers of its
    moments (`spec.notify`, `status.notifications`). False for configuration (Notifier)."""
    one_shot: bool = False
    """Runs once and ends: a re-created copy (by Git) is not run again (core.reruns), and
    the CRD has `spec.runId` to run it again on purpose."""
    targets: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None
    """(kind, name) of the objects in its namespace that an operation changes, from its
    spec: each one that Argo CD or Flux also manages is named, and their sync is paused on
    request (core.gitops)."""
    cluster_scoped: bool = False
    """A cluster-wide configuration object (a policy that spans namespaces) that no
    controller acts on: its CRD is cluster-scoped and has no status (`status` is unused)."""
    moment: Callable[[dict[str, Any]], Seen | None] | None = None
    """The notification moment of a status, when the common reading (core.notify.moment_of)
    does not fit the kind's phases."""

    def __post_init__(self) -> None:
        _REGISTRY[self.kind] = self

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group(self) -> str:
        return GROUP

    @property
    def version(self) -> str:
        return VERSION

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def by_kind(kind: str) -> Resource | None:
    """A kind declared by one of the kinds' api modules (imported by then), if any."""
    return _REGISTRY.get(kind)
