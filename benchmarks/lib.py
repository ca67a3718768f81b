"""What every benchmark shares: the cluster, the operator, watches that time things, figures.

Every figure is measured side by side with its reference in the same run, on the
same cluster, interleaved where it can be (operator, reference, operator, ...), and
printed as a ratio: the machine's noise moves both. Times are taken from a watch on
the object that changes, with the monotonic clock of this process, so neither side
pays for polling.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.images import image  # noqa: E402
from support.kube import FINALIZER_BINDING, UNSERVED, finalizer_where_served  # noqa: E402
from testbed.testbed import LocalTestBed, cached_bin_dir  # noqa: E402

__all__ = ["ROOT", "Bench", "Figure", "Operator", "Watcher", "image", "pct"]

GROUP, VERSION = "ops.mailscore.com", "v1alpha1"
ADMISSION = (
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
)
Obj = dict[str, Any]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass
class Figure:
    """One line of the report: ours against the reference, and the goal for the ratio."""

    name: str
    ours: float
    reference: float
    unit: str
    goal: float | None = None
    """The ratio ours/reference must be at most this (None: reported only)."""
    reference_name: str = ""
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.reference if self.reference else float("inf")

    def line(self) -> str:
        goal = "" if self.goal is None else f"<= {self.goal:g}x"
        met = "" if self.goal is None else ("ok" if self.ratio <= self.goal else "MISSED")
        return (
            f"{self.name:<48} {self.ours:>10.3f} {self.reference:>10.3f} {self.unit:<4} "
            f"{self.ratio:>7.2f}x {goal:>8} {met:>6}  {self.reference_name} {self.note}".rstrip()
        )


def header() -> str:
    return (
        f"{'figure':<48} {'ours':>10} {'reference':>10} {'unit':<4} {'ratio':>8} "
        f"{'goal':>8} {'':>6}  reference"
    )


class Bench:
    """The cluster (the local test bed unless KUBECONFIG names one) and the namespaces."""

    def __init__(self) -> None:
        named = os.environ.get("KUBECONFIG")
        if named:
            self.kubeconfig = Path(named)
            self.kubectl_path = "kubectl"
        else:
            bed = LocalTestBed(bin_dir=cached_bin_dir())
            bed.up()
            self.kubeconfig = bed.kubeconfig
            self.kubectl_path = str(bed.kubectl)
        self.api = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.prefix = f"bench-{secrets.token_hex(3)}"
        self.namespaces: list[str] = []
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-crds.sh"), self.kubectl_path],
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            check=True,
            capture_output=True,
        )

    def install_admission(self, source: Path | None = None) -> None:
        """deploy/admission of the operator measured (this checkout's, or another's for a
        "before" run), as users install it: who asked is stamped, and, where deploy/ has
        it, the finalizer is put on at creation. What an earlier run installed and this
        one does not have goes first, so a "before" run is measured as it was."""
        where = (source or ROOT) / "deploy" / "admission"
        rendered = self.output("kustomize", str(where))
        docs = finalizer_where_served([d for d in yaml.safe_load_all(rendered) if d])
        wanted = {d["metadata"]["name"] for d in docs}
        for plural in ADMISSION:
            for found in self.output("get", plural, "-o", "name").split():
                name = found.split("/", 1)[1]
                if name.startswith("runbook-") and name not in wanted:
                    self.kubectl("delete", found, "--wait=true")
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(docs)
        )
        finalizer = FINALIZER_BINDING in wanted
        probe = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "EmergencyScale",
            "metadata": {"name": "admission-probe", "namespace": "default"},
            "spec": {"targets": [{"name": "web", "replicas": 1}]},
        }

        def enforced() -> bool:  # policies take a moment to be in force once created
            out = self.output(
                "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(probe)
            )
            meta = json.loads(out)["metadata"]
            stamped = "ops.mailscore.com/requested-by" in (meta.get("annotations") or {})
            return stamped and (not finalizer or bool(meta.get("finalizers")))

        self.wait(enforced, timeout=60, what="the admission policies in force")

    def output(self, *args: str, stdin: str | None = None) -> str:
        """Run kubectl; what it printed."""
        return subprocess.run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            text=True,
            check=True,
            capture_output=True,
        ).stdout

    def kubectl(self, *args: str, stdin: str | None = None) -> float:
        """Run kubectl (process start included, as a person pays it); its wall time in s."""
        start = time.monotonic()
        self.output(*args, stdin=stdin)
        return time.monotonic() - start

    def namespace(self, suffix: str, *, served: bool = True) -> str:
        """A namespace the operator serves, or (served=False) one it never looks at, for the
        references that run beside it."""
        name = f"{self.prefix}-{suffix}" if served else f"{self.prefix}x-{suffix}"
        labels = {} if served else {UNSERVED: "true"}  # no finalizer put on at admission
        self.core.create_namespace({"metadata": {"name": name, "labels": labels}})
        self.namespaces.append(name)
        return name

    def cleanup(self) -> None:
        """Delete the benchmark's namespaces. The operator under test has stopped by now,
        so its finalizer is taken off what it left behind first: otherwise every run
        would leave namespaces Terminating for ever, and a later run on the same test bed
        would measure against their load."""
        plurals = [p.stem.split("_", 1)[1] for p in sorted((ROOT / "crds").glob("*.yaml"))]
        for name in self.namespaces:
            with contextlib.suppress(client.ApiException):
                self.core.delete_namespace(name)
            for plural in plurals:
                self._release(name, plural)

    def clear(self) -> None:
        """Delete the namespaces made so far, and wait until they are gone: the figures
        after it are measured with none of their objects. Otherwise the idle figures
        counted the operations and Deployments every earlier suite left behind."""
        self.cleanup()
        gone, self.namespaces = self.namespaces, []
        self.wait(lambda: not any(self._exists(ns) for ns in gone), 600, "namespaces gone")

    def _exists(self, namespace: str) -> bool:
        try:
            self.core.read_namespace(namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _release(self, namespace: str, plural: str) -> None:
        try:
            items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        except client.ApiException:
            return  # cluster-scoped, or the namespace is gone already
        for item in items.get("items", []):
            if not item["metadata"].get("finalizers"):
                continue
            with contextlib.suppress(client.ApiException):
                self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )

    def apply(self, docs: list[Obj]) -> None:
        for chunk in range(0, len(docs), 200):
            self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs[chunk : chunk + 200]))

    def create(self, plural: str, namespace: str, body: Obj) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)

    def list(self, plural: str, namespace: str) -> list[Obj]:
        found = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        return list(found["items"])

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:g} s")
            time.sleep(0.05)

    def apiserver_requests(self) -> float:
        """Requests the API server has served since it started, WATCH and the long-running
        ones excluded (apiserver_request_total)."""
        metrics = self.output("get", "--raw", "/metrics")
        total = 0.0
        for line in metrics.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels, value = line.rsplit(" ", 1)
            if 'verb="WATCH"' in labels or 'verb="CONNECT"' in labels:
                continue
            total += float(value)
        return total


def deployment(name: str, namespace: str, replicas: int, *, version: str = "1") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "50%"}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image(f"{name}-{version}"),
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ]
                },
            },
        },
    }


def emergency_window(name: str, **spec: Any) -> Obj:
    """A MaintenanceWindow starting now for an hour, its notice waived as an emergency;
    `spec` adds what it changes (maintenanceMode, scaleDown, ...)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MaintenanceWindow",
        "metadata": {"name": name},
        "spec": {
            "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "duration": "1h",
            "emergency": {"reason": "benchmark"},
            **spec,
        },
    }


