"""CacheFlush on the operation core: the guard, the record, the flush, the measure.

A pass asks the guard (the named MaintenanceWindow Active, or confirm); once allowed it
measures, sets the marker (whole-database flushes), records all of it (Flushing), then
flushes and measures again. A resumed pass in Flushing asks the marker whether FLUSHDB
was sent (logic's docstring). Runs on the bounded pool of long outside work, so a SCAN
of millions of keys never takes a thread an incident needs. The failpoints
`cacheflush-Flushing` (recorded, not yet flushed) and `cacheflush-flushed` (flushed, not
yet recorded) stop the operator there, for the crash tests.
"""

from __future__ import annotations

from ...adapters import rediscache as rc
from ...adapters.kube import NotFound
from ...core import cache, failpoints
from ...core.context import Pass
from ...core.database import reason_of
from ...core.kind import DATABASE, Kind, Result
from ...core.spec import InvalidSpec
from . import logic
from .api import CACHE_FLUSH, CacheFlushSpec, CacheFlushStatus, FlushPhase

__all__ = ["CacheFlushKind"]

WINDOWS = "maintenancewindows"


class CacheFlushKind(Kind):
    resource = CACHE_FLUSH
    pool = DATABASE

    def __init__(self, redis: cache.Redis = cache.REDIS) -> None:
        self.redis = redis

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(CacheFlushSpec)
        status: CacheFlushStatus = ctx.status()
        if status.is_done():
            return Result()
        ctx.tick()
        if status.phase != FlushPhase.FLUSHING:
            allowed = logic.guard(spec, self._window(ctx, spec))
            if isinstance(allowed, logic.Refusal):
                new, events = logic.blocked_or_refused(
                    spec, status, allowed, generation=ctx.generation, now=ctx.now
                )
                ctx.write(new)
                ctx.recorder.events(events)
                window = spec.maintenance_window
                if allowed.final or window is None:
                    return Result()
                return Result(watch=frozenset({("MaintenanceWindow", window)}))
            started = self._record(ctx, spec, status, allowed)
            if started is None:
                return Result()
            status = started
        self._flush(ctx, spec, status)
        return Result()

    def _window(self, ctx: Pass, spec: CacheFlushSpec) -> dict[str, object] | None:
        if spec.maintenance_window is None:
            return None
        try:
            return ctx.kube.get_custom(WINDOWS, ctx.namespace, spec.maintenance_window)
        except NotFound:
            return None

    def _server(self, ctx: Pass, spec: CacheFlushSpec) -> rc.RedisServer:
        return cache.server(ctx.kube, ctx.namespace, spec.redis)

    def _record(
        self,
        ctx: Pass,
        spec: CacheFlushSpec,
        status: CacheFlushStatus,
        allowed: logic.Authorization,
    ) -> CacheFlushStatus | None:
        """Measure, set the marker, and record it all before anything is flushed."""
        try:
            server = self._server(ctx, spec)
            found = self.redis.stats(server, spec.key_pattern)
            marker = None
            if spec.key_pattern is None:
                marker = logic.marker_key(ctx.uid)
                self.redis.set_marker(server, marker, logic.MARKER_TTL)
        except cache.FAILURES as exc:
            self._fail(ctx, spec, status, exc)
            return None
        before = logic.measure(found.keys, found.used_memory, found.used_memory_human, ctx.now)
        how = logic.command(spec, found.major)
        new, events = logic.flushing(
            spec, status, allowed, before, how, marker, generation=ctx.generation, now=ctx.now
        )
        ctx.write(new)
        failpoints.hit("cacheflush-Flushing")
        ctx.recorder.events(events)
        return new

    def _flush(self, ctx: Pass, spec: CacheFlushSpec, status: CacheFlushStatus) -> None:
        removed: int | None = None
        try:
            server = self._server(ctx, spec)
            if spec.key_pattern is not None:
                removed = self.redis.unlink_matching(server, spec.key_pattern, ctx.stopped.is_set)
                if ctx.stopped.is_set():
                    ctx.recorder.log(f"stopped after unlinking {removed} keys; resumed later")
                    return
            elif status.marker is None or self.redis.has_marker(server, status.marker):
                self.redis.flush(server, asynchronous=status.command == "FLUSHDB ASYNC")
                failpoints.hit("cacheflush-flushed")
            else:
                ctx.recorder.log("FLUSHDB was sent before a restart (its marker is gone)")
            found = self.redis.stats(server, spec.key_pattern)
        except cache.FAILURES as exc:
            self._fail(ctx, spec, status, exc)
            return
        after = logic.measure(found.keys, found.used_memory, found.used_memory_human, ctx.tick())
        new, events = logic.completed(
            spec, status, after, removed, generation=ctx.generation, now=ctx.now
        )
        ctx.write(new)
        ctx.recorder.events(events)

    @staticmethod
    def _fail(ctx: Pass, spec: CacheFlushSpec, status: CacheFlushStatus, exc: Exception) -> None:
        new, events = logic.failed(
            spec, status, reason_of(exc), str(exc), generation=ctx.generation, now=ctx.now
        )
        ctx.write(new)
        ctx.recorder.events(events)

    def finalize(self, ctx: Pass) -> Result | None:
        """A flush cannot be undone. Deleted before its FLUSHDB was sent, its marker key
        is removed (best effort: it also expires by itself, logic.MARKER_TTL)."""
        status: CacheFlushStatus = ctx.status()
        if status.phase != FlushPhase.FLUSHING or status.marker is None:
            return None
        try:
            spec = ctx.spec(CacheFlushSpec)
            self.redis.clear_marker(self._server(ctx, spec), status.marker)
        except (InvalidSpec, *cache.FAILURES) as exc:
            ctx.recorder.log(f"marker {status.marker} left to expire: {exc}")
        return None
