"""The one in-memory Kubernetes API for unit tests, checked against core.ports.KubePort.

It keeps objects as the API server's JSON, with what the operator relies on: a
resourceVersion that grows with every write, merge patches that honour a
resourceVersion precondition (Conflict when stale), the status subresource apart
from the rest, JSON patches of Deployments (`kubectl rollout undo`'s), finalizers that
hold a deleted object back, and a log of the writes for order assertions. The e2e
tests use the real API server; this is for the pure-glue tests of handlers only.

    kube = FakeKube()
    kube.add_deployment("web", replicas=3)
    kube.add_custom("emergencyscales", {...})
    kube.calls          # [("patch", "Deployment", "web"), ...]
    kube.reads          # [("get", "Deployment", "web"), ("list", "HorizontalPodAutoscaler")]
    kube.before_write = lambda call: ...   # a hook to race a write (steal a hold, ...)
    kube.read_errors[("Secret", "pg")] = Forbidden("...")   # a read the API server refuses
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from runbook_operator.adapters.kube import Conflict, NotFound
from runbook_operator.core.ports import KubePort
from runbook_operator.core.watchcache import WatchCache

__all__ = ["FakeKube", "deployment", "merge"]

Obj = dict[str, Any]
NS = "shop"


def merge(target: Obj, patch: Obj) -> None:
    """RFC 7386 merge patch, in place; maps left empty are dropped (omitempty)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
            if not target[key]:
                del target[key]
        elif isinstance(value, dict):
            target[key] = {}
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def deployment(
    name: str,
    replicas: int,
    image: str = "img:1",
    *,
    labels: dict[str, str] | None = None,
    selector: Obj | None = None,
) -> Obj:
    """A Deployment whose rollout is complete (status matches its spec)."""
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NS,
            "generation": 1,
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": replicas,
            "selector": selector or {"matchLabels": labels},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


def selects(selector: str, labels: dict[str, str]) -> bool:
    """A label selector string (k=v, k in (a,b), k notin (a), k, !k) against labels."""
    for raw in re.findall(r"[^,(]+(?:\([^)]*\))?", selector):
        part = raw.strip()
        if " in (" in part or " notin (" in part:
            key, op, values = re.match(r"(\S+) (in|notin) \((.*)\)", part).groups()  # type: ignore[union-attr]
            inside = labels.get(key) in values.split(",")
            if inside != (op == "in"):
                return False
        elif "=" in part:
            key, value = part.split("=", 1)
            if labels.get(key) != value:
                return False
        elif part.startswith("!"):
            if part[1:] in labels:
                return False
        elif part and part not in labels:
            return False
    return True


