"""Side-by-side requests: answers in order, every call ended before an error is raised."""

from __future__ import annotations

import threading
import time

import pytest

from runbook_operator.core import fanout


def test_answers_come_back_in_the_order_asked() -> None:
    def slow(value: int, seconds: float) -> int:
        time.sleep(seconds)
        return value

    calls = [lambda: slow(1, 0.05), lambda: slow(2, 0.0), lambda: slow(3, 0.01)]
    assert fanout.gather(calls) == [1, 2, 3]


def test_the_calls_run_side_by_side() -> None:
    barrier = threading.Barrier(3, timeout=5)
    assert fanout.gather([barrier.wait, barrier.wait, barrier.wait]) is not None


def test_an_error_is_raised_once_every_call_ended() -> None:
    ended = threading.Event()

    def fails() -> None:
        raise ValueError("no")

    def slow() -> None:
        time.sleep(0.05)
        ended.set()

    with pytest.raises(ValueError, match="no"):
        fanout.gather([slow, fails])
    assert ended.is_set()


def test_one_call_runs_in_the_calling_thread() -> None:
    assert fanout.gather([threading.current_thread]) == [threading.current_thread()]
