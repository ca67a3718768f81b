"""Reaction: from an object's creation to the first change it makes, p50 and p95.

For each operation the same change is made three ways, interleaved, on twin objects:
- by the operator, from a custom resource created through the API;
- by a bare loop written here with the official client and no framework: a watch of
  the same kind of custom resource in a namespace the operator does not serve, which
  patches the target on ADDED: the physical limit of a watch-and-patch reaction;
- by `kubectl`, as a person types it (its process start included).
Each is timed until a watch of the target shows the change.

`after_quiet` measures the EmergencyScale again, each sample after a quiet spell longer
than kube-apiserver keeps an idle connection open (90 s): the usual case of an
operation created when nothing was due. There the bare loop patches through a client of
its own, idle as long as the operator was, and the benchmark's own connection is used
again before each timed create, so that only the reacting side's connections count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config, watch
from lib import GROUP, VERSION, Bench, Figure, Watcher, deployment, image, pct
from urllib3.exceptions import ProtocolError

__all__ = ["run"]

Obj = dict[str, Any]


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


def _figures(name: str, ours: list[float], bare: list[float], cli: list[float]) -> list[Figure]:
    out = []
    for q, goal in ((50, 1.5), (95, 2.0)):
        out.append(
            Figure(f"{name}, p{q}", pct(ours, q) * 1e3, pct(bare, q) * 1e3, "ms", goal, "bare loop")
        )
    out.append(
        Figure(f"{name}, p50", pct(ours, 50) * 1e3, pct(cli, 50) * 1e3, "ms", 1.0, "kubectl")
    )
    return out


def _es(target: str, replicas: int, name: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EmergencyScale",
        "metadata": {"name": name},
        "spec": {"targets": [{"name": target, "replicas": replicas}]},
    }


def _scaler(apps: client.AppsV1Api, namespace: str) -> Callable[[Obj], None]:
    """The bare loop's reaction to an EmergencyScale: its replicas, patched onto its target."""

    def scale(es: Obj) -> None:
        target = es["spec"]["targets"][0]
        apps.patch_namespaced_deployment(
            target["name"], namespace, {"spec": {"replicas": target["replicas"]}}
        )

    return scale


def _scaled(d: Obj) -> bool:
    return int(d["spec"].get("replicas", 1)) == 2


def emergency_scale(bench: Bench, n: int, suffix: str = "react-es") -> list[Figure]:
    ns, ref = bench.namespace(suffix), bench.namespace(suffix, served=False)
    docs = [deployment(f"d{i}", ns, 1) for i in range(n)]
    docs += [deployment(f"d{i}", ref, 1) for i in range(n)] + [
        deployment(f"k{i}", ref, 1) for i in range(n)
    ]
    bench.apply(docs)
    ours: list[float] = []
    bare: list[float] = []
    cli: list[float] = []
    with (
        Watcher(bench.apps.list_namespaced_deployment, ns) as w_ours,
        Watcher(bench.apps.list_namespaced_deployment, ref) as w_ref,
        BareLoop(bench, "emergencyscales", ref, _scaler(bench.apps, ref)),
    ):
        for i in range(n):
            w_ours.expect(f"d{i}", _scaled)
            t0 = time.monotonic()
            bench.create("emergencyscales", ns, _es(f"d{i}", 2, f"es{i}"))
            ours.append(w_ours.wait(f"d{i}") - t0)
            w_ref.expect(f"d{i}", _scaled)
            t0 = time.monotonic()
            bench.create("emergencyscales", ref, _es(f"d{i}", 2, f"es{i}"))
            bare.append(w_ref.wait(f"d{i}") - t0)
            w_ref.expect(f"k{i}", _scaled)
            t0 = time.monotonic()
            bench.kubectl("-n", ref, "scale", f"deployment/k{i}", "--replicas=2")
            cli.append(w_ref.wait(f"k{i}") - t0)
    return _figures("EmergencyScale apply -> Deployment scaled", ours, bare, cli)


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
    ns, ref = bench.namespace("react-hpa"), bench.namespace("react-hpa", served=False)
    docs: list[Obj] = []
    for space, names in (
        (ns, [f"d{i}" for i in range(n)]),
        (ref, [f"d{i}" for i in range(n)] + [f"k{i}" for i in range(n)]),
    ):
        for name in names:
            docs += [deployment(name, space, 1), _hpa(name, space)]
    bench.apply(docs)
    ours: list[float] = []
    bare: list[float] = []
    cli: list[float] = []

    def raise_min(es: Obj) -> None:
        target = es["spec"]["targets"][0]
        bench.autoscaling.patch_namespaced_horizontal_pod_autoscaler(
            f"{target['name']}-hpa",
            ref,
            {"spec": {"minReplicas": target["replicas"], "maxReplicas": 3}},
        )

    def raised(h: Obj) -> bool:
        return int(h["spec"].get("minReplicas", 1)) == 2

    hpas = bench.autoscaling.list_namespaced_horizontal_pod_autoscaler
    with (
        Watcher(hpas, ns) as w_ours,
        Watcher(hpas, ref) as w_ref,
        BareLoop(bench, "emergencyscales", ref, raise_min),
    ):
        for i in range(n):
            w_ours.expect(f"d{i}-hpa", raised)
            t0 = time.monotonic()
            bench.create("emergencyscales", ns, _es(f"d{i}", 2, f"es{i}"))
            ours.append(w_ours.wait(f"d{i}-hpa") - t0)
            w_ref.expect(f"d{i}-hpa", raised)
            t0 = time.monotonic()
            bench.create("emergencyscales", ref, _es(f"d{i}", 2, f"es{i}"))
            bare.append(w_ref.wait(f"d{i}-hpa") - t0)
            w_ref.expect(f"k{i}-hpa", raised)
            t0 = time.monotonic()
            bench.kubectl("-n", ref, "patch", f"hpa/k{i}-hpa", "-p", '{"spec":{"minReplicas":2}}')
            cli.append(w_ref.wait(f"k{i}-hpa") - t0)
    return _figures("EmergencyScale apply -> HPA raised", ours, bare, cli)