class FakeKube:
    def __init__(self) -> None:
        self.store: dict[tuple[str, str, str], Obj] = {}
        """(kind or plural, namespace, name) -> object."""
        self.calls: list[tuple[str, ...]] = []
        self.reads: list[tuple[str, ...]] = []
        """Every read, in order: ("get", kind or plural, name) or ("list", kind), the
        latter with "cached" added for a list from the watch cache."""
        self.events: list[Obj] = []
        """Every core/v1 Event created, in order."""
        self.denied: set[tuple[str, str, str, str]] = set()
        """(user, verb, resource, name) a SubjectAccessReview answers no to."""
        self.cache: dict[str, list[Obj]] = {}
        """Kind -> what a cached list of it answers (a watch cache behind the store);
        a kind not here is answered from the store, cached or not."""
        self.before_write: Callable[[tuple[str, ...]], None] | None = None
        self.before_status: Callable[[str, Obj], None] | None = None
        """Called with (name, patch) before a status patch is applied (e.g. to crash it)."""
        self.auto_rollout = True
        """Deployments' status follows their spec at once (a fast Deployment controller)."""
        self.template_changes: Counter[str] = Counter()
        """Deployment name -> how often its pod template changed (each is a rollout)."""
        self.read_errors: dict[tuple[str, str], Exception] = {}
        """(kind or plural, name) -> what reading that object raises (e.g. Forbidden)."""
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)

    # --- building the world ----------------------------------------------

    def put(self, kind: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", NS)
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        meta["resourceVersion"] = str(next(self._versions))
        self.store[(kind, meta["namespace"], meta["name"])] = obj
        return obj

    def add_deployment(self, name: str, replicas: int, image: str = "img:1", **kw: Any) -> Obj:
        return self.put("Deployment", deployment(name, replicas, image, **kw))

    def add_statefulset(self, name: str, replicas: int, image: str = "img:1") -> Obj:
        """A StatefulSet whose rollout is complete (RollingUpdate)."""
        obj = deployment(name, replicas, image)
        obj["kind"] = "StatefulSet"
        obj["metadata"]["annotations"] = {}
        obj["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
        revision = f"{name}-1"
        obj["status"] = {
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": replicas,
            "updatedReplicas": replicas,
            "currentRevision": revision,
            "updateRevision": revision,
        }
        return self.put("StatefulSet", obj)

    def add_hpa(self, name: str, target: str, low: int, high: int) -> Obj:
        spec = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": low,
            "maxReplicas": high,
        }
        return self.put("HorizontalPodAutoscaler", {"metadata": {"name": name}, "spec": spec})

    def add_configmap(self, name: str, data: dict[str, str]) -> Obj:
        return self.put("ConfigMap", {"metadata": {"name": name}, "data": dict(data)})

    def add_secret(
        self,
        name: str,
        data: dict[str, str],
        *,
        type: str = "Opaque",
        labels: dict[str, str] | None = None,
    ) -> Obj:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        meta: Obj = {"name": name, "labels": dict(labels or {})}
        return self.put("Secret", {"metadata": meta, "type": type, "data": encoded})

    def add_credentials(self, name: str, data: dict[str, str]) -> Obj:
        """A Secret that opted in to be used as database credentials (the label)."""
        return self.add_secret(name, data, labels={"ops.mailscore.com/credentials": "true"})

    def add_custom(self, plural: str, obj: Obj) -> Obj:
        obj.setdefault("metadata", {}).setdefault("generation", 1)
        return self.put(plural, obj)

    def add_cluster_custom(self, plural: str, obj: Obj) -> Obj:
        """A cluster-scoped object of ours (a MaintenancePolicy)."""
        obj.setdefault("metadata", {})["namespace"] = ""
        return self.add_custom(plural, obj)

    def label_namespace(self, name: str, labels: dict[str, str]) -> Obj:
        """The namespace with these labels (namespaces exist, unlabelled, until then)."""
        return self.put(
            "Namespace", {"metadata": {"name": name, "namespace": "", "labels": labels}}
        )

    def watched(self) -> WatchCache:
        """The operator's watch cache as the watches have delivered everything up to now
        (core.watchcache): what changes in the store afterwards, it has not seen yet."""
        cache = WatchCache()
        for (kind, _, _), obj in self.store.items():
            cache.observe(kind, "ADDED", copy.deepcopy(obj))
        return cache

    def obj(self, kind: str, name: str, namespace: str = NS) -> Obj:
        return self.store[(kind, namespace, name)]

    def annotations(self, kind: str, name: str, namespace: str = NS) -> dict[str, str]:
        return dict(self.obj(kind, name, namespace)["metadata"].get("annotations") or {})

    # --- internals ----------------------------------------------------------

    def _get(self, kind: str, namespace: str, name: str) -> Obj:
        self.reads.append(("get", kind, name))
        error = self.read_errors.get((kind, name))
        if error is not None:
            raise error
        try:
            return copy.deepcopy(self.store[(kind, namespace, name)])
        except KeyError:
            raise NotFound(f"{kind} {name} not found") from None

    def _write(self, call: tuple[str, ...], kind: str, namespace: str, name: str) -> Obj:
        self.calls.append(call)
        if self.before_write is not None:
            self.before_write(call)
        if (kind, namespace, name) not in self.store:
            raise NotFound(f"{kind} {name} not found")
        return self.store[(kind, namespace, name)]

    def _merge(self, obj: Obj, patch: Obj, *, only: str | None = None) -> Obj:
        patch = copy.deepcopy(patch)
        meta = patch.get("metadata") or {}
        expected = meta.pop("resourceVersion", None)
        if expected is not None and expected != obj["metadata"]["resourceVersion"]:
            raise Conflict(f"{obj['metadata']['name']} has changed (resourceVersion)")
        if only == "status":
            patch = {"status": patch.get("status") or {}}
        elif only == "main":
            patch.pop("status", None)
            if "spec" in patch:
                obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
        before = copy.deepcopy(obj)
        merge(obj, patch)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self._settle(obj, before)
        self._maybe_gone(obj)
        return copy.deepcopy(obj)

    def _settle(self, obj: Obj, before: Obj) -> None:
        """A Deployment whose spec changed gets a new generation, rolled out at once; a new
        pod template is a new revision, as the Deployment controller numbers them."""
        if obj.get("kind") == "StatefulSet" and obj.get("spec") != before.get("spec"):
            self._settle_statefulset(obj, before)
            return
        if obj.get("kind") != "Deployment" or obj.get("spec") == before.get("spec"):
            return
        meta = obj["metadata"]
        if (obj.get("spec") or {}).get("template") != (before.get("spec") or {}).get("template"):
            self.template_changes[meta["name"]] += 1
            annotations = meta.setdefault("annotations", {})
            revision = int(annotations.get("deployment.kubernetes.io/revision", "0"))
            annotations["deployment.kubernetes.io/revision"] = str(revision + 1)
        if before.get("spec") is not None and meta.get("generation") == before["metadata"].get(
            "generation"
        ):
            meta["generation"] = meta.get("generation", 1) + 1
        if self.auto_rollout:
            self.roll_out(meta["name"], meta["namespace"])

    def _settle_statefulset(self, obj: Obj, before: Obj) -> None:
        meta, status = obj["metadata"], obj.setdefault("status", {})
        meta["generation"] = meta.get("generation", 1) + 1
        if obj["spec"].get("template") != (before.get("spec") or {}).get("template"):
            self.template_changes[meta["name"]] += 1
            status["updateRevision"] = f"{meta['name']}-{meta['generation']}"
            status["updatedReplicas"] = 0
        if self.auto_rollout:
            replicas = obj["spec"].get("replicas", 1)
            status.update(
                observedGeneration=meta["generation"],
                currentRevision=status.get("updateRevision"),
                replicas=replicas,
                readyReplicas=replicas,
                updatedReplicas=replicas,
            )

    def roll_out(self, name: str, namespace: str = NS) -> None:
        """The Deployment controller catches up: status matches the spec."""
        obj = self.store[("Deployment", namespace, name)]
        replicas = obj["spec"].get("replicas", 1)
        obj["status"] = {
            **(obj.get("status") or {}),
            "observedGeneration": obj["metadata"].get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }

    def _maybe_gone(self, obj: Obj) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self.store.pop((self._kind_of(obj), meta["namespace"], meta["name"]), None)

    def _kind_of(self, obj: Obj) -> str:
        for (kind, _, _), stored in self.store.items():
            if stored is obj:
                return kind
        return ""

    # --- workloads ------------------------------------------------------------

    def get_workload(self, kind: str, namespace: str, name: str) -> Obj:
        return self._get(kind, namespace, name)

    def patch_workload(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        obj = self._write(("patch", kind, name), kind, namespace, name)
        return self._merge(obj, patch)

    def scale_workload(self, kind: str, namespace: str, name: str, replicas: int) -> Obj:
        obj = self._write(("scale", kind, name), kind, namespace, name)
        now = self._merge(obj, {"spec": {"replicas": replicas}})
        meta = now["metadata"]
        return {  # the answer is a Scale, as the API server's
            "kind": "Scale",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion")},
            "spec": {"replicas": replicas},
            "status": {"replicas": (now.get("status") or {}).get("replicas", 0)},
        }

    def get_deployment(self, namespace: str, name: str) -> Obj:
        return self.get_workload("Deployment", namespace, name)

    def patch_deployment(self, namespace: str, name: str, patch: Obj) -> Obj:
        return self.patch_workload("Deployment", namespace, name, patch)

    def json_patch_deployment(self, namespace: str, name: str, operations: list[Obj]) -> Obj:
        obj = self._write(("json-patch", "Deployment", name), "Deployment", namespace, name)
        before = copy.deepcopy(obj)
        for op in operations:
            path = [p for p in op["path"].split("/") if p]
            if path == ["metadata", "resourceVersion"]:
                if op["value"] != obj["metadata"]["resourceVersion"]:
                    raise Conflict(f"{name} has changed (resourceVersion)")
                continue
            parent = obj
            for part in path[:-1]:
                parent = parent.setdefault(part, {})
            if op["op"] == "remove":
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = copy.deepcopy(op["value"])
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        if obj["spec"].get("template") != before["spec"].get("template"):
            self.template_changes[name] += 1
        if obj["spec"] != before["spec"]:
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            if self.auto_rollout:
                self.roll_out(name, namespace)
        return copy.deepcopy(obj)

    def list_replicasets(
        self, namespace: str, label_selector: str, *, cached: bool = False
    ) -> list[Obj]:
        self.reads.append(("list", "ReplicaSet", "cached") if cached else ("list", "ReplicaSet"))
        if cached and "ReplicaSet" in self.cache:
            return copy.deepcopy(self.cache["ReplicaSet"])
        return [
            copy.deepcopy(o)
            for (kind, ns, _), o in self.store.items()
            if kind == "ReplicaSet"
            and ns == namespace
            and selects(label_selector, o["metadata"].get("labels") or {})
        ]

    def patch_replicaset(self, namespace: str, name: str, patch: Obj) -> Obj:
        obj = self._write(("patch", "ReplicaSet", name), "ReplicaSet", namespace, name)
        return self._merge(obj, patch)

    # --- autoscaling and configuration --------------------------------------

    def list_hpas(self, namespace: str, *, cached: bool = False) -> list[Obj]:
        self.reads.append(("list", "HorizontalPodAutoscaler", *(("cached",) if cached else ())))
        return [
            copy.deepcopy(o)
            for (kind, ns, _), o in self.store.items()
            if kind == "HorizontalPodAutoscaler" and ns == namespace
        ]

    def find_hpa(self, namespace: str, kind: str, name: str) -> Obj | None:
        for hpa in self.list_hpas(namespace):
            ref = hpa["spec"]["scaleTargetRef"]
            if ref.get("kind") == kind and ref.get("name") == name:
                return hpa
        return None

    def patch_hpa(self, namespace: str, name: str, patch: Obj) -> Obj:
        kind = "HorizontalPodAutoscaler"
        obj = self._write(("patch", kind, name), kind, namespace, name)
        return self._merge(obj, patch)

    def get_configmap(self, namespace: str, name: str) -> Obj:
        return self._get("ConfigMap", namespace, name)

    def patch_configmap(self, namespace: str, name: str, patch: Obj) -> Obj:
        obj = self._write(("patch", "ConfigMap", name), "ConfigMap", namespace, name)
        return self._merge(obj, patch)

    def create_configmap(self, namespace: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        self.calls.append(("create", "ConfigMap", name))
        if ("ConfigMap", namespace, name) in self.store:
            raise Conflict(f"ConfigMap {name} already exists")
        body = copy.deepcopy(body)
        body["metadata"]["namespace"] = namespace
        return copy.deepcopy(self.put("ConfigMap", body))

    def get_object(self, api_version: str, plural: str, namespace: str, name: str) -> Obj:
        return self._get(plural, namespace, name)

    def patch_object(
        self, api_version: str, plural: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        obj = self._write(("patch", plural, name), plural, namespace, name)
        return self._merge(obj, patch)

    def read_secret(self, namespace: str, name: str) -> Obj:
        return self._get("Secret", namespace, name)

    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        data = self._get("Secret", namespace, name).get("data") or {}
        if key not in data:
            raise NotFound(f"Secret {name} has no key {key!r}")
        return base64.b64decode(data[key])

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        return [
            copy.deepcopy(o)
            for (kind, ns, _), o in self.store.items()
            if kind == "Pod"
            and ns == namespace
            and selects(label_selector, o["metadata"].get("labels") or {})
        ]

    def list_events(self, namespace: str, field_selector: str = "") -> list[Obj]:
        """The Events `put` as kind "Event" (type=X and involvedObject.name=Y understood);
        not the ones the operator created (those are `events`)."""
        wanted = dict(p.split("=", 1) for p in field_selector.split(",") if "=" in p)
        out = []
        for (kind, ns, _), o in self.store.items():
            if kind != "Event" or ns != namespace:
                continue
            fields = {"type": o.get("type"), "involvedObject.name": o["involvedObject"]["name"]}
            if all(fields.get(k) == v for k, v in wanted.items()):
                out.append(copy.deepcopy(o))
        return out

    def create_event(self, namespace: str, body: Obj) -> Obj:
        self.calls.append(("create_event", namespace, str(body.get("reason"))))
        self.events.append(body)
        return body

    def get_namespace(self, name: str) -> Obj:
        error = self.read_errors.get(("Namespace", name))
        if error is not None:
            raise error
        found = self.store.get(("Namespace", "", name))
        return copy.deepcopy(found) if found else {"metadata": {"name": name, "labels": {}}}

    # --- our own objects --------------------------------------------------------

    def list_cluster_custom(self, plural: str, *, cached: bool = False) -> list[Obj]:
        error = self.read_errors.get((plural, "*"))
        if error is not None:
            raise error
        return [
            copy.deepcopy(o)
            for (kind, ns, _), o in self.store.items()
            if kind == plural and ns == ""
        ]

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj:
        return self._get(plural, namespace, name)

    def list_custom(
        self, plural: str, namespace: str, label_selector: str = "", *, cached: bool = False
    ) -> list[Obj]:
        wanted = dict(p.split("=", 1) for p in label_selector.split(",") if "=" in p)
        return [
            copy.deepcopy(o)
            for (kind, ns, _), o in self.store.items()
            if kind == plural
            and ns == namespace
            and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]

    def create_custom(self, plural: str, namespace: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        self.calls.append(("create", plural, name))
        if (plural, namespace, name) in self.store:
            raise Conflict(f"{plural} {name} already exists")
        body = copy.deepcopy(body)
        body["metadata"]["namespace"] = namespace
        return copy.deepcopy(self.add_custom(plural, body))

    def patch_custom(self, plural: str, namespace: str, name: str, patch: Obj) -> Obj:
        obj = self._write(("patch", plural, name), plural, namespace, name)
        return self._merge(obj, patch, only="main")

    def patch_custom_status(self, plural: str, namespace: str, name: str, patch: Obj) -> Obj:
        obj = self._write(("patch-status", plural, name), plural, namespace, name)
        if self.before_status is not None:
            self.before_status(name, patch)
        return self._merge(obj, patch, only="status")

    def delete_custom(self, plural: str, namespace: str, name: str) -> bool:
        self.calls.append(("delete", plural, name))
        obj = self.store.get((plural, namespace, name))
        if obj is None:
            return False
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            obj["metadata"]["resourceVersion"] = str(next(self._versions))
        else:
            del self.store[(plural, namespace, name)]
        return True

    def allowed(
        self,
        user: str,
        groups: list[str],
        verb: str,
        group: str,
        resource: str,
        namespace: str,
        name: str,
    ) -> bool:
        """Allowed unless `denied` holds (user, verb, resource, name)."""
        self.calls.append(("allowed", user, verb, resource, name))
        return (user, verb, resource, name) not in self.denied


_CHECK: KubePort = FakeKube()  # mypy: the fake has every method of the port
assert isinstance(_CHECK, KubePort)
