"""One controller per kind: a work queue of objects, each passed at most once at a time.

The pattern is controller-runtime's: events only say *which* object to look at; the
pass itself re-derives everything from the object, its status and the clock. So:

- a watch event of the object (or of an object it watches) enqueues it; an event that
  only echoes our own writes does not (the pass that wrote it went on by itself): a
  write is remembered the moment it is answered, not when the pass ends, since its watch
  event often arrives while the pass is still running;
- a pass that is running when another event comes is run once more after it ends
  (never two at once for one object, never one lost);
- the pass's `Result.requeue_after` sets one wake-up for the object, replacing the
  previous one: an object with nothing due costs nothing until something changes;
- a pass that fails is retried with growing delays (0.5 s to 60 s), a conflict
  (someone wrote the object since it was read) at once, from a fresh read.

Passes run in thread pools (the Kubernetes client is synchronous); the asyncio side
only queues. The object's latest body, from watch events and from our own writes, is
kept so that a pass usually starts without a read; a stale one costs one Conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor

from ..adapters import metrics
from ..adapters.kube import KubeError, NotFound
from . import measures, rerunning
from .context import Pass
from .guarding import Guarding
from .identity import requested_by
from .kind import Kind, Result
from .names import RELEASE_ANNOTATION
from .notifying import Notifying
from .ports import KubePort, Obj
from .spec import InvalidSpec
from .watchcache import lean
from .writer import Stale

__all__ = ["BACKOFF", "Controller", "Key"]

Key = tuple[str, str]
"""(namespace, name)"""
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds before a failed pass is tried again, growing with each failure in a row."""
STALE_ATTEMPTS = 5
"""Conflicts in a row within one pass before it counts as failed (and backs off)."""
LOG = logging.getLogger("runbook_operator.controller")


