"""Reaction: from an object's creation to the first change it makes, p50 and p95.

For each operation the same change is made four ways, interleaved, on twin objects:
- by the operator, from a custom resource created through the API;
- by a bare loop written here with the official client and no framework: a watch of
  the same kind of custom resource in a namespace the operator does not serve, which
  patches the target on ADDED: the physical limit of a watch-and-patch reaction;
- by `kubectl`, as a person types it (its process start included);
- by a recording loop: the bare loop, which first does what every operation owes
  before its change: it reads the original the change replaces (unless the watch copy
  of its target has it), and writes the custom resource's status that records it,
  with the resourceVersion it saw. Reported only: ours against it is what the operator
  adds beyond that rule, and it against the bare loop is what the rule costs alone;
- where an operation must ask more before its change, by a required loop: the recording
  loop with those requests too, in the operator's order (an EmergencyScale through an
  HPA: the requester's LocalSubjectAccessReview, then the hold beside the status; a
  MaintenanceWindow: its namespace and the MaintenancePolicies beside the ConfigMap).
  Reported only: what the rules together cost a loop with no framework.
Each is timed until a watch of the target shows the change.

`after_quiet` measures the EmergencyScale again, each sample after a quiet spell longer
than kube-apiserver keeps an idle connection open (90 s): the usual case of an
operation created when nothing was due. There the bare loop patches through a client of
its own, idle as long as the operator was, and the benchmark's own connection is used
again before each timed create, so that only the reacting side's connections count.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config, watch
from lib import (
    GROUP,
    VERSION,
    Bench,
    Figure,
    Watcher,
    deployment,
    emergency_window,
    image,
    pct,
)
from urllib3.exceptions import ProtocolError

__all__ = ["run"]

Obj = dict[str, Any]
RECORDING = "recording loop (reads the original, records it, changes)"
REQUIRED = "required loop (also asks what the operation must ask first)"


class BareLoop:
    """Watch one plural in one namespace; call `react(obj)` for every ADDED object."""

    def __init__(self, bench: Bench, plural: str, namespace: str, react: Callable[[Obj], None]):
        self.bench, self.plural, self.namespace, self.react = bench, plural, namespace, react
        self.stream = watch.Watch()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        custom = self.bench.custom
        try:
            for event in self.stream.stream(
                custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, self.plural
            ):
                self.ready.set()
                if event["type"] == "ADDED":
                    self.react(event["object"])
        except ProtocolError:
            return  # the namespace went away at the end of the figure: the watch is over

    def __enter__(self) -> BareLoop:
        self.thread.start()
        time.sleep(1)  # the watch is open (its initial list is empty)
        return self

    def __exit__(self, *_: object) -> None:
        self.stream.stop()


@dataclass(frozen=True)
class Case:
    """One reaction: the custom resource the operator and the loops react to, the target
    whose change is awaited, the loops' change, and a person's command making it."""

    name: str
    plural: str
    body: Callable[[str], Obj]
    """The custom resource for the twin targets named `d<i>` (given `d<i>`)."""
    watch: Callable[..., Any]
    """The list function of the target's kind (a Watcher's)."""
    target: Callable[[str], str]
    """The watched object of a twin (the Deployment, its HPA, its ConfigMap)."""
    done: Callable[[str], Callable[[Obj], bool]]
    """Whether the watched object of a twin shows the change."""
    change: Callable[[Obj, str], None]
    """The loops' change for one custom resource, in the namespace given."""
    kubectl: Callable[[str], list[str]]
    """A person's command making the change on the twin named `k<i>`."""
    original: Callable[[Obj, str], object] | None = None
    """The recording loop's read of what the change replaces, when neither the custom
    resource nor a watch copy of its target has it (the ConfigMap's flag, the
    ReplicaSet of the revision to go back to, which HPA manages the Deployment)."""
    required: Callable[[Obj, str], None] | None = None
    """The required loop's work before its change (the original read and the status
    write included), when the operation must ask more than the recording loop does."""


def _record(bench: Bench, plural: str, obj: Obj, namespace: str) -> None:
    """The status recording the original: one condition, written with the resourceVersion
    the object was seen at."""
    meta = obj["metadata"]
    record = {
        "metadata": {"resourceVersion": meta["resourceVersion"]},
        "status": {
            "observedGeneration": meta.get("generation", 1),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Recorded",
                    "message": "the original is recorded",
                    "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            ],
        },
    }
    bench.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, meta["name"], record
    )


