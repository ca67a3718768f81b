"""Building blocks shared by every custom resource's model.

The pydantic models in this package are the one source of the API: the
operator parses objects with them and `crdgen` renders the CRDs from them.
So validation that the API server can do is written here, next to the field,
as OpenAPI keywords and CEL rules (`x-kubernetes-validations`), each with a
message a person understands; `crdgen` carries them into the CRD untouched.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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
    "OnNoData",
    "PrometheusCondition",
    "SecretKeyRef",
    "StatusBase",
    "cel",
    "immutable",
    "parse_duration",
]

GROUP = "ops.mailscore.com"
VERSION = "v1alpha1"


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored.

    Unknown fields are ignored rather than rejected so that an operator one
    version behind still reads objects written by a newer schema.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, no unset nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def cel(rule: str, message: str, **extra: str) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry."""
    return {"rule": rule, "message": message, **extra}


def immutable(what: str) -> dict[str, Any]:
    """A transition rule: the value may be set once, never changed."""
    return cel("self == oldSelf", f"{what} cannot be changed once set; create a new object instead")


# --- durations -------------------------------------------------------------

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s))+$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# CEL string literals reject regex escapes such as \. and \s: use character classes.
_DURATION_CEL = r"^([0-9]+([.][0-9]+)?(h|ms|m|s))+$"


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration (`2h30m`, `90s`, `1.5h`) into a timedelta.

    >>> parse_duration("2h30m")
    datetime.timedelta(seconds=9000)
    """
    if not _DURATION_RE.match(text):
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART_RE.findall(text))
    return timedelta(seconds=seconds)


def _positive_duration(text: str) -> str:
    if parse_duration(text) <= timedelta(0):
        raise ValueError(f"{text!r} must be longer than zero")
    return text


GoDuration = Annotated[
    str,
    AfterValidator(_positive_duration),
    Field(
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches('{_DURATION_CEL}')",
                    "must be a duration such as 30m, 2h or 1h30m (units h, m, s, ms)",
                ),
                cel(
                    f"!self.matches('{_DURATION_CEL}') || duration(self) > duration('0s')",
                    "must be longer than zero",
                ),
            ]
        },
    ),
]
"""A positive Go-style duration string, e.g. `2h30m`."""


# --- cron ------------------------------------------------------------------

_CRON_FIELD = r"[0-9A-Za-z*?/,-]+"
_CRON_CEL = (
    r"^(@(yearly|annually|monthly|weekly|daily|hourly)|("
    + _CRON_FIELD
    + r"[ ]+){4}"
    + _CRON_FIELD
    + r")$"
)


def _valid_cron(text: str) -> str:
    from croniter import croniter  # pure computation, no I/O

    if not croniter.is_valid(text):
        raise ValueError(f"{text!r} is not a cron expression like '0 2 * * 0'")
    return text


CronSchedule = Annotated[
    str,
    AfterValidator(_valid_cron),
    Field(
        max_length=128,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches('{_CRON_CEL}')",
                    "must be a cron expression with five fields, e.g. '0 2 * * 0' "
                    "(Sundays 02:00), or @daily/@weekly/@monthly",
                )
            ]
        },
    ),
]
"""A standard five-field cron expression, or @daily and friends."""


# --- references ------------------------------------------------------------

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

ObjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=_DNS_SUBDOMAIN,
    ),
]


class DeploymentRef(ApiModel):
    """A Deployment in the same namespace as the object naming it."""

    name: ObjectName
    """Name of the Deployment."""


class SecretKeyRef(ApiModel):
    """A key in a Secret in the same namespace."""

    name: ObjectName
    """Name of the Secret."""
    key: Annotated[str, Field(min_length=1, max_length=253)]
    """Key inside the Secret's data."""


# --- Prometheus gates ------------------------------------------------------


class Comparison(StrEnum):
    GREATER = ">"
    GREATER_OR_EQUAL = ">="
    LESS = "<"
    LESS_OR_EQUAL = "<="
    EQUAL = "=="
    NOT_EQUAL = "!="


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


# --- status ----------------------------------------------------------------


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


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """The fields of metav1.Condition, so kstatus, Flux and `kubectl wait` read them."""

    type: Annotated[str, Field(max_length=316)]
    """Type of condition in CamelCase, e.g. Ready, Reconciling, Stalled."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, Field(max_length=1024)]
    """A CamelCase word for programs."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """A sentence for people."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: int | None = None
    """The .metadata.generation the condition was computed from."""


class StatusBase(ApiModel):
    """Status fields every resource has."""

    phase: str | None = None
    """Where the operation stands; see the kind's description for the values."""
    observed_generation: int | None = None
    """The .metadata.generation the operator last acted on."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, Reconciling and Stalled (kstatus), and kind-specific ones."""
