"""What the API server needs to know about a kind beyond its schema.

Each kind's module declares one `Resource`: names, printer columns and the
spec/status models. `crdgen` turns it into a CustomResourceDefinition and the
handlers use it to address the kind, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from .common import GROUP, VERSION

__all__ = ["CATEGORY", "Column", "Resource"]

CATEGORY = "runbook"


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
    status: type[BaseModel]
    description: str
    columns: tuple[Column, ...] = ()
    spec_rules: tuple[dict[str, str], ...] = field(default_factory=tuple)
    """Extra CEL rules on .spec (cross-field rules of the spec model go there too)."""

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
