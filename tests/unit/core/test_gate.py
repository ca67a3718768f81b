"""The Prometheus gate (logic/gate.py): comparison, `for`, cooldown, onNoData."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from runbook_operator.core.gate import (
    GateState,
    Problem,
    Sample,
    Verdict,
    describe,
    evaluate,
)
from runbook_operator.core.prometheus import Comparison, OnNoData, PrometheusCondition, compare

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def condition(**kwargs: object) -> PrometheusCondition:
    fields: dict[str, object] = {"query": "errors", "threshold": 0.1, **kwargs}
    return PrometheusCondition.model_validate(fields)


def run(
    cond: PrometheusCondition,
    samples: list[tuple[float, Sample | None]],
    *,
    active: bool = False,
    cooldown: float = 0,
) -> list[Verdict]:
    """Feed samples in order, carrying the state like a status would; `active` follows `on`."""
    state: GateState | None = None
    out = []
    for when, sample in samples:
        verdict = evaluate(
            cond, state, sample, at(when), active=active, cooldown=timedelta(seconds=cooldown)
        )
        state, active = verdict.state, verdict.on
        out.append(verdict)
    return out


@pytest.mark.parametrize(
    ("comparison", "value", "holds"),
    [
        (Comparison.GREATER, 0.2, True),
        (Comparison.GREATER, 0.1, False),
        (Comparison.GREATER_OR_EQUAL, 0.1, True),
        (Comparison.LESS, 0.05, True),
        (Comparison.LESS, 0.1, False),
        (Comparison.LESS_OR_EQUAL, 0.1, True),
        (Comparison.EQUAL, 0.1, True),
        (Comparison.NOT_EQUAL, 0.1, False),
        (Comparison.NOT_EQUAL, 0.3, True),
    ],
)
def test_compare(comparison: Comparison, value: float, holds: bool) -> None:
    assert compare(value, comparison, 0.1) is holds


def test_without_for_it_turns_on_at_the_first_holding_sample() -> None:
    [verdict] = run(condition(), [(0, Sample.of(0.5))])
    assert verdict.on
    assert verdict.state == GateState(value=0.5, holds=True, since=at(0), evaluated_at=at(0))


def test_clear_sample_stays_off() -> None:
    [verdict] = run(condition(), [(0, Sample.of(0.01))])
    assert not verdict.on
    assert verdict.state.holds is False
    assert verdict.due_at is None


def test_for_must_elapse_while_the_condition_keeps_holding() -> None:
    verdicts = run(
        condition(**{"for": "30s"}),
        [(0, Sample.of(0.2)), (10, Sample.of(0.3)), (29, Sample.of(0.2)), (30, Sample.of(0.2))],
    )
    assert [v.on for v in verdicts] == [False, False, False, True]
    assert verdicts[1].state.since == at(0)  # the streak continues
    assert verdicts[0].due_at == at(30)


def test_an_interruption_restarts_for() -> None:
    verdicts = run(
        condition(**{"for": "30s"}),
        [(0, Sample.of(0.2)), (20, Sample.of(0.0)), (25, Sample.of(0.2)), (50, Sample.of(0.2))],
    )
    assert [v.on for v in verdicts] == [False, False, False, False]
    assert verdicts[3].state.since == at(25)
    assert verdicts[3].due_at == at(55)


def test_time_passing_without_a_sample_can_turn_it_on() -> None:
    cond = condition(**{"for": "30s"})
    first = evaluate(cond, None, Sample.of(0.5), at(0), active=False)
    later = evaluate(cond, first.state, None, at(31), active=False)
    assert later.on
    assert later.state == first.state  # nothing new was learnt


def test_no_sample_and_no_history_keeps_it_as_it_is() -> None:
    assert not evaluate(condition(), None, None, at(0), active=False).on
    assert evaluate(condition(), None, None, at(0), active=True).on


def test_cooldown_must_elapse_before_turning_off() -> None:
    verdicts = run(
        condition(),
        [(0, Sample.of(0.5)), (5, Sample.of(0.0)), (15, Sample.of(0.0)), (64, Sample.of(0.0))],
        cooldown=60,
    )
    assert [v.on for v in verdicts] == [True, True, True, True]
    assert verdicts[1].due_at == at(65)
    off = evaluate(
        condition(),
        verdicts[-1].state,
        Sample.of(0.0),
        at(65),
        active=True,
        cooldown=timedelta(seconds=60),
    )
    assert off.on is False


def test_a_relapse_during_cooldown_keeps_it_on() -> None:
    verdicts = run(
        condition(),
        [(0, Sample.of(0.5)), (5, Sample.of(0.0)), (30, Sample.of(0.5)), (70, Sample.of(0.0))],
        cooldown=60,
    )
    assert all(v.on for v in verdicts)
    assert verdicts[3].state.since == at(70)


def test_without_cooldown_the_first_clear_sample_turns_it_off() -> None:
    verdicts = run(condition(), [(0, Sample.of(0.5)), (1, Sample.of(0.0))])
    assert [v.on for v in verdicts] == [True, False]


@pytest.mark.parametrize("active", [False, True])
def test_no_data_with_hold_changes_nothing_and_breaks_the_streak(active: bool) -> None:
    cond = condition(**{"for": "30s"})
    first = evaluate(cond, None, Sample.of(0.5), at(0), active=active)
    gap = evaluate(
        cond, first.state, Sample.failed(Problem.NO_DATA, "no series"), at(40), active=active
    )
    assert gap.on is active
    assert gap.state.holds is None and gap.state.since is None
    assert gap.state.error == "no series"
    assert gap.state.evaluated_at == at(40)
    back = evaluate(cond, gap.state, Sample.of(0.5), at(41), active=active)
    assert back.state.since == at(41)  # no credit for the time without data
    assert back.on is active


def test_unreachable_with_activate_counts_as_holding() -> None:
    cond = condition(**{"for": "10s", "onNoData": "Activate"})
    down = Sample.failed(Problem.UNREACHABLE, "connection refused")
    verdicts = run(cond, [(0, down), (5, down), (10, down)])
    assert [v.on for v in verdicts] == [False, False, True]
    assert verdicts[2].state.holds is True
    assert verdicts[2].state.error == "connection refused"
    assert verdicts[2].state.value is None


def test_activate_continues_a_holding_streak() -> None:
    cond = condition(**{"for": "10s", "onNoData": OnNoData.ACTIVATE})
    verdicts = run(cond, [(0, Sample.of(1.0)), (8, Sample.failed(Problem.NO_DATA, "none"))])
    assert verdicts[1].state.since == at(0)


def test_no_data_with_fail_asks_the_caller_to_fail() -> None:
    cond = condition(onNoData="Fail")
    verdict = evaluate(
        cond, None, Sample.failed(Problem.UNREACHABLE, "refused"), at(0), active=False
    )
    assert verdict.failed == "refused (onNoData: Fail)"
    assert verdict.on is False


@pytest.mark.parametrize("problem", [Problem.SEVERAL_SERIES, Problem.BAD_QUERY])
@pytest.mark.parametrize("on_no_data", ["Hold", "Activate", "Fail"])
def test_an_unusable_query_needs_a_human_whatever_on_no_data(
    problem: Problem, on_no_data: str
) -> None:
    cond = condition(onNoData=on_no_data)
    verdict = evaluate(cond, None, Sample.failed(problem, "3 series"), at(0), active=True)
    assert verdict.invalid == "3 series"
    assert verdict.failed is None
    assert verdict.on is True  # nothing flips on a bad answer


def test_nan_is_no_data() -> None:
    sample = Sample.of(math.nan)
    assert sample.problem == Problem.NO_DATA
    assert sample.value is None


def test_describe_while_for_runs() -> None:
    cond = condition(**{"for": "30s"})
    verdict = evaluate(cond, None, Sample.of(0.25), at(0), active=False)
    assert (
        describe(cond, verdict) == "errors = 0.25 (> 0.1 holds since 12:00:00Z; acts at 12:00:30Z)"
    )


def test_describe_without_data() -> None:
    cond = condition()
    verdict = evaluate(cond, None, Sample.failed(Problem.NO_DATA, "no series"), at(0), active=False)
    assert describe(cond, verdict) == "errors = no value (no series) (needs > 0.1)"


def test_describe_clear() -> None:
    cond = condition()
    verdict = evaluate(cond, None, Sample.of(0.0), at(0), active=False)
    assert describe(cond, verdict) == "errors = 0 (> 0.1 clear since 12:00:00Z)"


def test_a_status_model_with_the_same_fields_works_as_previous_state() -> None:
    from runbook_operator.core.prometheus import GateStatus

    stored = GateStatus(value=0.5, holds=True, since=at(0), evaluated_at=at(0))
    verdict = evaluate(condition(**{"for": "5s"}), stored, Sample.of(0.6), at(6), active=False)
    assert verdict.on
