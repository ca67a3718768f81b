"""Field types every kind shares: durations, cron schedules, time zones, references.

Each carries its API-server validation (pattern or CEL rule, with a message) and the
same check in Python, so what the API server accepts the operator can use. Where the
two could still disagree, the Python check is the stricter one and the operator says
so in a condition (core.spec), never in a retry loop.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field

from .model import ApiModel, cel

__all__ = [
    "MIN_DURATION",
    "CronSchedule",
    "DeploymentRef",
    "GoDuration",
    "ObjectName",
    "SecretKeyRef",
    "TimeZone",
    "Workload",
    "WorkloadKind",
    "parse_duration",
    "span",
]

# --- durations -------------------------------------------------------------

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s))+$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# CEL string literals reject regex escapes such as \. and \s: use character classes.
_DURATION_CEL = r"^([0-9]+([.][0-9]+)?(h|ms|m|s))+$"
MIN_DURATION = timedelta(seconds=1)
"""The shortest duration any field takes. Shorter ones (0.0000001s) are zero to some
clocks and not to others; nothing in a runbook is timed that finely."""


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration (`2h30m`, `90s`, `1.5h`) into a timedelta.

    >>> parse_duration("2h30m")
    datetime.timedelta(seconds=9000)
    """
    if not _DURATION_RE.match(text):
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART_RE.findall(text))
    return timedelta(seconds=seconds)


def _at_least_a_second(text: str) -> str:
    if parse_duration(text) < MIN_DURATION:
        raise ValueError(f"{text!r} is shorter than 1s; give at least 1s")
    return text


GoDuration = Annotated[
    str,
    AfterValidator(_at_least_a_second),
    Field(
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches('{_DURATION_CEL}')",
                    "must be a duration such as 30m, 2h or 1h30m (units h, m, s, ms)",
                ),
                cel(
                    f"!self.matches('{_DURATION_CEL}') || duration(self) >= duration('1s')",
                    "must be at least 1s",
                ),
            ]
        },
    ),
]
"""A Go-style duration string of at least one second, e.g. `2h30m`."""


def span(delta: timedelta) -> str:
    """A duration for people: 26h, 2h30m, 45s."""
    seconds = round(abs(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not (hours or minutes) else "")
    return "".join(parts)


# --- cron and time zones ---------------------------------------------------

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


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"{name!r} is not an IANA time zone like Europe/Berlin") from exc
    return name


TimeZone = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"),
    AfterValidator(_known_time_zone),
]
"""An IANA time zone name such as Europe/Berlin or America/New_York. (The constraints come
before the validator: after it, pydantic leaves the pattern out of the JSON Schema, and
the API server would no longer check it.)"""


# --- references ------------------------------------------------------------

_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=_DNS_SUBDOMAIN)]


class WorkloadKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"


class Workload(ApiModel):
    """A Deployment or StatefulSet in the same namespace, as status records it."""

    kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    """Deployment or StatefulSet."""
    name: str
    """The workload."""


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
