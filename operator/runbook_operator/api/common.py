"""Transitional: the shared model pieces now live in runbook_operator.core."""

from __future__ import annotations

from ..core.conditions import Condition, ConditionStatus, StatusBase
from ..core.fields import (
    CronSchedule,
    DeploymentRef,
    GoDuration,
    ObjectName,
    SecretKeyRef,
    TimeZone,
    parse_duration,
)
from ..core.model import GROUP, VERSION, ApiModel, cel, immutable
from ..core.prometheus import Comparison, GateStatus, OnNoData, PrometheusCondition

__all__ = [
    "GROUP",
    "VERSION",
    "ApiModel",
    "Comparison",
    "Condition",
    "ConditionStatus",
    "CronSchedule",
    "DeploymentRef",
    "GateStatus",
    "GoDuration",
    "ObjectName",
    "OnNoData",
    "PrometheusCondition",
    "SecretKeyRef",
    "StatusBase",
    "TimeZone",
    "cel",
    "immutable",
    "parse_duration",
]
