"""MaintenanceWindows on a clock the test controls, against the one FakeKube.

`Sim` runs whole passes of the real MaintenanceWindow kind through the real core
(support.passes.Harness), with a fake Alertmanager, HTTP and Prometheus, and can
"crash" a pass: its first status write fails, so the step's effect on the cluster
stays while its record is lost, as when the operator dies between the two.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from runbook_operator.core.events import Event
from runbook_operator.core.kind import Result
from runbook_operator.kinds.maintenancewindow.handlers import MaintenanceWindowKind
from runbook_operator.settings import Settings

from .fake_kube import NS, FakeKube
from .passes import Harness

__all__ = ["NS", "PLURAL", "Crash", "FakeSilences", "Sim", "mail_score"]

Obj = dict[str, Any]
PLURAL = "maintenancewindows"
NAME = "weekly"


class Crash(Exception):
    """The operator died: the status write of the pass never happened."""


class FakeSilences:
    """One Alertmanager, shared by every client of the same URL."""

    def __init__(self) -> None:
        self.silences: dict[str, Obj] = {}
        self.created = 0
        self.down = False
        self._ids = (f"00000000-0000-0000-0000-{i:012d}" for i in itertools.count(1))

    def client(self, url: str) -> FakeSilences:
        return self

    def _check(self) -> None:
        if self.down:
            from runbook_operator.adapters.alertmanager import AlertmanagerError

            raise AlertmanagerError("Alertmanager at http://am cannot be reached (refused)")

    def create(
        self,
        matchers: list[Obj],
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
        silence_id: str | None = None,
    ) -> str:
        self._check()
        if silence_id in self.silences:
            self.silences[silence_id]["endsAt"] = ends_at.isoformat()
            return silence_id
        self.created += 1
        new_id = next(self._ids)
        self.silences[new_id] = {
            "id": new_id,
            "matchers": matchers,
            "startsAt": starts_at.isoformat(),
            "endsAt": ends_at.isoformat(),
            "comment": comment,
            "createdBy": "runbook-operator",
            "status": {"state": "active"},
        }
        return new_id

    def find(self, marker: str) -> list[Obj]:
        self._check()
        return [
            copy.deepcopy(s)
            for s in self.silences.values()
            if marker in s["comment"] and s["status"]["state"] != "expired"
        ]

    def expire(self, silence_id: str) -> None:
        self._check()
        if silence_id in self.silences:
            self.silences[silence_id]["status"]["state"] = "expired"

    def active(self) -> list[Obj]:
        return [s for s in self.silences.values() if s["status"]["state"] == "active"]


def mail_score(kube: FakeKube) -> None:
    """The Mail Score app: frontend x2 reads frontend-config, backend x3 under backend-hpa."""
    kube.add_configmap(
        "frontend-config",
        {"MAINTENANCE_MODE": "false", "API_URL": "http://mail-score-backend:8080"},
    )
    kube.add_deployment("mail-score-frontend", 2, "frontend:2.1.0")
    kube.add_deployment("mail-score-backend", 3, "backend:1.4.2")
    kube.add_hpa("backend-hpa", "mail-score-backend", 3, 10)


@dataclass
class Sim:
    """Passes of one window (`weekly` in namespace `shop`) on a controlled clock."""

    spec: Obj
    now: datetime
    created: datetime | None = None
    kube: FakeKube = field(default_factory=FakeKube)
    alertmanager: FakeSilences = field(default_factory=FakeSilences)
    http_codes: list[int] = field(default_factory=list)
    prometheus_value: float = 0.0
    last: Result | None = None
    crashed: bool = False

    def __post_init__(self) -> None:
        kind = MaintenanceWindowKind(
            silences=self.alertmanager.client,
            http_status=self._http,
            query=lambda url, query: self.prometheus_value,
        )
        settings = Settings(prometheus_url="http://prometheus:9090", tick_seconds=2)
        self.harness = Harness(kind, self.kube, settings, clock=lambda: self.now)
        created = (self.created or self.now).astimezone(UTC)
        self.kube.add_custom(
            PLURAL,
            {
                "apiVersion": "ops.mailscore.com/v1alpha1",
                "kind": "MaintenanceWindow",
                "metadata": {
                    "name": NAME,
                    "creationTimestamp": created.isoformat(),
                    # What admission stamps (deploy/admission/): requester, plan revision.
                    "annotations": {
                        "ops.mailscore.com/requested-by": "rita",
                        "ops.mailscore.com/requested-by-groups": "sre,system:authenticated",
                        "ops.mailscore.com/plan-revision": "1",
                    },
                },
                "spec": copy.deepcopy(self.spec),
            },
        )

    def _http(self, url: str) -> int:
        return self.http_codes.pop(0) if self.http_codes else 200

    @property
    def gone(self) -> bool:
        return (PLURAL, NS, NAME) not in self.kube.store

    @property
    def obj(self) -> Obj:
        return self.kube.obj(PLURAL, NAME)

    @property
    def status(self) -> Obj:
        return dict(self.obj.get("status") or {}) if not self.gone else {}

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    @property
    def events(self) -> list[Event]:
        return self.harness.events

    def step_names(self) -> list[str]:
        return [s["name"] for s in self.status.get("steps", [])]

    def edit(self, **spec: Any) -> None:
        self.kube.patch_custom(PLURAL, NS, NAME, {"spec": spec})

    def delete(self) -> None:
        self.harness.delete(NAME)

    def one(self, *, crash_after: str | None = None) -> Result | None:
        """One pass. With crash_after=<step>, the operator dies right after that step has
        acted: the status write that would record it fails, and the pass ends there."""
        if crash_after is not None:

            def die(name: str, patch: Obj) -> None:
                steps = (patch.get("status") or {}).get("steps") or []
                if steps and steps[-1].get("name") == crash_after:
                    raise Crash(f"the operator died before recording {crash_after}")

            self.kube.before_status = die
        try:
            self.last = self.harness.run(NAME)
        except Crash:
            self.last = None
            self.crashed = True
        finally:
            self.kube.before_status = None
        return self.last

    def tick(self, seconds: float = 0.5, **kw: Any) -> Result | None:
        result = self.one(**kw)
        self.now += timedelta(seconds=seconds)
        return result

    def run_until(self, done: Any, *, limit: int = 2000, **kw: Any) -> None:
        for _ in range(limit):
            if done(self):
                return
            self.tick(**kw)
        raise AssertionError(f"not reached; phase {self.phase}, steps {self.step_names()}")

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]
