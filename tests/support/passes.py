"""Run one kind's passes against the FakeKube, through the real core (no Kopf, no threads).

harness = Harness(EmergencyScaleKind(sample=...), kube, Settings(...))
result = harness.run("high-traffic")     # one pass, as the controller runs it
harness.events                           # every Event the passes posted, in order
harness.delete("high-traffic")           # deletionTimestamp set; run() then finalizes
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from runbook_operator.core.context import Pass, now_utc
from runbook_operator.core.controller import Controller
from runbook_operator.core.events import Event
from runbook_operator.core.kind import Kind, Result
from runbook_operator.core.recorder import Recorder
from runbook_operator.core.watchcache import WatchCache
from runbook_operator.core.writer import StatusWriter
from runbook_operator.settings import Settings

from .fake_kube import NS, FakeKube

__all__ = ["Harness"]


def _gone(key: tuple[str, str]) -> dict[str, Any]:
    return {"metadata": {"namespace": key[0], "name": key[1]}}


class Harness:
    def __init__(
        self,
        kind: Kind,
        kube: FakeKube,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.kind = kind
        self.clock = clock
        self.kube = kube
        self.settings = settings or Settings()
        self.events: list[Event] = []
        self.stopped = threading.Event()
        self.fenced = threading.Event()
        """Set: this process is no longer the leader (core.leader's fence)."""
        self.cache = WatchCache()
        """What the operator's watches delivered (none: every pass reads the API)."""
        self.controller = Controller(
            kind, kube, ThreadPoolExecutor(1), self._new_pass, lambda *_: None
        )
        self.controller.enabled = False  # no event loop: passes run only through run()

    def _new_pass(self, kind: Kind, body: dict[str, Any], stopped: threading.Event) -> Pass:
        recorder = Recorder(body)
        recorder.posted = self.events  # one list for every pass
        return Pass(
            kube=self.kube,
            settings=self.settings,
            resource=kind.resource,
            writer=StatusWriter(self.kube, kind.resource, body),
            recorder=recorder,
            instance="test-instance",
            stopped=self.stopped,
            fenced=self.fenced.is_set,
            clock=self.clock or now_utc,
            cache=self.cache,
        )

    @property
    def plural(self) -> str:
        return self.kind.resource.plural

    def run(self, name: str, namespace: str = NS) -> Result | None:
        """One pass, exactly as the controller runs it, on the object as stored now (as if
        the watch had just delivered it)."""
        key = (namespace, name)
        stored = self.kube.store.get((self.plural, namespace, name))
        self.controller.observe("MODIFIED" if stored else "DELETED", stored or _gone(key))
        self.controller._active.add(key)  # as the controller's drive marks it
        try:
            return self.controller._pass(key)
        finally:
            self.controller.ended(key)

    def obj(self, name: str, namespace: str = NS) -> dict[str, Any]:
        return self.kube.obj(self.plural, name, namespace)

    def status(self, name: str, namespace: str = NS) -> Any:
        return self.kind.resource.status.model_validate(
            self.obj(name, namespace).get("status") or {}
        )

    def delete(self, name: str, namespace: str = NS) -> None:
        self.kube.delete_custom(self.plural, namespace, name)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]
