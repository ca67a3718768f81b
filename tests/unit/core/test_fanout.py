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


def test_calls_started_beside_may_gather_however_many_run_at_once() -> None:
    """A call started beside a pass may gather reads of its own: with every
    thread busy with such a call, reads queued in the same pool would never run."""
    release = threading.Event()

    def read() -> int:
        release.wait(5)
        return 1

    def prefetch() -> list[int]:
        return fanout.gather([read, read, read])

    started = [fanout.start(prefetch) for _ in range(fanout.WORKERS * 3)]
    release.set()
    assert [f.result(timeout=20) for f in started] == [[1, 1, 1]] * (fanout.WORKERS * 3)


def test_a_start_from_a_pool_thread_runs_there_and_then() -> None:
    inner = fanout.start(lambda: fanout.start(threading.current_thread).result())
    outer_thread = inner.result(timeout=5)
    assert outer_thread.name.startswith("runbook-beside")
