"""Independent requests of one pass, sent at once instead of one after another.

A pass's first reads (the namespace's HPAs, each target) do not depend on each other,
and neither do they depend on the finalizer the same pass adds: sent one after another
they cost one round trip each before the first change. `gather` runs them side by side
(the calling thread takes the last one, a small shared pool the others) and returns
their answers in order; the first error raised is raised again, after every call ended,
so nothing of a pass is still running when the pass goes on or fails.

The Kubernetes client is synchronous and its connection pool is shared between threads
(adapters.kube.POOL_SIZE); only reads, the one finalizer write and the pass's Events
(core.recorder) go through here, each waited for before the pass's next status write:
every other write keeps its place in the pass's order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

__all__ = ["WORKERS", "gather", "start"]

T = TypeVar("T")

WORKERS = 8
"""Threads for the side requests of all passes together: a pass sends a few at a time,
and passes run in their own pool (Settings.pass_workers)."""

_INSIDE = threading.local()


def _marked(pool: str) -> Callable[[], None]:
    def mark() -> None:
        _INSIDE.pool = pool

    return mark


# Two pools, so that no thread ever waits for work queued in its own pool: a call sent
# by `start` may `gather` (reads of its own), and a gathered call waits for
# nothing of ours. One pool for both deadlocked once every thread of it waited for reads
# queued behind it, which a thousand objects created at once did.
_STARTED = ThreadPoolExecutor(
    WORKERS, thread_name_prefix="runbook-beside", initializer=_marked("started")
)
_GATHERED = ThreadPoolExecutor(
    WORKERS, thread_name_prefix="runbook-fanout", initializer=_marked("gathered")
)


def _inside() -> str | None:
    """Which of the pools the calling thread belongs to, if any."""
    return getattr(_INSIDE, "pool", None)


def start(call: Callable[[], T]) -> Future[T]:
    """Run `call` beside the calling thread; `.result()` waits for it. From a thread of
    these pools, `call` runs there and then."""
    if _inside() is not None:
        return _done(call)
    return _STARTED.submit(call)


def _done(call: Callable[[], T]) -> Future[T]:
    future: Future[T] = Future()
    try:
        future.set_result(call())
    except Exception as exc:
        future.set_exception(exc)
    return future


def gather(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Every call's answer, in order, the calls made side by side (one after another
    when called from a gathered call itself)."""
    if len(calls) <= 1 or _inside() == "gathered":
        return [call() for call in calls]
    futures = [_GATHERED.submit(call) for call in calls[:-1]]
    try:
        last = calls[-1]()
    finally:
        wait(futures)
    results: list[Any] = [f.result() for f in futures]
    return [*results, last]