def custom_lister(bench: Bench, plural: str) -> Callable[..., Any]:
    """A namespaced list of one of our kinds, for a `Watcher`."""

    def list_fn(namespace: str, **kw: Any) -> Any:
        return bench.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **kw)

    return list_fn


def in_phase(phase: str) -> Callable[[Obj], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


class Watcher:
    """The first moment (monotonic) a watch of one kind in one namespace showed each object
    in a wanted state; `wait(name)` returns it."""

    def __init__(self, list_fn: Callable[..., Any], namespace: str) -> None:
        self.list_fn = list_fn
        self.namespace = namespace
        self.wanted: dict[str, Callable[[Obj], bool]] = {}
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self.stream = watch.Watch()
        self.stopped = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def expect(self, name: str, wanted: Callable[[Obj], bool]) -> None:
        with self.cond:
            self.seen.pop(name, None)
            self.wanted[name] = wanted

    def wait(self, name: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while name not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{name} never reached the wanted state")
                self.cond.wait(left)
            return self.seen[name]

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                for event in self.stream.stream(self.list_fn, self.namespace, timeout_seconds=300):
                    self.ready.set()
                    raw = event["raw_object"] if "raw_object" in event else event["object"]
                    obj = raw if isinstance(raw, dict) else json.loads(raw)
                    name = obj["metadata"]["name"]
                    with self.cond:
                        check = self.wanted.get(name)
                        if check is not None and name not in self.seen and check(obj):
                            self.seen[name] = time.monotonic()
                            self.cond.notify_all()
            except Exception:  # a broken watch: watch again (the list re-delivers)
                time.sleep(0.1)

    def __enter__(self) -> Watcher:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.stream.stop()


@dataclass
class Operator:
    """`runbook-operator run` as a process of its own, serving the benchmark's namespaces;
    `source` runs another checkout's operator (a reference run of an older version)."""

    bench: Bench
    source: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from support.servers import free_port

        self.liveness = free_port()
        self.metrics = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.bench.kubeconfig),
            "RUNBOOK_METRICS_PORT": str(self.metrics),
            "RUNBOOK_LIVENESS_PORT": str(self.liveness),
            "RUNBOOK_METRICS_ADDRESS": "127.0.0.1",
            "RUNBOOK_BACKUP_ROOT": str(ROOT / ".testbed" / "bench-backups"),
            "RUNBOOK_LEADER_ELECTION": "false",  # one replica, as the reference run
            **self.env,
        }
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source / "operator")
        (ROOT / ".testbed" / "bench-backups").mkdir(parents=True, exist_ok=True)
        log = (ROOT / ".testbed" / "logs" / f"operator-{self.bench.prefix}.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runbook_operator.cli", "run", "-n", f"{self.bench.prefix}-*"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"http://127.0.0.1:{self.liveness}/healthz"
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the operator did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def api_requests(self) -> float:
        """Requests the operator's own client has sent (its runbook_api_requests_total); 0
        for an operator too old to count them."""
        return sum(self.api_requests_by_verb().values())

    def api_requests_by_verb(self) -> dict[str, float]:
        """The same, by verb (get, list, patch, create, ...)."""
        url = f"http://127.0.0.1:{self.metrics}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        counts: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("runbook_api_requests_total{"):
                labels, value = line.rsplit(" ", 1)
                verb = labels.partition('verb="')[2].partition('"')[0]
                counts[verb] = counts.get(verb, 0.0) + float(value)
        return counts

    def rss_mib(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    @contextmanager
    def running(self) -> Iterator[Operator]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
