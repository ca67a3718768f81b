"""Shared field types: durations, cron, Prometheus conditions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from runbook_operator.core.fields import CronSchedule, GoDuration, parse_duration
from runbook_operator.core.prometheus import PrometheusCondition

DURATION = TypeAdapter(GoDuration)
CRON = TypeAdapter(CronSchedule)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2h30m", 9000),
        ("90s", 90),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("1h0m0s", 3600),
        ("24h", 86400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "h", "2 h", "-1h", "1d", "1h-30m", "PT1H", "abc"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
    with pytest.raises(ValidationError):
        DURATION.validate_python(text)


@pytest.mark.parametrize("text", ["0s", "0.0000001s", "999ms", "0.5s"])
def test_durations_under_a_second_are_refused(text: str) -> None:
    """0.0000001s used to pass the API server (it is over zero) and be zero to Python."""
    with pytest.raises(ValidationError, match="shorter than 1s"):
        DURATION.validate_python(text)


def test_the_api_server_refuses_durations_under_a_second_too() -> None:
    rules = [r["rule"] for r in DURATION.json_schema()["x-kubernetes-validations"]]
    assert any("duration(self) >= duration('1s')" in r for r in rules)


@pytest.mark.parametrize(
    "text", ["0 2 * * 0", "*/5 * * * *", "@daily", "0 0 1 1 *", "30 3 * * MON"]
)
def test_good_cron(text: str) -> None:
    assert CRON.validate_python(text) == text


@pytest.mark.parametrize("text", ["", "0 2 * *", "61 * * * *", "every day", "* * * * * * * *"])
def test_bad_cron(text: str) -> None:
    with pytest.raises(ValidationError):
        CRON.validate_python(text)


def test_prometheus_condition_wire_names() -> None:
    cond = PrometheusCondition.model_validate(
        {"query": "sum(rate(x[1m]))", "threshold": 0.05, "for": "2m", "onNoData": "Activate"}
    )
    assert cond.for_ == "2m"
    assert cond.wire()["for"] == "2m"
    assert cond.wire()["onNoData"] == "Activate"
    assert cond.wire()["comparison"] == ">"