def _recording(bench: Bench, case: Case, namespace: str) -> Callable[[Obj], None]:
    """The bare loop's change, after what every operation owes before a change: the read
    of the original the change replaces (when it needs one), then a status recording it,
    written with the resourceVersion the object was seen at. The least a controller
    obeying that rule can do: its status holds one condition, the operator's the
    originals and the checklist too."""

    def react(obj: Obj) -> None:
        if case.original is not None:
            case.original(obj, namespace)
        _record(bench, case.plural, obj, namespace)
        case.change(obj, namespace)

    return react


def _required(case: Case, namespace: str) -> Callable[[Obj], None]:
    def react(obj: Obj) -> None:
        assert case.required is not None
        case.required(obj, namespace)
        case.change(obj, namespace)

    return react


def _measure(bench: Bench, case: Case, spaces: tuple[str, ...], n: int) -> list[Figure]:
    """Interleaved, sample by sample: the operator (first namespace), the bare loop, the
    recording loop and the required loop, if any (the unserved ones), and kubectl beside
    the bare loop."""
    ns, ref, rec = spaces[:3]
    times: dict[str, list[float]] = {"ours": [], "bare": [], "recording": [], "kubectl": []}
    with contextlib.ExitStack() as stack:
        w_ours = stack.enter_context(Watcher(case.watch, ns))
        w_ref = stack.enter_context(Watcher(case.watch, ref))
        sides = [("ours", ns, w_ours), ("bare", ref, w_ref)]
        sides.append(("recording", rec, stack.enter_context(Watcher(case.watch, rec))))
        stack.enter_context(BareLoop(bench, case.plural, ref, lambda obj: case.change(obj, ref)))
        stack.enter_context(BareLoop(bench, case.plural, rec, _recording(bench, case, rec)))
        if case.required is not None:
            req = spaces[3]
            times["required"] = []
            sides.append(("required", req, stack.enter_context(Watcher(case.watch, req))))
            stack.enter_context(BareLoop(bench, case.plural, req, _required(case, req)))
        for i in range(n):
            twin = f"d{i}"
            for side, where, watcher in sides:
                watcher.expect(case.target(twin), case.done(twin))
                t0 = time.monotonic()
                bench.create(case.plural, where, case.body(twin))
                times[side].append(watcher.wait(case.target(twin)) - t0)
            twin = f"k{i}"
            w_ref.expect(case.target(twin), case.done(twin))
            t0 = time.monotonic()
            bench.kubectl("-n", ref, *case.kubectl(twin))
            times["kubectl"].append(w_ref.wait(case.target(twin)) - t0)
    return _figures(case.name, times)


def _figures(name: str, times: dict[str, list[float]]) -> list[Figure]:
    """Ours against the bare loop (the goals) and kubectl; then, reported only, ours and the
    recording loop (and the required loop) against what a reaction that records before it
    changes (and asks what it must first) costs at least."""
    ms = {side: (pct(t, 50) * 1e3, pct(t, 95) * 1e3) for side, t in times.items()}
    return [
        Figure(f"{name}, p50", ms["ours"][0], ms["bare"][0], "ms", 1.5, "bare loop"),
        Figure(f"{name}, p95", ms["ours"][1], ms["bare"][1], "ms", 2.0, "bare loop"),
        Figure(f"{name}, p50", ms["ours"][0], ms["kubectl"][0], "ms", 1.0, "kubectl"),
        *_beside(name, ms, "recording", RECORDING),
        *(_beside(name, ms, "required", REQUIRED) if "required" in ms else []),
    ]


def _beside(name: str, ms: dict[str, tuple[float, float]], side: str, what: str) -> list[Figure]:
    """Reported only: ours against one of the loops, and that loop against the bare loop."""
    return [
        Figure(f"{name}, p50", ms["ours"][0], ms[side][0], "ms", None, what),
        Figure(
            f"  the {side} loop itself, p50", ms[side][0], ms["bare"][0], "ms", None, "bare loop"
        ),
    ]


