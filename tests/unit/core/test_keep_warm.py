"""The client's connections are used at start-up and then on a period, whatever fails."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runbook_operator.adapters.kube import IDLE_CLOSE_SECONDS
from runbook_operator.core.runtime import WARM_SECONDS, keep_warm


async def _turns(use_fails: bool, wanted: int) -> list[str]:
    calls: list[str] = []
    done = asyncio.Event()

    def use() -> None:
        calls.append("used")
        if len(calls) >= wanted:
            done.set()
        if use_fails:
            raise OSError("connection refused")

    task = asyncio.create_task(keep_warm(use, 0.001))
    await asyncio.wait_for(done.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return calls


def test_used_at_once_and_again_on_every_turn() -> None:
    assert len(asyncio.run(_turns(use_fails=False, wanted=3))) >= 3


def test_a_failure_is_logged_and_the_next_turn_comes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="runbook_operator"):
        calls = asyncio.run(_turns(use_fails=True, wanted=2))
    assert len(calls) >= 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned and all("connection refused" in m for m in warned)
    assert all("API server" in m for m in warned)


def test_the_period_is_well_inside_the_api_servers_idle_timeout() -> None:
    assert WARM_SECONDS <= IDLE_CLOSE_SECONDS * 0.75
