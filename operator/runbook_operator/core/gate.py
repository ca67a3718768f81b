"""The Prometheus gate: when does a condition count as holding, and when as clear again?

Shared by every kind that acts on a Prometheus signal (EmergencyScale triggers,
armed Rollbacks). Pure: the caller asks Prometheus (adapters/prometheus.py),
passes the answer in as a `Sample`, and stores the returned `GateState` in its
own status; the next call gets it back. Everything time-related is derived from
that state and `now`, so an operator restarted at any moment carries on where
it was.

Rules:
- The query's one value is compared with the threshold (`comparison`).
- `since` is when the current streak started: the comparison has held (or been
  clear) at every evaluation since then.
- Off -> on: the condition has held for `for` (at once without `for`).
- On -> off: the condition has been clear for `cooldown` (at once without one).
- No value (no series, NaN, Prometheus unreachable) is handled as `onNoData`
  says: Hold keeps on/off as it is and breaks the streak (no evidence either
  way); Activate counts as holding; Fail asks the caller to fail.
- Several series, or a query Prometheus refuses, need a human: `invalid` says
  why, and on/off stays as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from .fields import parse_duration
from .prometheus import OnNoData, PrometheusCondition, compare

__all__ = [
    "GateRecord",
    "GateState",
    "Problem",
    "Sample",
    "Verdict",
    "describe",
    "evaluate",
]


class Problem(StrEnum):
    """Why a sample has no usable value."""

    NO_DATA = "NoData"
    """The query returned no series (or NaN)."""
    UNREACHABLE = "Unreachable"
    """Prometheus could not be asked (connection refused, timeout, HTTP 5xx)."""
    SEVERAL_SERIES = "SeveralSeries"
    """The query returned more than one series: which one counts is unclear."""
    BAD_QUERY = "BadQuery"
    """Prometheus refused the query (PromQL error), or it returned a range or a string."""
    URL_NOT_ALLOWED = "URLNotAllowed"
    """The operator's RUNBOOK_ALLOWED_URLS does not allow the Prometheus URL: never asked."""


NEEDS_HUMAN = frozenset({Problem.SEVERAL_SERIES, Problem.BAD_QUERY, Problem.URL_NOT_ALLOWED})


@dataclass(frozen=True)
class Sample:
    """One answer from Prometheus: a value, or the problem that prevented one."""

    value: float | None = None
    problem: Problem | None = None
    detail: str = ""

    @classmethod
    def of(cls, value: float) -> Sample:
        if math.isnan(value):
            return cls(problem=Problem.NO_DATA, detail="the query returned NaN")
        return cls(value=value)

    @classmethod
    def failed(cls, problem: Problem, detail: str) -> Sample:
        return cls(problem=problem, detail=detail)


class GateRecord(Protocol):
    """What the gate needs back from the caller's status (any model with these fields)."""

    @property
    def value(self) -> float | None: ...

    @property
    def holds(self) -> bool | None: ...

    @property
    def since(self) -> datetime | None: ...

    @property
    def evaluated_at(self) -> datetime | None: ...

    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True)
class GateState:
    """To be stored in the caller's status after each evaluation."""

    value: float | None = None
    holds: bool | None = None
    """None: unknown (no data with onNoData Hold, or an invalid query)."""
    since: datetime | None = None
    evaluated_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class Verdict:
    state: GateState
    on: bool
    """Whether the gated action should be in effect now."""
    due_at: datetime | None = None
    """When `on` flips if the condition stays as it is (end of `for` or of the cooldown)."""
    failed: str | None = None
    """onNoData is Fail and there was no value: why. The caller fails the operation."""
    invalid: str | None = None
    """The query needs a human (several series, refused): why."""
    problem: Problem | None = None
    """With `invalid`: which problem (URLNotAllowed is named as such in conditions)."""


def _for(condition: PrometheusCondition) -> timedelta:
    return parse_duration(condition.for_) if condition.for_ else timedelta(0)


def evaluate(
    condition: PrometheusCondition,
    previous: GateRecord | None,
    sample: Sample | None,
    now: datetime,
    *,
    active: bool,
    cooldown: timedelta = timedelta(0),
) -> Verdict:
    """The gate after one more sample (or, with `sample=None`, after time passed).

    `active`: whether the gated action is in effect now (it stays until the
    condition has been clear for `cooldown`).
    """
    if sample is None:
        return _decide(condition, _kept(previous), now, active, cooldown)
    if sample.problem in NEEDS_HUMAN:
        state = GateState(evaluated_at=now, error=sample.detail or str(sample.problem))
        return Verdict(state=state, on=active, invalid=state.error, problem=sample.problem)
    if sample.value is None:
        return _no_data(condition, previous, sample, now, active, cooldown)
    holds = compare(sample.value, condition.comparison, condition.threshold)
    state = GateState(
        value=sample.value,
        holds=holds,
        since=_streak_start(previous, holds, now),
        evaluated_at=now,
    )
    return _decide(condition, state, now, active, cooldown)


def _kept(previous: GateRecord | None) -> GateState:
    if previous is None:
        return GateState()
    return GateState(
        value=previous.value,
        holds=previous.holds,
        since=previous.since,
        evaluated_at=previous.evaluated_at,
        error=previous.error,
    )


def _streak_start(previous: GateRecord | None, holds: bool, now: datetime) -> datetime:
    if previous is not None and previous.holds is holds and previous.since is not None:
        return previous.since
    return now


def _no_data(
    condition: PrometheusCondition,
    previous: GateRecord | None,
    sample: Sample,
    now: datetime,
    active: bool,
    cooldown: timedelta,
) -> Verdict:
    error = sample.detail or str(sample.problem)
    if condition.on_no_data == OnNoData.FAIL:
        state = GateState(evaluated_at=now, error=error)
        return Verdict(state=state, on=active, failed=f"{error} (onNoData: Fail)")
    if condition.on_no_data == OnNoData.ACTIVATE:
        state = GateState(
            holds=True, since=_streak_start(previous, True, now), evaluated_at=now, error=error
        )
        return _decide(condition, state, now, active, cooldown)
    # Hold: no evidence either way; nothing flips, and the streak starts again with data.
    return Verdict(state=GateState(evaluated_at=now, error=error), on=active)


def _decide(
    condition: PrometheusCondition,
    state: GateState,
    now: datetime,
    active: bool,
    cooldown: timedelta,
) -> Verdict:
    if state.holds is None or state.since is None:
        return Verdict(state=state, on=active)
    if not active and state.holds:
        due = state.since + _for(condition)
        return Verdict(state=state, on=now >= due, due_at=due)
    if active and not state.holds:
        due = state.since + cooldown
        return Verdict(state=state, on=now < due, due_at=due)
    return Verdict(state=state, on=active)


def describe(condition: PrometheusCondition, verdict: Verdict) -> str:
    """One sentence about the gate for a condition message, e.g.
    `errors = 0.2 (> 0.1 holds since 12:00:01Z; acts at 12:00:31Z)`."""
    state = verdict.state
    if state.value is None:
        shown = f"no value ({state.error})" if state.error else "not evaluated yet"
    else:
        shown = f"{state.value:g}"
    test = f"{condition.comparison.value} {condition.threshold:g}"
    if state.holds is None or state.since is None:
        return f"{condition.query} = {shown} (needs {test})"
    verb = "holds" if state.holds else "clear"
    pending = verdict.due_at is not None and verdict.on != state.holds
    due = f"; acts at {_clock(verdict.due_at)}" if pending and verdict.due_at else ""
    return f"{condition.query} = {shown} ({test} {verb} since {_clock(state.since)}{due})"


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%SZ")
