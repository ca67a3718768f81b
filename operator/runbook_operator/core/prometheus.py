"""A Prometheus condition as the API states it, and the one way values are compared.

Used by EmergencyScale triggers, armed Rollbacks and health checks alike.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .fields import GoDuration
from .model import ApiModel

__all__ = ["Comparison", "GateStatus", "OnNoData", "PrometheusCondition", "compare"]


class Comparison(StrEnum):
    GREATER = ">"
    GREATER_OR_EQUAL = ">="
    LESS = "<"
    LESS_OR_EQUAL = "<="
    EQUAL = "=="
    NOT_EQUAL = "!="


_COMPARE = {
    Comparison.GREATER: lambda a, b: a > b,
    Comparison.GREATER_OR_EQUAL: lambda a, b: a >= b,
    Comparison.LESS: lambda a, b: a < b,
    Comparison.LESS_OR_EQUAL: lambda a, b: a <= b,
    Comparison.EQUAL: lambda a, b: a == b,
    Comparison.NOT_EQUAL: lambda a, b: a != b,
}


def compare(value: float, comparison: Comparison, threshold: float) -> bool:
    """Whether `value <comparison> threshold` holds."""
    return bool(_COMPARE[comparison](value, threshold))


class OnNoData(StrEnum):
    HOLD = "Hold"
    """Keep the current state (the default): do not act, do not undo."""
    ACTIVATE = "Activate"
    """Treat missing data or an unreachable Prometheus as the condition holding."""
    FAIL = "Fail"
    """Fail the operation."""


class PrometheusCondition(ApiModel):
    """A PromQL query compared with a threshold, which must hold for a while."""

    url: Annotated[str, Field(max_length=2048)] | None = None
    """Prometheus base URL, e.g. http://prometheus:9090. Defaults to the operator's setting."""
    query: Annotated[str, Field(min_length=1, max_length=4096)]
    """PromQL that returns exactly one series, e.g. a 5xx rate or a p95 latency."""
    comparison: Comparison = Comparison.GREATER
    """How the query's value is compared with the threshold."""
    threshold: float
    """The value compared with the query's result."""
    for_: Annotated[GoDuration | None, Field(alias="for")] = None
    """How long the condition must hold before it counts, e.g. 2m. Default: at once."""
    on_no_data: OnNoData = OnNoData.HOLD
    """What to do when the query returns nothing or Prometheus cannot be reached."""


class GateStatus(ApiModel):
    """The last evaluation of a Prometheus condition (a trigger or a gate)."""

    value: float | None = None
    """The query's last value; unset when there was no data."""
    holds: bool | None = None
    """Whether the comparison held at the last evaluation; unset when it could not be told."""
    since: datetime | None = None
    """Since when it has held (or been clear) without interruption."""
    evaluated_at: datetime | None = None
    """When Prometheus was last asked."""
    error: str | None = None
    """Why the last evaluation had no value (no data, unreachable, several series)."""