def _version(obj: Obj | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class Controller:
    """The queue of one kind. `observe`/`enqueue` are called in the event loop."""

    def __init__(
        self,
        kind: Kind,
        kube: KubePort,
        executor: Executor,
        new_pass: Callable[[Kind, Obj, threading.Event], Pass],
        on_result: Callable[[Kind, Key, Result | None], None],
        notifying: Notifying | None = None,
        on_start: Callable[[Kind, Key], None] | None = None,
    ) -> None:
        self.kind = kind
        self.notifying = notifying or Notifying()
        """Tells Notifiers of the moments each pass reached (core.notifying)."""
        self.guarding = Guarding()
        """Names targets that Argo CD or Flux manage, pauses their sync on request."""
        self.kube = kube
        self.executor = executor
        self.new_pass = new_pass
        self.on_result = on_result
        self.on_start = on_start
        """Told (in the event loop) as each pass is sent to its thread."""
        self.enabled = True
        """False while this process may not act (not the leader, or stopping)."""
        self._bodies: dict[Key, Obj] = {}
        self._written: dict[Key, int] = {}
        self._deleted: dict[Key, int] = {}
        """The version at which each key's object was deleted while a pass of it ran: that
        pass then keeps and measures nothing (its series would outlive the object). Kept
        only until the pass ends, so deleted objects leave nothing behind here."""
        self._guard = threading.Lock()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._unsure: dict[Key, int] = {}
        """Per object whose pass runs, the newest version a watch event brought meanwhile
        that was not known then to be an echo of the pass's own writes."""
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}
        self._cancels: dict[Key, threading.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- events (event loop) ----------------------------------------------

    def observe(self, event_type: str | None, body: Obj) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if event_type == "DELETED":
            self.forget(key, deleted_at=_version(body))
            return
        if meta.get("deletionTimestamp"):
            self._cancel(key).set()  # long work of this object stops
        with self._guard:
            if self._gone(key, body):
                return
            self._deleted.pop(key, None)  # a new object of that name
            if _version(body) >= _version(self._bodies.get(key)):
                self._bodies[key] = lean(body)
            # At or below our last answered write: nothing we have not seen (a change
            # made before a write of ours would have made that write conflict).
            written = self._written.get(key)
            echo = written is not None and _version(body) <= written
            echo = echo and not meta.get("deletionTimestamp")
            if not echo and key in self._active and not meta.get("deletionTimestamp"):
                # Perhaps the echo of a write whose answer the running pass has not taken
                # yet (the watch is often faster): decided when the pass ends (`_drive`).
                self._unsure[key] = max(_version(body), self._unsure.get(key, 0))
                return
        if not echo:
            self.enqueue(key)

    def keys(self) -> list[Key]:
        with self._guard:
            return list(self._bodies)

    def enqueue(self, key: Key) -> None:
        if not self.enabled:
            return
        if key in self._active:
            self._dirty.add(key)
            return
        self._active.add(key)
        task = asyncio.get_running_loop().create_task(self._drive(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, key: Key, deleted_at: int | None = None) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        with self._guard:
            self._bodies.pop(key, None)
            self._written.pop(key, None)
            if deleted_at is not None and key in self._active:
                self._deleted[key] = deleted_at
            metrics.DOMAIN.forget((self.kind.resource.kind, *key))
        self._failures.pop(key, None)
        self._unsure.pop(key, None)
        self.notifying.forget(key)
        self.guarding.forget(key)
        cancel = self._cancels.pop(key, None)
        if cancel is not None:
            cancel.set()
        self.on_result(self.kind, key, None)

    def _gone(self, key: Key, obj: Obj) -> bool:
        """The object was deleted at or after this version of it (call with the guard)."""
        deleted = self._deleted.get(key)
        return deleted is not None and _version(obj) <= deleted

    def _cancel(self, key: Key) -> threading.Event:
        return self._cancels.setdefault(key, threading.Event())

    async def stop(self, timeout: float) -> None:
        """Stop taking work, tell long passes to stop, wait for the passes in flight."""
        self.enabled = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for cancel in self._cancels.values():
            cancel.set()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    # --- driving one object -------------------------------------------------

    async def _drive(self, key: Key) -> None:
        result: Result | None = None
        try:
            while True:
                self._dirty.discard(key)
                timer = self._timers.pop(key, None)
                if timer is not None:
                    timer.cancel()
                result = await self._one(key)
                self._news(key)
                if key in self._dirty and self.enabled:
                    continue
                break
        finally:
            self.ended(key)
        if result is not None and result.requeue_after is not None and self.enabled:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(result.requeue_after, self.enqueue, key)

    def _news(self, key: Key) -> None:
        """Whether the events that came during the pass bring anything it did not write
        itself: one that does runs the object once more. Without this, a write's own
        event that beat its answer ran a pass for nothing, and the pass after it could
        set a wake-up of its own: idle MaintenanceWindows re-checked their policy every
        15 s for minutes, each check a status write whose echo raced its answer again."""
        seen = self._unsure.pop(key, None)
        if seen is None:
            return
        with self._guard:
            written = self._written.get(key)
        if written is None or seen > written:
            self._dirty.add(key)

    def ended(self, key: Key) -> None:
        """No pass of `key` runs any more: a deletion seen meanwhile has done its work."""
        self._active.discard(key)
        with self._guard:
            self._deleted.pop(key, None)

    async def _one(self, key: Key) -> Result | None:
        loop = asyncio.get_running_loop()
        if self.on_start is not None:
            self.on_start(self.kind, key)
        call = functools.partial(contextvars.copy_context().run, self._pass, key)
        try:
            result = await loop.run_in_executor(self.executor, call)
        except Exception as exc:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = BACKOFF[min(failures, len(BACKOFF)) - 1]
            where = f"{self.kind.resource.kind} {key[0]}/{key[1]}"
            if isinstance(exc, KubeError):
                LOG.warning(f"{where}: {exc}; trying again in {delay:g} s")
            else:
                LOG.exception(f"{where}: the pass failed; trying again in {delay:g} s")
            return Result(requeue_after=delay)
        self._failures.pop(key, None)
        self.on_result(self.kind, key, result)
        return result

    # --- one pass (a pool thread) -------------------------------------------

    def _pass(self, key: Key) -> Result | None:
        with self._guard:
            body = self._bodies.get(key)
        kind = self.kind.resource
        with metrics.observe(kind.kind):
            for _ in range(STALE_ATTEMPTS):
                if body is None:
                    try:
                        body = self.kube.get_custom(kind.plural, key[0], key[1])
                    except NotFound:
                        return None
                start = body.get("status")
                ctx = self.new_pass(self.kind, body, self._cancel(key))
                ctx.writer.on_write = functools.partial(self._answered, key, ctx)
                ctx.writer.before_write = functools.partial(self.guarding.writing, ctx)
                try:
                    return self._decide(ctx)
                except Stale:
                    body = None  # decide again on what the API server has now
                finally:
                    ctx.writer.ended()  # who asked, told once stored (core.writer.stage)
                    ctx.recorder.settle()  # the pass's Events are posted before it ends
                    self._keep(key, ctx.obj, written=False)  # writes were kept as answered
                    self._measure(start, ctx)
        raise Stale(f"{kind.kind} {key[1]} changed {STALE_ATTEMPTS} times during one pass")

    def _answered(self, key: Key, ctx: Pass, obj: Obj) -> None:
        self._keep(key, obj, written=True)
        self.guarding.written(ctx, obj)  # a pause before the change this write records

    def _measure(self, start: Obj | None, ctx: Pass) -> None:
        """The domain metrics of what this pass wrote and of where the object now stands
        (core.measures decides): events on the transitions the writer recorded, each
        once, even when the pass then failed or must be decided again."""
        kind = self.kind.resource
        if not kind.operation:
            return
        key = (ctx.namespace, ctx.name)
        try:
            with self._guard:  # against a deletion seen meanwhile (forget)
                if self._gone(key, ctx.obj):
                    return
                written = [start, *ctx.writer.written]
                metrics.DOMAIN.count(measures.counts(kind.kind, ctx.obj, written))
                metrics.DOMAIN.show((kind.kind, *key), measures.gauges(kind.kind, ctx.obj))
        except Exception:  # a metric never fails an operation
            LOG.exception(f"{kind.kind} {ctx.namespace}/{ctx.name}: metrics not updated")

    def _keep(self, key: Key, obj: Obj, written: bool) -> None:
        with self._guard:
            if self._gone(key, obj):
                return
            if _version(obj) >= _version(self._bodies.get(key)):
                self._bodies[key] = lean(obj)
            if written:
                self._written[key] = _version(obj)

    def _decide(self, ctx: Pass) -> Result | None:
        if ctx.deleting:
            if not ctx.writer.has_finalizer():
                return Result()
            reason = (ctx.meta.get("annotations") or {}).get(RELEASE_ANNOTATION)
            if reason is not None:
                return self._release(ctx, str(reason))
            result = self.kind.finalize(ctx)
            if result is None:
                self.guarding.release(ctx)
                rerunning.remember(ctx)  # before the finalizer goes: no re-creation is first
                ctx.writer.remove_finalizer()
                return Result()
            return result
        if rerunning.skip(ctx):
            # A run that never starts has nothing to undo: the finalizer admission put on
            # at its creation (deploy/admission/finalizer.yaml) goes, so that deleting it
            # never waits for the operator.
            ctx.writer.remove_finalizer()
            return Result()
        self._ensure_finalizer(ctx)
        _record_requester(ctx)
        self.guarding.before(ctx)
        try:
            result = self.kind.reconcile(ctx)
        except InvalidSpec as exc:
            result = self._invalid(ctx, str(exc))
        except BaseException:
            with contextlib.suppress(Exception):  # the pass's own error is the one to tell
                ctx.writer.settle()
            raise
        ctx.writer.settle()  # a finalizer sent beside a pass that wrote nothing is on now
        self.guarding.after(ctx)
        ctx.writer.flush()  # who asked, when the kind wrote no status this pass
        return self.notifying.after(ctx, result)

    def _ensure_finalizer(self, ctx: Pass) -> None:
        """Our finalizer, before the first change. A kind that allows it (Kind.finalizer_beside)
        has it sent beside its first pass's reads and holds; the rest, and a finalizer
        removed by hand later, have it on before the pass goes on."""
        if ctx.writer.has_finalizer():
            return
        if self.kind.finalizer_beside and ctx.status().phase is None:
            ctx.writer.add_finalizer_beside()  # on before the first status write
            return
        ctx.writer.ensure_finalizer()

    @staticmethod
    def _release(ctx: Pass, reason: str) -> Result:
        """A person let the object go: no undo; the event says so, and what was left."""
        ctx.recorder.warn(
            "Released",
            f"released by the annotation {RELEASE_ANNOTATION} ({reason or 'no reason given'}):"
            " deleted without putting anything back (its status said what it had changed)",
        )
        ctx.writer.remove_finalizer()
        return Result()

    def _invalid(self, ctx: Pass, message: str) -> Result:
        """Stalled with the field and the reason; one event; no retry until an edit."""
        before = ctx.status()
        after = self.kind.invalid(ctx, before, message)
        if ctx.write(after) and before.message() != after.message():
            ctx.recorder.warn("InvalidSpec", after.message())
        return Result()


def _record_requester(ctx: Pass) -> None:
    """status.requestedBy, once, before the kind changes anything: who asked, as admission
    stamped it (core.identity). Nothing is written when nothing was stamped. It goes out
    with the pass's first status write (which precedes any change), or at its end; the
    Requested event that names them is posted when the pass ends, once they are stored."""
    if not ctx.resource.operation or (ctx.obj.get("status") or {}).get("requestedBy"):
        return
    who = requested_by(ctx.obj)
    if who is not None:
        groups = f" (groups {', '.join(who.groups)})" if who.groups else ""
        told = functools.partial(
            ctx.recorder.info, "Requested", f"Requested by {who.user}{groups}."
        )
        ctx.writer.stage({"requestedBy": who.wire()}, then=told)