def _two_revisions(bench: Bench, namespace: str, names: list[str]) -> None:
    bench.apply([deployment(name, namespace, 1) for name in names])
    for name in names:
        bench.wait(lambda name=name: _rolled_out(bench, namespace, name), 60, f"{name} v1")
    bench.apply([deployment(name, namespace, 1, version="2") for name in names])
    for name in names:
        bench.wait(lambda name=name: _rolled_out(bench, namespace, name), 60, f"{name} v2")


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
    ns, ref = bench.namespace("react-rb"), bench.namespace("react-rb", served=False)
    _two_revisions(bench, ns, [f"d{i}" for i in range(n)])
    _two_revisions(bench, ref, [f"d{i}" for i in range(n)] + [f"k{i}" for i in range(n)])
    ours: list[float] = []
    bare: list[float] = []
    cli: list[float] = []

    def restore(rb: Obj) -> None:
        name = rb["spec"]["targets"][0]["name"]
        template = deployment(name, ref, 1)["spec"]["template"]
        bench.apps.patch_namespaced_deployment(name, ref, {"spec": {"template": template}})

    deployments = bench.apps.list_namespaced_deployment
    with (
        Watcher(deployments, ns) as w_ours,
        Watcher(deployments, ref) as w_ref,
        BareLoop(bench, "rollbacks", ref, restore),
    ):
        for i in range(n):
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Rollback",
                "metadata": {"name": f"rb{i}"},
                "spec": {"targets": [{"name": f"d{i}"}]},
            }
            w_ours.expect(f"d{i}", _is_v1(f"d{i}"))
            t0 = time.monotonic()
            bench.create("rollbacks", ns, body)
            ours.append(w_ours.wait(f"d{i}") - t0)
            w_ref.expect(f"d{i}", _is_v1(f"d{i}"))
            t0 = time.monotonic()
            bench.create("rollbacks", ref, body)
            bare.append(w_ref.wait(f"d{i}") - t0)
            w_ref.expect(f"k{i}", _is_v1(f"k{i}"))
            t0 = time.monotonic()
            bench.kubectl("-n", ref, "rollout", "undo", f"deployment/k{i}")
            cli.append(w_ref.wait(f"k{i}") - t0)
    return _figures("Rollback apply -> template restored", ours, bare, cli)


def _configmap(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"MAINTENANCE_MODE": "false"},
    }


def maintenance_window(bench: Bench, n: int) -> list[Figure]:
    ns, ref = bench.namespace("react-mw"), bench.namespace("react-mw", served=False)
    bench.apply(
        [_configmap(f"c{i}", ns) for i in range(n)]
        + [_configmap(f"c{i}", ref) for i in range(n)]
        + [_configmap(f"k{i}", ref) for i in range(n)]
    )
    ours: list[float] = []
    bare: list[float] = []
    cli: list[float] = []

    def flip(mw: Obj) -> None:
        name = mw["spec"]["maintenanceMode"]["configMap"]
        bench.core.patch_namespaced_config_map(name, ref, {"data": {"MAINTENANCE_MODE": "true"}})

    def flipped(cm: Obj) -> bool:
        return (cm.get("data") or {}).get("MAINTENANCE_MODE") == "true"

    maps = bench.core.list_namespaced_config_map
    with (
        Watcher(maps, ns) as w_ours,
        Watcher(maps, ref) as w_ref,
        BareLoop(bench, "maintenancewindows", ref, flip),
    ):
        for i in range(n):
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MaintenanceWindow",
                "metadata": {"name": f"mw{i}"},
                "spec": {
                    "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "duration": "1h",
                    "emergency": {"reason": "benchmark"},
                    "maintenanceMode": {"configMap": f"c{i}"},
                },
            }
            w_ours.expect(f"c{i}", flipped)
            t0 = time.monotonic()
            bench.create("maintenancewindows", ns, body)
            ours.append(w_ours.wait(f"c{i}") - t0)
            w_ref.expect(f"c{i}", flipped)
            t0 = time.monotonic()
            bench.create("maintenancewindows", ref, body)
            bare.append(w_ref.wait(f"c{i}") - t0)
            w_ref.expect(f"k{i}", flipped)
            t0 = time.monotonic()
            bench.kubectl(
                "-n", ref, "patch", f"configmap/k{i}", "-p", '{"data":{"MAINTENANCE_MODE":"true"}}'
            )
            cli.append(w_ref.wait(f"k{i}") - t0)
    return _figures("MaintenanceWindow apply -> flag set (first change)", ours, bare, cli)


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
        BareLoop(bench, "emergencyscales", ref, _scaler(client.AppsV1Api(api), ref)),
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
