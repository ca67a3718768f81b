"""Attempts of long database work: who runs one, and what an unfinished one means.

Long work (a pg_dump, a verification, a pg_restore) is claimed before it starts: the
status records the attempt's number and the operator process running it (`attemptBy`,
core.context.Pass.instance), written with the optimistic writer, so two processes can
never both believe they run it. Only the leader acts, and one pass per object runs at a
time, so an attempt still unfinished in status is either running right now in this
process, or was interrupted:

- recorded by another process: that process crashed or stopped (its pg_dump died with
  it); the attempt is tried again, up to MAX_ATTEMPTS in all;
- recorded by this process and already run here (`Attempts.tried`): it ran, but its
  result was never recorded (the pass failed on the way, e.g. the API server was down).
  When the result is still known (`Attempts.outcome`: the status write lost to a
  Conflict) it is recorded now instead of running the work again: a restore is never
  run twice for one lost write. Otherwise it counts as interrupted.

`Attempts` is this process's memory; it lives in the Kind instance. Pure (no I/O).
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Generic, TypeVar

__all__ = ["MAX_ATTEMPTS", "Attempts", "Key", "Verdict", "judge"]

MAX_ATTEMPTS = 3
"""How often long work interrupted by an operator restart is attempted in all."""

T = TypeVar("T")
Key = tuple[str, int | None, str | None]
"""(object uid, attempt number, step) of one attempt."""


class Verdict(StrEnum):
    RUN = "Run"
    """The attempt is ours and not run yet: run it."""
    RETRY = "Retry"
    """It was interrupted: record the next attempt, then run that."""
    GIVE_UP = "GiveUp"
    """It was interrupted MAX_ATTEMPTS times."""


def judge(attempt: int | None, attempt_by: str | None, *, instance: str, tried: bool) -> Verdict:
    """What to do about the attempt recorded in status (attempt, attemptBy)."""
    if attempt_by != instance or tried:
        return Verdict.RETRY if (attempt or 1) < MAX_ATTEMPTS else Verdict.GIVE_UP
    return Verdict.RUN


class Attempts(Generic[T]):
    """The attempts this process ran, and the outcomes of those not recorded yet."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._tried: set[Key] = set()
        self._outcomes: dict[Key, T] = {}

    def begin(self, key: Key) -> None:
        """The work of this attempt starts now (in this process)."""
        with self._guard:
            self._tried.add(key)

    def tried(self, key: Key) -> bool:
        with self._guard:
            return key in self._tried

    def finished(self, key: Key, outcome: T) -> None:
        """The work ended with `outcome`, to be recorded in status."""
        with self._guard:
            self._outcomes[key] = outcome

    def outcome(self, key: Key) -> T | None:
        """The outcome of an attempt run here whose status write has not succeeded yet."""
        with self._guard:
            return self._outcomes.get(key)

    def recorded(self, key: Key) -> None:
        """The outcome is in status now."""
        with self._guard:
            self._outcomes.pop(key, None)

    def forget(self, uid: str) -> None:
        """The object is finished (or gone): nothing of it needs remembering."""
        with self._guard:
            self._tried = {k for k in self._tried if k[0] != uid}
            self._outcomes = {k: v for k, v in self._outcomes.items() if k[0] != uid}