def _spaces(bench: Bench, suffix: str, required: bool = False) -> tuple[str, ...]:
    """The operator's namespace, the bare loop's, the recording loop's, and the required
    loop's if asked for."""
    return (
        bench.namespace(suffix),
        bench.namespace(suffix, served=False),
        bench.namespace(f"{suffix}-rec", served=False),
    ) + ((bench.namespace(f"{suffix}-req", served=False),) if required else ())


def _raw(answer: Any) -> bytes:
    """A read's answer as the operator takes it: JSON, not the client's models."""
    return bytes(answer.data)


def _hpas(bench: Bench) -> Callable[[Obj, str], object]:
    """Which HPA manages the Deployment, if any: the operator's read before any size."""
    return lambda _, ns: _raw(
        bench.autoscaling.list_namespaced_horizontal_pod_autoscaler(
            ns, resource_version="0", _preload_content=False
        )
    )


def _review(bench: Bench, obj: Obj, namespace: str, hpa: str) -> None:
    """The operator's question before it sets a size through an HPA: may the requester,
    as admission recorded them, patch it?"""
    notes = obj["metadata"].get("annotations") or {}
    groups = notes.get(f"{GROUP}/requested-by-groups") or ""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "LocalSubjectAccessReview",
        "metadata": {"namespace": namespace},
        "spec": {
            "user": notes.get(f"{GROUP}/requested-by") or "benchmark",
            "groups": [g for g in groups.split(",") if g],
            "resourceAttributes": {
                "verb": "patch",
                "group": "autoscaling",
                "resource": "horizontalpodautoscalers",
                "namespace": namespace,
                "name": hpa,
            },
        },
    }
    authorization = client.AuthorizationV1Api(bench.api)
    _raw(
        authorization.create_namespaced_local_subject_access_review(
            namespace, review, _preload_content=False
        )
    )


def _hold(bench: Bench, name: str, namespace: str) -> None:
    """The hold the operator puts on a Deployment it changes, an annotation."""
    hold = {"metadata": {"annotations": {f"{GROUP}/held-by": "benchmark"}}}
    _raw(bench.apps.patch_namespaced_deployment(name, namespace, hold, _preload_content=False))


def _es(target: str, replicas: int, name: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EmergencyScale",
        "metadata": {"name": name},
        "spec": {"targets": [{"name": target, "replicas": replicas}]},
    }


def _scale(apps: client.AppsV1Api, es: Obj, namespace: str) -> None:
    """The loops' reaction to an EmergencyScale: its replicas, patched onto its target."""
    target = es["spec"]["targets"][0]
    apps.patch_namespaced_deployment(
        target["name"], namespace, {"spec": {"replicas": target["replicas"]}}
    )


def _scaled(d: Obj) -> bool:
    return int(d["spec"].get("replicas", 1)) == 2


def _loops(spaces: tuple[str, ...], n: int) -> dict[str, list[str]]:
    """Per namespace, the twins it holds: `d<i>` everywhere, `k<i>` beside the bare loop."""
    twins = [f"d{i}" for i in range(n)]
    return {
        space: twins + ([f"k{i}" for i in range(n)] if space == spaces[1] else [])
        for space in spaces
    }


def emergency_scale(bench: Bench, n: int, suffix: str = "react-es") -> list[Figure]:
    spaces = _spaces(bench, suffix)
    loops = _loops(spaces, n)
    bench.apply([deployment(t, ns, 1) for ns, ts in loops.items() for t in ts])
    for ns, ts in loops.items():
        _rolled_out_all(bench, ns, ts)
    case = Case(
        "EmergencyScale apply -> Deployment scaled",
        "emergencyscales",
        lambda twin: _es(twin, 2, f"es-{twin}"),
        bench.apps.list_namespaced_deployment,
        lambda twin: twin,
        lambda twin: _scaled,
        functools.partial(_scale, bench.apps),
        lambda twin: ["scale", f"deployment/{twin}", "--replicas=2"],
        _hpas(bench),
    )
    return _measure(bench, case, spaces, n)


def _hpa(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{name}-hpa", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 3,
        },
    }


