"""One way to tell: a Kubernetes Event on the object together with its log line.

`event()` posts the Event on purpose, once, and writes one JSON log line naming the
object (namespace, name, kind, uid under "object"); the line carries `k8s_skip` so
Kopf never posts it a second time. `log()` is a log line only. Nothing here puts a
secret into either: callers pass words, never Secret values.

The Events of a pass are posted beside it, side by side, and the pass waits for them
(`settle`) before its next status write and before it ends. So a change made right
after an Event need not wait for its round trip (a MaintenanceWindow tells five things
before it sets its flag), yet whoever reads a status finds the Events decided before it
already posted, and a pass in flight when the operator is told to stop (the controller
waits for it) has its Events posted too. The Events of one moment may be created in any
order among themselves; their timestamps, which count seconds, are what lists sort by.
A refused or failed post is logged and never fails the pass: telling must not block
doing.
"""

from __future__ import annotations

import functools
import logging
import threading
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

    def _extra(self, **more: Any) -> dict[str, Any]:
        return {"k8s_ref": self.ref, "k8s_skip": True, **more}

    def event(self, event: Event) -> None:
        self.posted.append(event)
        if self.kube is not None:
            body = event_body(self.ref, event, datetime.now(UTC), self.instance)
            post = fanout.start(functools.partial(self._post, body))
            with self._lock:
                self._posts.append(post)
        level = logging.WARNING if event.type == WARNING else logging.INFO
        LOGGER.log(
            level, f"{event.reason}: {event.message}", extra=self._extra(reason=event.reason)
        )

    def settle(self) -> None:
        """Every Event decided so far is posted (or its failure logged)."""
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
