"""A health check as the API states it: an HTTP endpoint or a Prometheus query.

Shared by every kind that must see the service healthy before it is Ready (a
MaintenanceWindow after the originals are back, a Restart or an ImageUpdate after
its rollouts). Asking is core.probing's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from .fields import GoDuration, parse_duration, span
from .model import ApiModel, cel
from .prometheus import Comparison

__all__ = ["HealthCheck", "HttpCheck", "PrometheusCheck", "Url"]

Url = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")]


class HttpCheck(ApiModel):
    """An HTTP GET that must answer with the expected status."""

    url: Url
    """The URL to GET, e.g. http://mail-score-frontend/healthz."""
    expected_status: Annotated[int, Field(ge=100, le=599)] | None = None
    """The status code wanted. Default: any 2xx."""


class PrometheusCheck(ApiModel):
    """A PromQL query whose value must compare true with the threshold."""

    url: Url | None = None
    """Prometheus base URL. Default: the operator's RUNBOOK_PROMETHEUS_URL."""
    query: Annotated[str, Field(min_length=1, max_length=4096)]
    """PromQL returning one series, e.g. the 5xx ratio of the frontend."""
    comparison: Comparison = Comparison.LESS
    """How the value is compared with the threshold; healthy when the comparison holds."""
    threshold: float
    """The value compared with the query's result."""


class HealthCheck(ApiModel):
    """What must hold after the change, before the operation is Ready."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.http) != has(self.prometheus)",
                    "give exactly one of http or prometheus",
                )
            ]
        }
    }

    http: HttpCheck | None = None
    """Healthy when this URL answers as expected."""
    prometheus: PrometheusCheck | None = None
    """Healthy when this query compares true."""
    timeout: GoDuration = "5m"
    """How long to keep trying before the operation is marked Failed."""

    def given_up(self, since: datetime, now: datetime, failed: str | None = None) -> str | None:
        """Why to stop asking while the service is unhealthy: the check can never pass as
        configured (`failed`), or `timeout` has passed since `since` (when the rollouts
        finished); None while it is still worth asking."""
        if failed is not None:
            return failed
        limit = parse_duration(self.timeout)
        if now - since > limit:
            return f"the health check did not pass within {span(limit)}"
        return None
