"""Independent requests of one pass, sent at once instead of one after another.

A pass's first reads (the namespace's HPAs, each target) do not depend on each other,
and neither do they depend on the finalizer the same pass adds: sent one after another
they cost one round trip each before the first change. `gather` runs them side by side
(the calling thread takes the last one, a small shared pool the others) and returns
their answers in order; the first error raised is raised again, after every call ended,
so nothing of a pass is still running when the pass goes on or fails.

The Kubernetes client is synchronous and its connection pool is shared between threads
(adapters.kube.POOL_SIZE); only reads, and the one finalizer write, go through here:
every other write keeps its place in the pass's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

__all__ = ["WORKERS", "gather", "start"]

T = TypeVar("T")

WORKERS = 8
"""Threads for the side requests of all passes together: a pass sends a few at a time,
and passes run in their own pool (Settings.pass_workers)."""

_POOL = ThreadPoolExecutor(WORKERS, thread_name_prefix="runbook-fanout")


def start(call: Callable[[], T]) -> Future[T]:
    """Run `call` beside the calling thread; `.result()` waits for it."""
    return _POOL.submit(call)


def gather(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Every call's answer, in order, the calls made side by side."""
    if len(calls) <= 1:
        return [call() for call in calls]
    futures = [_POOL.submit(call) for call in calls[:-1]]
    try:
        last = calls[-1]()
    finally:
        wait(futures)
    results: list[Any] = [f.result() for f in futures]
    return [*results, last]
