"""One way to tell: a Kubernetes Event on the object together with its log line.

`event()` posts the Event on purpose, once, and writes one JSON log line naming the
object (namespace, name, kind, uid under "object"); the line carries `k8s_skip` so
Kopf never posts it a second time. `log()` is a log line only. Nothing here puts a
secret into either: callers pass words, never Secret values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import kopf

from .events import WARNING, Event
from .ports import Obj

__all__ = ["LOGGER", "Recorder"]

LOGGER = logging.getLogger("runbook_operator")


class Recorder:
    def __init__(self, obj: Obj, *, post: bool = True) -> None:
        meta = obj.get("metadata") or {}
        self.ref = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "namespace": meta.get("namespace"),
        }
        self.post = post
        """False in unit tests: no Kopf event queue to post into."""
        self.posted: list[Event] = []

    def _extra(self, **more: Any) -> dict[str, Any]:
        return {"k8s_ref": self.ref, "k8s_skip": True, **more}

    def event(self, event: Event) -> None:
        self.posted.append(event)
        if self.post:
            raw: Any = {"apiVersion": self.ref["apiVersion"], "kind": self.ref["kind"]}
            raw["metadata"] = {k: self.ref[k] for k in ("name", "uid", "namespace")}
            kopf.event(kopf.Body(raw), type=event.type, reason=event.reason, message=event.message)
        level = logging.WARNING if event.type == WARNING else logging.INFO
        LOGGER.log(
            level, f"{event.reason}: {event.message}", extra=self._extra(reason=event.reason)
        )

    def events(self, events: Iterable[Event]) -> None:
        for event in events:
            self.event(event)

    def info(self, reason: str, message: str) -> None:
        self.event(Event("Normal", reason, message))

    def warn(self, reason: str, message: str) -> None:
        self.event(Event(WARNING, reason, message))

    def log(self, message: str, *, level: int = logging.INFO) -> None:
        LOGGER.log(level, message, extra=self._extra())
