"""HealthReport: the runbook's "check overall system status" as an object.

A HealthReport runs its checks (workloads, PostgreSQL, Redis, HTTP endpoints, Prometheus
thresholds) in parallel, each with its own timeout, once or every `interval`, and says
in status which passed, what each measured and against what. Ready is True only while
every check passes; a check that starts failing posts a Warning event, one that
recovers a Normal one, each once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field

from ...core.conditions import StatusBase
from ...core.fields import GoDuration, ObjectName, parse_duration
from ...core.health import HttpCheck, PrometheusCheck
from ...core.model import ApiModel, cel
from ...core.notify import Seen, moment_of
from ...core.postgres import PostgresConnection
from ...core.redis import RedisRef
from ...core.resource import Column, Resource

__all__ = [
    "HEALTH_REPORT",
    "MAX_CHECKS",
    "CheckResult",
    "CheckSpec",
    "CheckType",
    "HealthReportSpec",
    "HealthReportStatus",
    "HttpProbe",
    "PostgresProbe",
    "RedisProbe",
    "ReportPhase",
    "WorkloadsProbe",
]

MAX_CHECKS = 32
MAX_WORKLOADS = 32
MIN_INTERVAL_SECONDS = 10
MAX_TIMEOUT_SECONDS = 300
Percent = Annotated[int, Field(ge=1, le=100)]
CheckName = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]


def _timeout_bound(text: str) -> str:
    if parse_duration(text).total_seconds() < 1:
        raise ValueError(f"{text!r} is shorter than 1s; give a check at least 1s")
    if parse_duration(text).total_seconds() > MAX_TIMEOUT_SECONDS:
        raise ValueError(f"{text!r} is longer than 5m; a check must answer within 5m")
    return text


def _positive(text: str) -> str:
    if parse_duration(text).total_seconds() <= 0:
        raise ValueError(f"{text!r} is not above 0")
    return text


def _interval_bound(text: str) -> str:
    if parse_duration(text).total_seconds() < MIN_INTERVAL_SECONDS:
        raise ValueError(f"{text!r} is shorter than 10s; run the report at most every 10s")
    return text


_DUR = "self.matches('^([0-9]+([.][0-9]+)?(h|ms|m|s))+$')"
_FORMAT = cel(_DUR, "must be a duration such as 30m, 2h or 1h30m (units h, m, s, ms)")


def _duration(*rules: dict[str, Any]) -> Any:
    """A duration string with the format rule and these (one list: a second
    `json_schema_extra` would replace the first, not add to it)."""
    every: list[Any] = [_FORMAT, *rules]
    return Field(max_length=64, json_schema_extra={"x-kubernetes-validations": every})


Timeout = Annotated[
    str,
    _duration(
        cel(f"!{_DUR} || duration(self) >= duration('1s')", "a timeout is at least 1s"),
        cel(f"!{_DUR} || duration(self) <= duration('5m')", "a timeout is at most 5m"),
    ),
    AfterValidator(_timeout_bound),
]
"""How long a check may take: 1s to 5m."""
Latency = Annotated[
    str,
    _duration(cel(f"!{_DUR} || duration(self) > duration('0s')", "a latency must be above 0")),
    AfterValidator(_positive),
]
"""A duration that may be under a second, e.g. 500ms."""
Interval = Annotated[
    str,
    _duration(
        cel(f"!{_DUR} || duration(self) >= duration('10s')", "interval must be at least 10s")
    ),
    AfterValidator(_interval_bound),
]
"""How often a report runs: at least every 10s."""


class WorkloadsProbe(ApiModel):
    """Deployments and StatefulSets in this namespace: all replicas ready, every pod running."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "(has(self.deployments) ? size(self.deployments) : 0) + "
                    "(has(self.statefulSets) ? size(self.statefulSets) : 0) > 0",
                    "name at least one Deployment or StatefulSet",
                )
            ]
        }
    }

    deployments: Annotated[list[ObjectName], Field(max_length=MAX_WORKLOADS)] = []
    """Deployments by name, e.g. mail-score-backend."""
    stateful_sets: Annotated[list[ObjectName], Field(max_length=MAX_WORKLOADS)] = []
    """StatefulSets by name, e.g. postgres."""
    window: GoDuration = "15m"
    """How far back container restarts and Warning events are counted."""
    max_restarts: Annotated[int, Field(ge=0)] | None = None
    """Fail when more containers than this restarted within `window`. Default: report only."""
    max_warning_events: Annotated[int, Field(ge=0)] | None = None
    """Fail when more Warning events than this concern the workloads or their pods within
    `window`. Default: report only."""


class PostgresProbe(PostgresConnection):
    """A PostgreSQL database: reachable (like pg_isready), connections, long queries, lag."""

    max_connections_percent: Percent = 80
    """Fail when the client connections exceed this share of max_connections."""
    long_query: GoDuration = "30s"
    """A query active longer than this counts as long-running; any such query fails the
    check (its text is shown only with showQueries)."""
    show_queries: bool = False
    """Put the long-running queries' text (first 200 characters) into status. They may
    hold data; off by default."""
    max_replication_lag: GoDuration | None = None
    """Fail when a standby's replay lag exceeds this (pg_stat_replication). Default: report
    only."""


