"""HealthReport's models: what pydantic refuses matches what the CRD refuses."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from runbook_operator.kinds.healthreport.api import CheckType, HealthReportSpec

HTTP = {"name": "frontend", "http": {"url": "http://mail-score-frontend/health"}}


def spec(**extra: Any) -> HealthReportSpec:
    return HealthReportSpec.model_validate({"checks": [HTTP], **extra})


def test_defaults() -> None:
    s = spec()
    assert s.timeout == "10s" and s.interval is None
    assert s.checks[0].type == CheckType.HTTP and s.checks[0].timeout is None


@pytest.mark.parametrize(
    "check",
    [
        {"name": "w", "workloads": {"deployments": ["mail-score-backend"]}},
        {
            "name": "db",
            "postgres": {"host": "postgres", "database": "m", "credentials": {"secretName": "pg"}},
        },
        {"name": "cache", "redis": {"host": "redis"}},
        {"name": "p95", "prometheus": {"query": "up", "threshold": 1, "comparison": ">="}},
    ],
)
def test_each_type_is_told_by_its_field(check: dict[str, Any]) -> None:
    parsed = HealthReportSpec.model_validate({"checks": [check]}).checks[0]
    assert parsed.type.value == next(k for k in check if k != "name")


@pytest.mark.parametrize(
    "body",
    [
        {"checks": []},
        {"checks": [HTTP], "interval": "5s"},
        {"checks": [HTTP], "timeout": "-1s"},
        {"checks": [HTTP], "timeout": "10m"},
        {"checks": [{"name": "x", "http": {"url": "ftp://x"}}]},
        {"checks": [{"name": "x", "redis": {"host": "r", "maxMemoryPercent": 101}}]},
        {"checks": [{"name": "x", "prometheus": {"query": "up", "threshold": "high"}}]},
        {
            "checks": [
                {"name": "x", "prometheus": {"query": "up", "threshold": 1, "comparison": "=>"}}
            ]
        },
        {"checks": [{"name": "Bad_Name", "http": {"url": "http://x"}}]},
    ],
)
def test_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HealthReportSpec.model_validate(body)


def test_interval_of_ten_seconds_is_enough() -> None:
    assert spec(interval="10s").interval == "10s"
