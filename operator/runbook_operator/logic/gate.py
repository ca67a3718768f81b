"""Transitional: the gate lives in runbook_operator.core.gate."""

from __future__ import annotations

from ..core.gate import GateRecord, GateState, Problem, Sample, Verdict, describe, evaluate
from ..core.prometheus import compare

__all__ = [
    "GateRecord",
    "GateState",
    "Problem",
    "Sample",
    "Verdict",
    "compare",
    "describe",
    "evaluate",
]