class RedisProbe(RedisRef):
    """A Redis server: PING answers, used_memory against maxmemory."""

    max_memory_percent: Percent = 90
    """Fail when used_memory exceeds this share of maxmemory (a server without maxmemory
    never fails on memory)."""


class HttpProbe(HttpCheck):
    """An HTTP GET: the expected status (default any 2xx), within the latency allowed."""

    max_latency: Latency | None = None
    """Fail when the answer takes longer than this, e.g. 500ms. Default: only the timeout."""


class CheckType(StrEnum):
    WORKLOADS = "workloads"
    POSTGRES = "postgres"
    REDIS = "redis"
    HTTP = "http"
    PROMETHEUS = "prometheus"


class CheckSpec(ApiModel):
    """One check: a name and exactly one of workloads, postgres, redis, http, prometheus."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "[has(self.workloads), has(self.postgres), has(self.redis), has(self.http), "
                    "has(self.prometheus)].filter(x, x).size() == 1",
                    "each check needs exactly one of workloads, postgres, redis, http or "
                    "prometheus",
                )
            ]
        }
    }

    name: CheckName
    """Unique in this report, e.g. backend, database, error-rate."""
    timeout: Timeout | None = None
    """How long this check may take. Default: the report's `timeout`."""
    workloads: WorkloadsProbe | None = None
    postgres: PostgresProbe | None = None
    redis: RedisProbe | None = None
    http: HttpProbe | None = None
    prometheus: PrometheusCheck | None = None

    @property
    def type(self) -> CheckType:
        for kind in CheckType:
            if getattr(self, kind.value) is not None:
                return kind
        raise ValueError(f"check {self.name} has no type")


class HealthReportSpec(ApiModel):
    """What to check, how often, and how long each check may take."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "self.checks.all(c, self.checks.exists_one(d, d.name == c.name))",
                    "check names must be unique",
                )
            ]
        }
    }

    checks: Annotated[list[CheckSpec], Field(min_length=1, max_length=MAX_CHECKS)]
    """The checks, at least one; they run in parallel."""
    interval: Interval | None = None
    """Run again this long after each run, e.g. 1m (at least 10s). Default: run once (and
    again whenever the spec changes)."""
    timeout: Timeout = "10s"
    """How long each check may take unless it says otherwise; a check that takes longer
    fails with "timed out", the others still report."""


class ReportPhase(StrEnum):
    PASSING = "Passing"
    """Every check passed at the last run."""
    FAILING = "Failing"
    """At least one check failed at the last run."""


class CheckResult(ApiModel):
    """One check's outcome at the last run."""

    name: str
    """The check's name."""
    type: CheckType
    """workloads, postgres, redis, http or prometheus."""
    passed: bool
    """Whether it passed."""
    value: str | None = None
    """What was measured, e.g. 1/2 ready, 41/100 connections (41%), 0.012, HTTP 200 in 35ms."""
    threshold: str | None = None
    """What it was measured against, e.g. all ready, <= 80%, < 0.05."""
    message: str = ""
    """In words, with the numbers."""
    at: datetime
    """When it was measured."""
    measures: dict[str, float] = {}
    """The numbers behind value, by name (e.g. longQueries, longestQuerySeconds)."""
    queries: list[str] = []
    """With postgres.showQueries only: the long-running queries' text, longest first."""


class HealthReportStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset()

    phase: ReportPhase | None = None
    """Passing or Failing."""
    checks: list[CheckResult] = []
    """Every check's last outcome, in spec order."""
    summary: str | None = None
    """Checks passed of checks run, e.g. 7/8."""
    first_failing: str | None = None
    """The name of the first check (in spec order) that failed."""
    last_run: datetime | None = None
    """When the last run ended."""
    next_run: datetime | None = None
    """With an interval: when the next run is due."""

    def result(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)


def moment(status: dict[str, Any]) -> Seen | None:
    """A report never finishes: failing is told as failed, and passing (again) as
    completed, which resolves what failing opened (a Statuspage incident)."""
    return moment_of(status, frozenset({ReportPhase.PASSING.value}))


HEALTH_REPORT = Resource(
    kind="HealthReport",
    plural="healthreports",
    short_names=("hr", "health"),
    spec=HealthReportSpec,
    status=HealthReportStatus,
    moment=moment,
    description=(
        "Check overall system status like the runbook's first look in an incident: "
        "workloads, PostgreSQL, Redis, HTTP endpoints and Prometheus thresholds, in "
        "parallel, each with a timeout, once or every interval."
    ),
    columns=(
        Column("Passed", ".status.summary"),
        Column("First-Failing", ".status.firstFailing"),
        Column("Last-Run", ".status.lastRun", type="date"),
        Column("Phase", ".status.phase", priority=1),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
        Column("Message", ".status.conditions[?(@.type=='Ready')].message", priority=1),
    ),
)