def emergency_scale_hpa(bench: Bench, n: int) -> list[Figure]:
    spaces = _spaces(bench, "react-hpa", required=True)
    loops = _loops(spaces, n)
    bench.apply(
        [doc for ns, ts in loops.items() for t in ts for doc in (deployment(t, ns, 1), _hpa(t, ns))]
    )
    for ns, ts in loops.items():
        _rolled_out_all(bench, ns, ts)

    def raise_min(es: Obj, ns: str) -> None:
        target = es["spec"]["targets"][0]
        bench.autoscaling.patch_namespaced_horizontal_pod_autoscaler(
            f"{target['name']}-hpa",
            ns,
            {"spec": {"minReplicas": target["replicas"], "maxReplicas": 3}},
        )

    def raised(h: Obj) -> bool:
        return int(h["spec"].get("minReplicas", 1)) == 2

    hpas = _hpas(bench)
    pool = ThreadPoolExecutor(2, thread_name_prefix="required")

    def required(es: Obj, ns: str) -> None:
        """The HPA found, the requester's review, then the hold beside the status."""
        hpas(es, ns)
        target = es["spec"]["targets"][0]["name"]
        _review(bench, es, ns, f"{target}-hpa")
        hold: Future[None] = pool.submit(_hold, bench, target, ns)
        _record(bench, "emergencyscales", es, ns)
        hold.result()

    case = Case(
        "EmergencyScale apply -> HPA raised",
        "emergencyscales",
        lambda twin: _es(twin, 2, f"es-{twin}"),
        bench.autoscaling.list_namespaced_horizontal_pod_autoscaler,
        lambda twin: f"{twin}-hpa",
        lambda twin: raised,
        raise_min,
        lambda twin: ["patch", f"hpa/{twin}-hpa", "-p", '{"spec":{"minReplicas":2}}'],
        hpas,
        required,
    )
    with pool:
        return _measure(bench, case, spaces, n)


def _two_revisions(bench: Bench, namespace: str, names: list[str]) -> None:
    bench.apply([deployment(name, namespace, 1) for name in names])
    _rolled_out_all(bench, namespace, names, "v1")
    bench.apply([deployment(name, namespace, 1, version="2") for name in names])
    _rolled_out_all(bench, namespace, names, "v2")


def _rolled_out_all(bench: Bench, namespace: str, names: list[str], what: str = "") -> None:
    """Every Deployment named is rolled out: the controllers' burst of work on new
    Deployments (ReplicaSets, pods, their status) is over before a sample is taken."""
    for name in names:
        bench.wait(lambda name=name: _rolled_out(bench, namespace, name), 60, f"{name} {what}")


def _rolled_out(bench: Bench, namespace: str, name: str) -> bool:
    d = bench.apps.read_namespaced_deployment_status(name, namespace)
    s = d.status
    return bool(
        (s.observed_generation or 0) >= d.metadata.generation
        and (s.updated_replicas or 0) == d.spec.replicas == (s.available_replicas or 0)
        and (s.replicas or 0) == d.spec.replicas
    )


def _is_v1(name: str) -> Callable[[Obj], bool]:
    wanted = image(f"{name}-1")
    return lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"] == wanted


def rollback(bench: Bench, n: int) -> list[Figure]:
    spaces = _spaces(bench, "react-rb")
    for space, twins in _loops(spaces, n).items():
        _two_revisions(bench, space, twins)

    def restore(rb: Obj, ns: str) -> None:
        name = rb["spec"]["targets"][0]["name"]
        template = deployment(name, ns, 1)["spec"]["template"]
        bench.apps.patch_namespaced_deployment(name, ns, {"spec": {"template": template}})

    def revisions(rb: Obj, ns: str) -> bytes:
        name = rb["spec"]["targets"][0]["name"]
        return _raw(
            bench.apps.list_namespaced_replica_set(
                ns, label_selector=f"app={name}", resource_version="0", _preload_content=False
            )
        )

    case = Case(
        "Rollback apply -> template restored",
        "rollbacks",
        lambda twin: {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Rollback",
            "metadata": {"name": f"rb-{twin}"},
            "spec": {"targets": [{"name": twin}]},
        },
        bench.apps.list_namespaced_deployment,
        lambda twin: twin,
        _is_v1,
        restore,
        lambda twin: ["rollout", "undo", f"deployment/{twin}"],
        revisions,
    )
    return _measure(bench, case, spaces, n)


