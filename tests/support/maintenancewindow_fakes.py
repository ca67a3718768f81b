"""In-memory stand-ins for the cluster and Alertmanager, for MaintenanceWindow handler tests.

`FakeKube` has the methods of adapters.kube.Kube the window uses, with merge-patch
semantics, holds, HPAs and instant (or manual) rollouts. `Sim` runs handler
passes on a clock it controls, persisting status the way Kopf would, and can
"crash" a pass: the step's effect on the cluster stays, its status write is lost.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from runbook_operator.adapters.kube import NotFound
from runbook_operator.handlers.maintenancewindow import run_pass
from runbook_operator.handlers.maintenancewindow_env import Env
from runbook_operator.logic.maintenancewindow import Event, Pass
from runbook_operator.names import HOLD_ANNOTATION

Obj = dict[str, Any]
NS = "shop"


def merge(target: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
            if not target[key]:  # the API server drops maps left empty (omitempty)
                del target[key]
        else:
            target[key] = copy.deepcopy(value)


def deployment(name: str, replicas: int, image: str = "img:1") -> Obj:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "generation": 1,
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
        "status": {},
    }


class FakeKube:
    def __init__(self, instant_rollouts: bool = True) -> None:
        self.deployments: dict[str, Obj] = {}
        self.configmaps: dict[str, Obj] = {}
        self.hpas: dict[str, Obj] = {}
        self.backups: list[Obj] = []
        self.replicasets: list[Obj] = []
        self.instant_rollouts = instant_rollouts
        self.calls: Counter[str] = Counter()
        self.template_changes: Counter[str] = Counter()

    # fixtures
    def add_deployment(self, name: str, replicas: int, image: str = "img:1") -> None:
        self.deployments[name] = deployment(name, replicas, image)
        self.settle(name)

    def add_hpa(self, name: str, target: str, low: int, high: int) -> None:
        self.hpas[name] = {
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": target},
                "minReplicas": low,
                "maxReplicas": high,
            },
        }

    def settle(self, name: str) -> None:
        d = self.deployments[name]
        n = d["spec"].get("replicas", 1)
        d["status"] = {
            "observedGeneration": d["metadata"]["generation"],
            "replicas": n,
            "updatedReplicas": n,
            "availableReplicas": n,
        }

    # the Kube surface
    def get_deployment(self, namespace: str, name: str) -> Obj:
        self.calls["get_deployment"] += 1
        if name not in self.deployments:
            raise NotFound(f"deployments.apps {name!r} not found")
        return copy.deepcopy(self.deployments[name])

    def patch_deployment(self, namespace: str, name: str, patch: Obj) -> Obj:
        self.calls["patch_deployment"] += 1
        d = self.deployments.get(name)
        if d is None:
            raise NotFound(name)
        before = copy.deepcopy(d["spec"])
        merge(d, patch)
        if d["spec"] != before:
            d["metadata"]["generation"] += 1
            if d["spec"]["template"] != before["template"]:
                self.template_changes[name] += 1
                revision = int(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(
                    revision + 1
                )
            if self.instant_rollouts:
                self.settle(name)
        return copy.deepcopy(d)

    def get_workload(self, kind: str, namespace: str, name: str) -> Obj:
        return self.get_deployment(namespace, name)

    def patch_workload(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        return self.patch_deployment(namespace, name, patch)

    def get_configmap(self, namespace: str, name: str) -> Obj:
        if name not in self.configmaps:
            raise NotFound(f"configmaps {name!r} not found")
        return copy.deepcopy(self.configmaps[name])

    def patch_configmap(self, namespace: str, name: str, patch: Obj) -> Obj:
        self.calls["patch_configmap"] += 1
        if name not in self.configmaps:
            raise NotFound(name)
        merge(self.configmaps[name], patch)
        return copy.deepcopy(self.configmaps[name])

    def find_hpa(self, namespace: str, kind: str, name: str) -> Obj | None:
        for hpa in self.hpas.values():
            if hpa["spec"]["scaleTargetRef"]["name"] == name:
                return copy.deepcopy(hpa)
        return None

    def patch_hpa(self, namespace: str, name: str, patch: Obj) -> Obj:
        self.calls["patch_hpa"] += 1
        if name not in self.hpas:
            raise NotFound(name)
        merge(self.hpas[name], patch)
        return copy.deepcopy(self.hpas[name])

    def acquire_hold(self, kind: str, namespace: str, name: str, holder: str) -> str | None:
        d = self.deployments.get(name)
        if d is None:
            raise NotFound(name)
        current = d["metadata"]["annotations"].get(HOLD_ANNOTATION)
        if current and current != holder:
            return str(current)
        d["metadata"]["annotations"][HOLD_ANNOTATION] = holder
        return None

    def release_hold(self, kind: str, namespace: str, name: str, holder: str) -> None:
        d = self.deployments.get(name)
        if d is not None and d["metadata"]["annotations"].get(HOLD_ANNOTATION) == holder:
            del d["metadata"]["annotations"][HOLD_ANNOTATION]

    def list_replicasets(self, namespace: str, label_selector: str) -> list[Obj]:
        return copy.deepcopy(self.replicasets)

    def patch_replicaset(self, namespace: str, name: str, patch: Obj) -> Obj:
        self.calls["patch_replicaset"] += 1
        rs = next(r for r in self.replicasets if r["metadata"]["name"] == name)
        merge(rs, patch)
        return copy.deepcopy(rs)

    def list_custom(self, plural: str, namespace: str, label_selector: str = "") -> list[Obj]:
        assert plural == "databasebackups"
        return copy.deepcopy(self.backups)


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
    kube.configmaps["frontend-config"] = {
        "metadata": {"name": "frontend-config"},
        "data": {"MAINTENANCE_MODE": "false", "API_URL": "http://mail-score-backend:8080"},
    }
    kube.add_deployment("mail-score-frontend", 2, "frontend:2.1.0")
    kube.add_deployment("mail-score-backend", 3, "backend:1.4.2")
    kube.add_hpa("backend-hpa", "mail-score-backend", 3, 10)


@dataclass
class Sim:
    """Handler passes on a controlled clock, status persisted as Kopf would."""

    spec: Obj
    now: datetime
    created: datetime | None = None
    kube: FakeKube = field(default_factory=FakeKube)
    alertmanager: FakeSilences = field(default_factory=FakeSilences)
    http_codes: list[int] = field(default_factory=list)
    prometheus_value: float = 0.0
    events: list[Event] = field(default_factory=list)
    obj: Obj = field(default_factory=dict)

    def __post_init__(self) -> None:
        created = self.created or self.now
        self.obj = {
            "metadata": {
                "name": "weekly",
                "namespace": NS,
                "uid": "uid-1",
                "generation": 1,
                "creationTimestamp": created.astimezone(UTC).isoformat(),
            },
            "spec": copy.deepcopy(self.spec),
            "status": {},
        }

    @property
    def env(self) -> Env:
        return Env(
            kube=self.kube,  # type: ignore[arg-type]
            silences=self.alertmanager.client,
            http_status=self._http,
            prometheus=lambda url, query: self.prometheus_value,
            prometheus_url="http://prometheus:9090",
        )

    def _http(self, url: str) -> int:
        return self.http_codes.pop(0) if self.http_codes else 200

    @property
    def status(self) -> Obj:
        return self.obj["status"]  # type: ignore[no-any-return]

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    def step_names(self) -> list[str]:
        return [s["name"] for s in self.status.get("steps", [])]

    def edit(self, **spec: Any) -> None:
        merge(self.obj["spec"], spec)
        self.obj["metadata"]["generation"] += 1

    def one(self, *, deleting: bool = False, crash: bool = False) -> Pass:
        p = run_pass(self.env, copy.deepcopy(self.obj), self.now, deleting=deleting)
        if not crash:
            stored = p.status.model_dump(mode="json", by_alias=True, exclude_none=True)
            self.obj["status"] = stored
            self.events += p.events
        return p

    def tick(self, seconds: float = 0.5, **kw: Any) -> Pass:
        p = self.one(**kw)
        self.now += timedelta(seconds=seconds)
        return p

    def run_until(self, done: Any, *, limit: int = 2000, **kw: Any) -> None:
        for _ in range(limit):
            if done(self):
                return
            self.tick(**kw)
        raise AssertionError(f"not reached; phase {self.phase}, steps {self.step_names()}")

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]
