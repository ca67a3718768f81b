"""One way to tell: a Kubernetes Event on the object together with its log line.

`event()` posts the Event on purpose, once, and writes one JSON log line naming the
object (namespace, name, kind, uid under "object"); the line carries `k8s_skip` so
Kopf never posts it a second time. `log()` is a log line only. Nothing here puts a
secret into either: callers pass words, never Secret values.

The Event belongs to the pass that decided it. With `beside=True` (the controller's
passes) it is created beside the pass, in order, by a thread of a small pool, so
that telling does not put a round trip before the next step; the pass `settle()`s before
it ends, so a pass in flight when the operator is told to stop (the controller waits for
it) has posted its events too. Without it (unit tests, one-off callers) it is created at
once. A refused or failed post is logged and never fails the pass: telling must not
block doing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

from .events import WARNING, Event
from .ports import KubePort, Obj

__all__ = ["LOGGER", "Recorder"]

_POSTERS = ThreadPoolExecutor(4, thread_name_prefix="runbook-events")
"""Where events are posted beside their passes: a pool of their own, since a poster
waits for nothing but the API server, and reads queued behind posters would wait."""

LOGGER = logging.getLogger("runbook_operator")
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


class Recorder:
    def __init__(
        self, obj: Obj, kube: KubePort | None = None, *, instance: str = "", beside: bool = False
    ) -> None:
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
        self.beside = beside
        self._queue: list[Obj] = []
        self._lock = threading.Lock()
        self._poster: Future[None] | None = None

    def _extra(self, **more: Any) -> dict[str, Any]:
        return {"k8s_ref": self.ref, "k8s_skip": True, **more}

    def event(self, event: Event) -> None:
        self.posted.append(event)
        if self.kube is not None:
            body = event_body(self.ref, event, datetime.now(UTC), self.instance)
            if self.beside:
                with self._lock:
                    self._queue.append(body)
                    if self._poster is None:
                        self._poster = _POSTERS.submit(self._post_queued)
            else:
                self._post(body)
        level = logging.WARNING if event.type == WARNING else logging.INFO
        LOGGER.log(
            level, f"{event.reason}: {event.message}", extra=self._extra(reason=event.reason)
        )

    def settle(self) -> None:
        """Wait until every event recorded so far has been posted (or refused)."""
        with self._lock:
            poster = self._poster
        if poster is not None:
            wait([poster])

    def _post_queued(self) -> None:
        """One poster at a time per recorder, so its events arrive in the order told."""
        while True:
            with self._lock:
                if not self._queue:
                    self._poster = None
                    return
                body = self._queue.pop(0)
            self._post(body)

    def _post(self, body: Obj) -> None:
        assert self.kube is not None
        try:
            self.kube.create_event(str(self.ref["namespace"]), body)
        except Exception as exc:  # KubeError, or anything a poster thread would hide
            self.log(f"event {body['reason']} not posted: {exc}", level=logging.WARNING)

    def events(self, events: Iterable[Event]) -> None:
        for event in events:
            self.event(event)

    def info(self, reason: str, message: str) -> None:
        self.event(Event("Normal", reason, message))

    def warn(self, reason: str, message: str) -> None:
        self.event(Event(WARNING, reason, message))

    def log(self, message: str, *, level: int = logging.INFO) -> None:
        LOGGER.log(level, message, extra=self._extra())