def _configmap(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"MAINTENANCE_MODE": "false"},
    }


def maintenance_window(bench: Bench, n: int) -> list[Figure]:
    spaces = _spaces(bench, "react-mw", required=True)
    bench.apply([_configmap(t, ns) for ns, ts in _loops(spaces, n).items() for t in ts])

    def flip(mw: Obj, ns: str) -> None:
        name = mw["spec"]["maintenanceMode"]["configMap"]
        bench.core.patch_namespaced_config_map(name, ns, {"data": {"MAINTENANCE_MODE": "true"}})

    def flipped(cm: Obj) -> bool:
        return (cm.get("data") or {}).get("MAINTENANCE_MODE") == "true"

    def flag(mw: Obj, ns: str) -> bytes:
        name = mw["spec"]["maintenanceMode"]["configMap"]
        return _raw(bench.core.read_namespaced_config_map(name, ns, _preload_content=False))

    def policies() -> bytes:  # from the watch cache, as the operator reads them
        return _raw(
            bench.custom.list_cluster_custom_object(
                GROUP, VERSION, "maintenancepolicies", resource_version="0", _preload_content=False
            )
        )

    pool = ThreadPoolExecutor(2, thread_name_prefix="required")

    def required(mw: Obj, ns: str) -> None:
        """The namespace (its labels select the policies) and the MaintenancePolicies
        beside the ConfigMap, then the status."""
        labels = pool.submit(lambda: _raw(bench.core.read_namespace(ns, _preload_content=False)))
        checklist = pool.submit(policies)
        flag(mw, ns)
        labels.result()
        checklist.result()
        _record(bench, "maintenancewindows", mw, ns)

    case = Case(
        "MaintenanceWindow apply -> flag set (first change)",
        "maintenancewindows",
        lambda twin: emergency_window(f"mw-{twin}", maintenanceMode={"configMap": twin}),
        bench.core.list_namespaced_config_map,
        lambda twin: twin,
        lambda twin: flipped,
        flip,
        lambda twin: ["patch", f"configmap/{twin}", "-p", '{"data":{"MAINTENANCE_MODE":"true"}}'],
        flag,
        required,
    )
    with pool:
        return _measure(bench, case, spaces, n)


QUIET_SECONDS = 95.0
"""Longer than kube-apiserver keeps a connection that carries no request open (90 s)."""


def after_quiet(bench: Bench, n: int, seconds: float = QUIET_SECONDS) -> list[Figure]:
    ns, ref = bench.namespace("quiet-es"), bench.namespace("quiet-es", served=False)
    bench.apply([deployment(f"d{i}", where, 1) for where in (ns, ref) for i in range(n)])
    ours: list[float] = []
    bare: list[float] = []
    with (
        config.new_client_from_config(config_file=str(bench.kubeconfig)) as api,
        Watcher(bench.apps.list_namespaced_deployment, ns) as w_ours,
        Watcher(bench.apps.list_namespaced_deployment, ref) as w_ref,
        BareLoop(
            bench,
            "emergencyscales",
            ref,
            functools.partial(_scale, client.AppsV1Api(api), namespace=ref),
        ),
    ):
        for i in range(n):
            time.sleep(seconds)
            for namespace, watcher, times in ((ns, w_ours, ours), (ref, w_ref, bare)):
                bench.core.read_namespace(namespace)  # the benchmark's connection, open again
                watcher.expect(f"d{i}", _scaled)
                t0 = time.monotonic()
                bench.create("emergencyscales", namespace, _es(f"d{i}", 2, f"es{i}"))
                times.append(watcher.wait(f"d{i}") - t0)
    name = f"EmergencyScale after {seconds:g} s quiet -> scaled"
    return [
        Figure(f"{name}, p50", pct(ours, 50) * 1e3, pct(bare, 50) * 1e3, "ms", 1.5, "bare loop"),
        Figure(f"{name}, max", max(ours) * 1e3, max(bare) * 1e3, "ms", 2.0, "bare loop"),
    ]


def run(bench: Bench, n: int) -> list[Figure]:
    figures = []
    for scenario in (emergency_scale, emergency_scale_hpa, rollback, maintenance_window):
        figures += scenario(bench, n)
    return figures
