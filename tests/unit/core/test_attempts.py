"""Attempts of long database work: whose they are, and what an unfinished one means."""

from __future__ import annotations

import pytest

from runbook_operator.core.attempts import MAX_ATTEMPTS, Attempts, Verdict, judge

ME, OTHER = "me", "other"


@pytest.mark.parametrize(
    ("attempt", "by", "tried", "verdict"),
    [
        (1, ME, False, Verdict.RUN),  # ours, not run yet (just claimed)
        (1, OTHER, False, Verdict.RETRY),  # another process's: it was interrupted
        (1, ME, True, Verdict.RETRY),  # ran here, its result lost
        (None, None, False, Verdict.RETRY),
        (MAX_ATTEMPTS - 1, OTHER, False, Verdict.RETRY),
        (MAX_ATTEMPTS, OTHER, False, Verdict.GIVE_UP),
        (MAX_ATTEMPTS, ME, True, Verdict.GIVE_UP),
        (MAX_ATTEMPTS, ME, False, Verdict.RUN),  # the last attempt runs
    ],
)
def test_judge(attempt: int | None, by: str | None, tried: bool, verdict: Verdict) -> None:
    assert judge(attempt, by, instance=ME, tried=tried) == verdict


def test_memory_of_tried_attempts_and_their_outcomes() -> None:
    memory: Attempts[str] = Attempts()
    key = ("uid", 1, "Dumping")
    assert not memory.tried(key) and memory.outcome(key) is None
    memory.begin(key)
    assert memory.tried(key)
    assert not memory.tried(("uid", 2, "Dumping")) and not memory.tried(("uid", 1, "Verifying"))
    memory.finished(key, "dumped")
    assert memory.outcome(key) == "dumped"
    memory.recorded(key)
    assert memory.outcome(key) is None and memory.tried(key)


def test_forget_one_object() -> None:
    memory: Attempts[str] = Attempts()
    memory.begin(("a", 1, "Dumping"))
    memory.finished(("a", 1, "Dumping"), "x")
    memory.begin(("b", 1, "Dumping"))
    memory.forget("a")
    assert not memory.tried(("a", 1, "Dumping")) and memory.outcome(("a", 1, "Dumping")) is None
    assert memory.tried(("b", 1, "Dumping"))
