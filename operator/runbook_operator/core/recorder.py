"""One way to tell: a Kubernetes Event on the object together with its log line.

`event()` posts the Event on purpose, once, and writes one JSON log line naming the
object (namespace, name, kind, uid under "object"); the line carries `k8s_skip` so
Kopf never posts it a second time. `log()` is a log line only. Nothing here puts a
secret into either: callers pass words, never Secret values.

The Events of a pass are posted side by side, once the change they precede has gone
out: they wait until the pass next writes its status, or ends (`settle`, which posts
them and waits for them), or for HOLD_SECONDS, whichever comes first. So a change made
right after an Event neither waits for its round trip nor shares the API server with it
(a MaintenanceWindow tells four things before it sets its flag: in traces on the test
bed the flag's patch took 4.5 to 10 ms with them beside it, 3.6 ms without). Yet
whoever reads a status finds the Events decided before it already posted, and a pass in
flight when the operator is told to stop (the controller waits for it) has its Events
posted too. A pass busy for longer (a silence created, a health check) has them posted
after HOLD_SECONDS all the same. The Events of one moment may be created in any order
among themselves; their timestamps, taken when each was decided and counting seconds,
are what lists sort by. A refused or failed post is logged and never fails the pass:
telling must not block doing.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from ..adapters.kube import KubeError
from . import fanout
from .events import WARNING, Event
from .ports import KubePort, Obj

__all__ = ["LOGGER", "Recorder"]

LOGGER = logging.getLogger("runbook_operator")
HOLD_SECONDS = 0.1
"""At most this long an Event waits for its pass's next status write before it is posted
anyway: longer than a change takes on a busy API server (a few ms to tens), too short
for anyone reading `kubectl describe` to notice."""
COMPONENT = "runbook-operator"
"""The Events' source, as `kubectl describe` shows it (From)."""


def event_body(ref: Obj, event: Event, now: datetime, instance: str = "") -> Obj:
    """A core/v1 Event about the object `ref` names, as `kubectl describe` lists them."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{ref['name']}.", "namespace": ref["namespace"]},
        "involvedObject": dict(ref),
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance or COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class _Releaser:
    """One thread that sends the Events no pass sent within HOLD_SECONDS (a timer thread
    per pass made the pass wait, on its way to the change, until that thread ran). A
    recorder sent meanwhile has nothing left to send. It sleeps while none is due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Recorder]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, recorder: Recorder) -> None:
        with self._ready:
            entry = (time.monotonic() + HOLD_SECONDS, next(self._order), recorder)
            heapq.heappush(self._due, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="runbook-events", daemon=True
                )
                self._thread.start()
            elif self._due[0] is entry:  # due before the one it sleeps for
                self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._due:
                    self._ready.wait()
                due, _, recorder = self._due[0]
                if due > time.monotonic():
                    self._ready.wait(due - time.monotonic())
                    continue
                heapq.heappop(self._due)
            try:
                recorder.release()
            except Exception:  # never the end of this thread: every later pass needs it
                LOGGER.exception("events not sent", extra=recorder._extra())


_RELEASER = _Releaser()


class Recorder:
    def __init__(self, obj: Obj, kube: KubePort | None = None, *, instance: str = "") -> None:
        meta = obj.get("metadata") or {}
        self.ref = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "namespace": meta.get("namespace"),
        }
        self.kube = kube
        """Where Events are created; None records them in `posted` only (unit tests)."""
        self.instance = instance
        self.posted: list[Event] = []
        self._lock = threading.Lock()
        self._posts: list[Future[None]] = []
        self._queued: list[Obj] = []
        """Events decided and not yet sent (`release`)."""

    def _extra(self, **more: Any) -> dict[str, Any]:
        return {"k8s_ref": self.ref, "k8s_skip": True, **more}

    def event(self, event: Event) -> None:
        self.posted.append(event)
        if self.kube is not None:
            body = event_body(self.ref, event, datetime.now(UTC), self.instance)
            with self._lock:
                first = not self._queued
                self._queued.append(body)
            if first:
                _RELEASER.schedule(self)
        level = logging.WARNING if event.type == WARNING else logging.INFO
        LOGGER.log(
            level, f"{event.reason}: {event.message}", extra=self._extra(reason=event.reason)
        )

    def release(self) -> None:
        """Send every Event decided and not yet sent, side by side; nothing waits here."""
        with self._lock:
            queued, self._queued = self._queued, []
            self._posts += [fanout.start(functools.partial(self._post, b)) for b in queued]

    def settle(self) -> None:
        """Every Event decided so far is posted (or its failure logged)."""
        self.release()
        with self._lock:
            posts, self._posts = self._posts, []
        for post in posts:
            post.result()

    def _post(self, body: Obj) -> None:
        assert self.kube is not None
        try:
            self.kube.create_event(str(self.ref["namespace"]), body)
        except KubeError as exc:
            self.log(f"event {body['reason']} not posted: {exc}", level=logging.WARNING)
        except Exception:  # never fails the pass that waits for it
            LOGGER.exception(f"event {body['reason']} not posted", extra=self._extra())

    def events(self, events: Iterable[Event]) -> None:
        for event in events:
            self.event(event)

    def info(self, reason: str, message: str) -> None:
        self.event(Event("Normal", reason, message))

    def warn(self, reason: str, message: str) -> None:
        self.event(Event(WARNING, reason, message))

    def log(self, message: str, *, level: int = logging.INFO) -> None:
        LOGGER.log(level, message, extra=self._extra())
