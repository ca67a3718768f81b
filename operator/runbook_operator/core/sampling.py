"""Prometheus asked for the gate: one `Sample`, a value or the problem, never an exception."""

from __future__ import annotations

from ..adapters.prometheus import PrometheusError, query_one
from .gate import Problem, Sample

__all__ = ["sample"]


def sample(url: str, query: str) -> Sample:
    try:
        return Sample.of(query_one(url, query))
    except PrometheusError as exc:
        return Sample.failed(Problem(exc.problem), str(exc))
