"""EmergencyScale figures on the local test bed (make testbed-up first).

    .venv/bin/python benchmarks/emergencyscale.py [--objects 100] [--storm 200]

1. Latency from `kubectl apply` of an EmergencyScale to the target's spec
   changing, seen by a watch: p50/p95 over N objects, each on its own
   Deployment (replicas), and again on N HPA-managed Deployments (minReplicas).
   Next to it, the wall time of the equivalent `kubectl scale deployment` /
   `kubectl patch hpa` on the same test bed.
2. A storm: 2N EmergencyScales on N Deployments (two per Deployment, 20 s
   each) applied with one `kubectl apply`: time until every Deployment is
   scaled by one of them while the other reports WorkloadHeld, time until all
   2N have been Active (the second of each pair takes over when the first one
   ends), and the operator's peak RSS (VmHWM).

The operator runs as a subprocess with the admin kubeconfig and its default
settings, serving only the benchmark's namespaces, which are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from testbed.testbed import LocalTestBed  # noqa: E402

GROUP, VERSION, PLURAL = "ops.mailscore.com", "v1alpha1", "emergencyscales"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Bench:
    def __init__(self, kubeconfig: Path, kubectl: str) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_path = kubectl
        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        self.apps = client.AppsV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.prefix = f"bench-es-{secrets.token_hex(3)}"

    def kubectl(self, *args: str, stdin: str | None = None) -> float:
        """Run kubectl; returns its wall time in seconds."""
        start = time.monotonic()
        subprocess.run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            text=True,
            check=True,
            capture_output=True,
        )
        return time.monotonic() - start

    # --- fixtures -----------------------------------------------------------------

    def namespace(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        self.core.create_namespace({"metadata": {"name": name}})
        return name

    def deployments(self, namespace: str, count: int, hpa: bool = False) -> None:
        docs: list[dict[str, Any]] = []
        for i in range(count):
            name = f"d{i:03d}"
            docs.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {
                        "replicas": 1 if hpa else 0,
                        "selector": {"matchLabels": {"app": name}},
                        "template": {
                            "metadata": {"labels": {"app": name}},
                            "spec": {"containers": [{"name": "c", "image": "example/app:1"}]},
                        },
                    },
                }
            )
            if hpa:
                docs.append(
                    {
                        "apiVersion": "autoscaling/v2",
                        "kind": "HorizontalPodAutoscaler",
                        "metadata": {"name": f"h{i:03d}", "namespace": namespace},
                        "spec": {
                            "scaleTargetRef": {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "name": name,
                            },
                            "minReplicas": 1,
                            "maxReplicas": 3,
                        },
                    }
                )
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))

    @staticmethod
    def es(namespace: str, name: str, target: str, replicas: int, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "EmergencyScale",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"targets": [{"name": target, "replicas": replicas}], **spec},
        }

    # --- observation ------------------------------------------------------------------

    @contextmanager
    def watching(
        self, list_fn: Callable[..., Any], namespace: str, changed: Callable[[Any], bool]
    ) -> Iterator[dict[str, float]]:
        """name -> monotonic time at which a watch first showed `changed(object)`."""
        seen: dict[str, float] = {}
        stream = watch.Watch()
        ready = threading.Event()
        stopped = threading.Event()

        def run() -> None:
            while not stopped.is_set():
                try:
                    for event in stream.stream(list_fn, namespace, timeout_seconds=300):
                        ready.set()
                        obj = event["object"]
                        if obj.metadata.name not in seen and changed(obj):
                            seen[obj.metadata.name] = time.monotonic()
                except Exception:  # a broken watch: watch again (the list re-delivers)
                    time.sleep(0.2)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        ready.wait(30)
        try:
            yield seen
        finally:
            stopped.set()
            stream.stop()

    def phases(self, namespace: str) -> dict[str, tuple[str | None, str | None]]:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        out = {}
        for obj in items["items"]:
            st = obj.get("status") or {}
            ready = next((c for c in st.get("conditions", []) if c["type"] == "Ready"), {})
            out[obj["metadata"]["name"]] = (st.get("phase"), ready.get("reason"))
        return out


@contextmanager
def operator(bench: Bench) -> Iterator[subprocess.Popen[bytes]]:
    liveness = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(bench.kubeconfig),
        "RUNBOOK_METRICS_PORT": "0",
        "RUNBOOK_LIVENESS_PORT": str(liveness),
        "RUNBOOK_METRICS_ADDRESS": "127.0.0.1",
        "RUNBOOK_LEADER_ELECTION": "false",  # one replica, as the reference run
    }
    log = open(ROOT / ".testbed" / "logs" / f"operator-{bench.prefix}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_operator.cli", "run", "-n", f"{bench.prefix}-*"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the operator did not start") from None
            time.sleep(0.2)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


# --- the figures --------------------------------------------------------------------------


def latency(bench: Bench, count: int, hpa: bool) -> tuple[list[float], list[float]]:
    ns = bench.namespace("hpa" if hpa else "plain")
    bench.deployments(ns, count + 1, hpa=hpa)
    wanted = 2 if hpa else 1
    if hpa:
        list_fn = bench.autoscaling.list_namespaced_horizontal_pod_autoscaler

        def changed(obj: Any) -> bool:
            return bool(obj.spec.min_replicas == wanted)
    else:
        list_fn = bench.apps.list_namespaced_deployment

        def changed(obj: Any) -> bool:
            return bool(obj.spec.replicas == wanted)

    operator_times: list[float] = []
    with bench.watching(list_fn, ns, changed) as seen:
        # Warm-up: the operator has found the namespace and its watches are up.
        warm = f"h{count:03d}" if hpa else f"d{count:03d}"
        bench.kubectl(
            "apply", "-f", "-", stdin=json.dumps(bench.es(ns, "warm-up", f"d{count:03d}", wanted))
        )
        wait(lambda: warm in seen, 180, "the operator to serve the namespace")
        for i in range(count):
            target = f"h{i:03d}" if hpa else f"d{i:03d}"
            manifest = bench.es(ns, f"es{i:03d}", f"d{i:03d}", wanted)
            start = time.monotonic()
            bench.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
            wait(lambda t=target: t in seen, 60, f"{target} to change")
            operator_times.append(seen[target] - start)
    # The same change by hand, on Deployments/HPAs of the same size (back to the start).
    kubectl_times = []
    bench.kubectl("delete", "emergencyscale", "-n", ns, "--all", "--wait=false")
    wait(lambda: not bench.phases(ns), 120, "the EmergencyScales to be gone")
    for i in range(count):
        if hpa:
            patch = json.dumps({"spec": {"minReplicas": wanted}})
            kubectl_times.append(bench.kubectl("patch", "hpa", "-n", ns, f"h{i:03d}", "-p", patch))
        else:
            kubectl_times.append(
                bench.kubectl("scale", "deployment", "-n", ns, f"d{i:03d}", f"--replicas={wanted}")
            )
    return operator_times, kubectl_times


def storm(bench: Bench, deployments: int, objects: int) -> dict[str, float]:
    ns = bench.namespace("storm")
    bench.deployments(ns, deployments)
    docs = [
        bench.es(ns, f"es{i:03d}", f"d{i % deployments:03d}", 1, duration="20s")
        for i in range(objects)
    ]
    start = time.monotonic()
    bench.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    applied = time.monotonic() - start
    first_wave = all_active = float("nan")
    ever_active: set[str] = set()
    deadline = start + 300
    while time.monotonic() < deadline:
        phases = bench.phases(ns)
        now = time.monotonic() - start
        ever_active |= {
            n for n, (p, _) in phases.items() if p in ("Active", "Reverting", "Completed")
        }
        active = sum(1 for p, _ in phases.values() if p == "Active")
        held = sum(1 for _, r in phases.values() if r == "WorkloadHeld")
        if math.isnan(first_wave) and active == deployments and held == objects - deployments:
            first_wave = now
        if len(ever_active) == objects:
            all_active = now
            break
        time.sleep(0.25)
    return {"applied": applied, "first_wave": first_wave, "all_active": all_active}


def report_latency(hpa: bool, ours: list[float], by_hand: list[float]) -> None:
    what = "HPA minReplicas" if hpa else "Deployment replicas"
    manual = "kubectl patch hpa" if hpa else "kubectl scale deployment"
    ms = 1000
    print(
        f"  kubectl apply -> {what} changed ({len(ours)} objects): "
        f"p50 {statistics.median(ours) * ms:.0f} ms, p95 {pct(ours, 0.95) * ms:.0f} ms, "
        f"max {max(ours) * ms:.0f} ms",
        flush=True,
    )
    print(
        f"  {manual} wall time ({len(by_hand)} runs): "
        f"p50 {statistics.median(by_hand) * ms:.0f} ms, p95 {pct(by_hand, 0.95) * ms:.0f} ms",
        flush=True,
    )


def clean_up(bench: Bench) -> None:
    """Delete the EmergencyScales while the operator runs (their finalizers need it),
    then the namespaces, without waiting for the namespace controller."""
    namespaces = [
        ns.metadata.name
        for ns in bench.core.list_namespace().items
        if ns.metadata.name.startswith(bench.prefix)
    ]
    for ns in namespaces:
        bench.kubectl("delete", "emergencyscale", "-n", ns, "--all", "--wait=false")
    for ns in namespaces:
        wait(lambda ns=ns: not bench.phases(ns), 300, f"the EmergencyScales of {ns} to go")
        bench.core.delete_namespace(ns)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--storm", type=int, default=200)
    args = parser.parse_args()

    bed = LocalTestBed()
    if not bed.kubeconfig.exists():
        print("the test bed is not up: make testbed-up", file=sys.stderr)
        return 2
    bench = Bench(bed.kubeconfig, str(bed.kubectl))
    crd = ROOT / "crds" / "ops.mailscore.com_emergencyscales.yaml"
    bench.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    print(f"EmergencyScale benchmark on the local test bed (namespaces {bench.prefix}-*)")
    try:
        with operator(bench) as proc:
            try:
                for hpa in (False, True):
                    report_latency(hpa, *latency(bench, args.objects, hpa))
                print(f"  operator peak RSS so far: {peak_rss_mib(proc.pid):.0f} MiB", flush=True)
                figures = storm(bench, args.storm // 2, args.storm)
                print(
                    f"Storm: {args.storm} EmergencyScales on {args.storm // 2} Deployments "
                    f"(two each, 20 s), one kubectl apply ({figures['applied']:.1f} s)\n"
                    f"  every Deployment scaled by one, the other {args.storm // 2} "
                    f"WorkloadHeld: {figures['first_wave']:.1f} s after the apply started\n"
                    f"  all {args.storm} have been Active (second wave once the first ended): "
                    f"{figures['all_active']:.1f} s\n"
                    f"  operator peak RSS (VmHWM): {peak_rss_mib(proc.pid):.0f} MiB",
                    flush=True,
                )
            finally:
                clean_up(bench)
    finally:
        bench.api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
