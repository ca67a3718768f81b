"""A real Kubernetes control plane on loopback, for the e2e tests and local runs (no Docker).

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as plain
processes on 127.0.0.1, and kwok plays the nodes so that pods become Ready,
Job pods complete and deleted pods go away. The binaries come from
``build.sh`` (built once from the Go module proxy, then cached).

Command line (``make testbed-up`` etc. call it)::

    python tests/testbed/testbed.py [--state-dir DIR] [--port-base N] up|down|status|env

Python API (used by tests/conftest.py)::

    bed = LocalTestBed()            # state in <repo>/.testbed, ports from the environment
    started = bed.up()              # False when it was already up and healthy
    bed.kubeconfig                  # admin kubeconfig (O=system:masters)
    bed.kubectl                     # kubectl of the same release
    bed.down()                      # stops every process it started, removes the state

State lives in the state directory: ``pki/``, ``logs/<component>.log``,
``state.json`` (ports, binaries, pid and start time of every process) and
``kubeconfig``; etcd keeps its data in /dev/shm. Ports are fixed, on loopback
only, and can be moved with RUNBOOK_TESTBED_PORT_BASE (all of them) or
RUNBOOK_TESTBED_<NAME>_PORT (one of them; see `Ports`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

if __package__:
    from . import pki
else:  # run as a script: python tests/testbed/testbed.py
    import pki  # type: ignore[no-redef,import-not-found,unused-ignore]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUILD_SCRIPT = HERE / "build.sh"
DEFAULT_STATE_DIR = REPO / ".testbed"
ENV = "RUNBOOK_TESTBED_"
DEFAULT_PORT_BASE = 16400

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IPS = ("10.96.0.1",)
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "runbook-testbed"

# kwok's stages (relative to the bin dir's kwok-stages/): what a kubelet would do.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "versitygw",
)
# Room for hundreds of pods on each fake node.
NODE_RESOURCES = {"cpu": "64", "memory": "256Gi", "pods": "500", "ephemeral-storage": "1Ti"}
LOG_TAIL_LINES = 40
NODE_LEASE_SECONDS = 40
AUDITED_USER = "system:serviceaccount:runbook-system:runbook-operator"
"""Whose writes the API server's audit log records (logs/audit.log): the operator's, so
a test can prove which replica wrote what (each names itself in its User-Agent); and its
reads of workloads and HPAs, so a test can prove which changes needed none first."""
AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["{AUDITED_USER}"]
    verbs: [create, update, patch, delete, deletecollection]
  - level: Metadata
    users: ["{AUDITED_USER}"]
    verbs: [get, list]
    resources:
      - group: apps
        resources: [deployments, statefulsets]
      - group: autoscaling
        resources: [horizontalpodautoscalers]
  - level: None
"""

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"testbed: {message}", file=sys.stderr, flush=True)


class TestbedError(RuntimeError):
    """The test bed could not be built, started, checked or stopped."""

    __test__ = False


class ComponentError(TestbedError):
    """A component died or did not become ready; the message carries its log's tail."""

    def __init__(self, component: str, problem: str, logs: dict[str, str]) -> None:
        self.component = component
        self.problem = problem
        parts = [f"{component}: {problem}"]
        for name, tail in logs.items():
            parts.append(f"--- last lines of {name}'s log ---\n{tail.rstrip()}")
        super().__init__("\n".join(parts))


@dataclass(frozen=True)
class Ports:
    """Loopback ports of one test bed (clear of 5432, 9090, 9093 and the usual 6443/2379)."""

    apiserver: int
    etcd: int
    etcd_peer: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(
            apiserver=base + 43,
            etcd=base + 79,
            etcd_peer=base + 80,
            controller_manager=base + 57,
            scheduler=base + 59,
            kwok=base + 47,
        )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Ports:
        """RUNBOOK_TESTBED_PORT_BASE, then RUNBOOK_TESTBED_<FIELD>_PORT for single ports."""
        env = dict(os.environ if environ is None else environ)
        ports = asdict(cls.from_base(int(env.get(f"{ENV}PORT_BASE", DEFAULT_PORT_BASE))))
        for name in ports:
            value = env.get(f"{ENV}{name.upper()}_PORT")
            if value:
                ports[name] = int(value)
        return cls(**ports)

    def items(self) -> list[tuple[str, int]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


@dataclass(frozen=True)
class ProcessRecord:
    """One process the test bed started; the start time tells a reused pid apart."""

    name: str
    pid: int
    start_time: int


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    running: bool
    healthy: bool
    rss_bytes: int
    pss_bytes: int


# --------------------------------------------------------------------------- binaries


def _cache_root() -> Path:
    explicit = os.environ.get(f"{ENV}CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "runbook-operator" / "testbed"


def _missing_binaries(bin_dir: Path) -> list[str]:
    """What a usable bin dir lacks (a dangling symlink counts as missing)."""
    missing = [name for name in BINARIES if not (bin_dir / name).exists()]
    return missing if (bin_dir / "kwok-stages").is_dir() else [*missing, "kwok-stages/"]


def _has_binaries(bin_dir: Path) -> bool:
    return not _missing_binaries(bin_dir)


def cached_bin_dir() -> Path | None:
    """The newest complete bin dir already built, without building anything."""
    explicit = os.environ.get(f"{ENV}BIN")
    if explicit:
        return Path(explicit) if _has_binaries(Path(explicit)) else None
    candidates = sorted(_cache_root().glob("bin-v*"), key=lambda p: p.stat().st_mtime)
    complete = [c for c in candidates if _has_binaries(c)]
    return complete[-1] if complete else None


def kubectl_dir(bin_dir: Path) -> Path:
    """The directory holding only the test bed's kubectl (build.sh makes it), for PATH."""
    return bin_dir.parent / bin_dir.name.replace("bin-", "kubectl-", 1)


def find_bin_dir(*, build: bool = True) -> Path:
    """The bin dir of build.sh, building whatever is missing (a no-op when cached)."""
    explicit = os.environ.get(f"{ENV}BIN")
    if explicit or not build:
        found = cached_bin_dir()
        if found is None:
            raise TestbedError("the test bed's binaries are not built; run `make testbed-build`")
        return found
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise TestbedError(f"{BUILD_SCRIPT} failed (exit code {result.returncode})")
    bin_dir = Path(lines[-1])
    if not _has_binaries(bin_dir):
        missing = ", ".join(_missing_binaries(bin_dir))
        raise TestbedError(f"{BUILD_SCRIPT} printed {bin_dir}, which lacks {missing}")
    return bin_dir


# --------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live pid, None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    after_comm = raw[raw.rindex(")") + 2 :].split()
    return after_comm[0], int(after_comm[19])


def process_running(record: ProcessRecord) -> bool:
    """Whether the process a record names still runs (not a zombie, pid not reused)."""
    stat = _proc_stat(record.pid)
    return stat is not None and stat[1] == record.start_time and stat[0] != "Z"


def _proc_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes, 0 when unreadable."""
    rss = pss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
    return rss, pss


def processes_matching(needles: Sequence[str]) -> list[tuple[int, str]]:
    """Live processes (pid, command line) whose command line contains any needle."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        stat = _proc_stat(int(entry.name))
        if stat and stat[0] != "Z" and any(n in cmdline for n in needles):
            found.append((int(entry.name), cmdline.strip()))
    return found


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _http(
    url: str,
    context: ssl.SSLContext | None = None,
    method: str = "GET",
    body: dict[str, Any] | None = None,
) -> tuple[int, bytes]:
    """(HTTP status, body); status 0 when the server could not be reached."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ssl.SSLError) as error:
        return 0, str(error).encode()


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _insecure_context() -> ssl.SSLContext:
    # The controller manager and scheduler serve health on self-signed certificates.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# --------------------------------------------------------------------------- the test bed


class LocalTestBed:
    """One control plane: a state directory plus a block of loopback ports.

    Several can run side by side with different state directories and port bases.
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        port_base: int | None = None,
        *,
        nodes: int = 2,
        bin_dir: Path | None = None,
        log: Log = _stderr,
    ) -> None:
        env_dir = os.environ.get(f"{ENV}DIR")
        self.state_dir = Path(state_dir or env_dir or DEFAULT_STATE_DIR).resolve()
        self._requested = (
            Ports.from_base(port_base) if port_base is not None else Ports.from_env(),
            bin_dir,
        )
        self.ports, self.bin_dir = self._requested
        self.node_count = nodes
        self.log = log
        self.startup_seconds: float | None = None
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:10]
        shm = Path("/dev/shm")
        self.data_dir = (shm if shm.is_dir() else self.state_dir) / f"runbook-testbed-{digest}"
        self._lock_path = Path(tempfile.gettempdir()) / f"runbook-testbed-{digest}.lock"
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._records: list[ProcessRecord] = []
        self._recorded: dict[str, Any] | None = None
        self._refresh()

    # ----------------------------------------------------------------- paths

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def lock_path(self) -> Path:
        """Serialises up/down of this test bed; removed by down()."""
        return self._lock_path

    @property
    def kubectl(self) -> Path:
        return self._bin("kubectl")

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pki(self) -> pki.PkiPaths:
        return pki.PkiPaths(self.state_dir / "pki")

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def markers(self) -> tuple[str, ...]:
        """Strings found in the command line of every process of this test bed."""
        return (str(self.state_dir), str(self.data_dir))

    def node_names(self) -> list[str]:
        return [f"testbed-node-{i}" for i in range(1, self.node_count + 1)]

    def _bin(self, name: str) -> Path:
        if self.bin_dir is None:
            self.bin_dir = find_bin_dir()
        return self.bin_dir / name

    # ----------------------------------------------------------------- state

    def _refresh(self) -> None:
        """Reads state.json: a running test bed keeps the ports and binaries it started with."""
        self._recorded = self._load_state()
        if self._recorded:
            self.ports = Ports(**self._recorded["ports"])
            self.bin_dir = Path(self._recorded["bin_dir"])

    def _load_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state

    def _save_state(self) -> None:
        state = {
            "ports": asdict(self.ports),
            "bin_dir": str(self.bin_dir),
            "data_dir": str(self.data_dir),
            "kubeconfig": str(self.kubeconfig),
            "processes": [asdict(r) for r in self._records],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)
        self._recorded = state

    def processes(self) -> list[ProcessRecord]:
        """Every process recorded as started by this test bed (running or not)."""
        recorded = (self._recorded or {}).get("processes", [])
        return [ProcessRecord(**r) for r in recorded]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ----------------------------------------------------------------- health

    def _api_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, raw = _http(self.server + path, self._api_context(), method, body)
        if not 200 <= status < 300:
            return {"_status": status, "_body": raw.decode(errors="replace")[:300]}
        return json.loads(raw)

    def _health_urls(self) -> dict[str, tuple[str, ssl.SSLContext | None]]:
        p = self.ports
        insecure = _insecure_context()
        return {
            "etcd": (f"http://127.0.0.1:{p.etcd}/health", None),
            "kube-apiserver": (f"{self.server}/readyz", None),
            "kube-controller-manager": (
                f"https://127.0.0.1:{p.controller_manager}/healthz",
                insecure,
            ),
            "kube-scheduler": (f"https://127.0.0.1:{p.scheduler}/healthz", insecure),
            "kwok": (f"http://127.0.0.1:{p.kwok}/healthz", None),
        }

    def _healthy(self, component: str) -> bool:
        return self._unhealthy(component) is None

    def _unhealthy(self, component: str) -> str | None:
        """None when the component's health endpoint says so, else what it answered."""
        url, context = self._health_urls()[component]
        if component == "kube-apiserver":
            context = self._api_context()
        status, body = _http(url, context)
        healthy = status == 200 and (component != "etcd" or b'"health":"true"' in body)
        if healthy:
            return None
        answer = body.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"GET {url}: {status or 'no answer'} {answer[0][:200]}".rstrip()

    def _running(self, record: ProcessRecord) -> bool:
        child = self._children.get(record.pid)
        if child is not None:
            return child.poll() is None
        return process_running(record)

    def status(self) -> list[ComponentStatus]:
        """Each recorded process: running, healthy, memory. Empty when not up."""
        result = []
        for record in self.processes():
            running = self._running(record)
            rss, pss = _proc_memory(record.pid) if running else (0, 0)
            healthy = running and self._healthy(record.name)
            result.append(ComponentStatus(record.name, record.pid, running, healthy, rss, pss))
        return result

    def problem(self) -> str | None:
        """Why this test bed is not up and healthy, or None when it is."""
        components = self.status()
        if not components:
            return "not started"
        if not self.kubeconfig.exists():
            return "no kubeconfig"
        for component in components:
            if not component.running:
                return f"{component.name} (pid {component.pid}) is not running"
            if not component.healthy:
                return f"{component.name} is not healthy"
        return None

    def is_up(self) -> bool:
        return self.problem() is None

    # ----------------------------------------------------------------- up

    def up(self, timeout: float = 120.0) -> bool:
        """Starts the test bed and waits until it is usable.

        Returns False when it was already up and healthy (nothing done), True when
        this call started it. On failure everything started is stopped again and a
        `TestbedError` (a `ComponentError` naming the culprit) is raised.
        """
        with self._lock():
            self._refresh()
            if self._recorded:
                problem = self.problem()
                if problem is None:
                    self.log(f"already up ({self.state_dir})")
                    return False
                self.log(f"{self.state_dir} is not healthy ({problem}); starting afresh")
                self._down_locked()
            self.bin_dir = self.bin_dir or find_bin_dir()  # may build: not part of the timeout
            missing = _missing_binaries(self.bin_dir)
            if missing:
                raise TestbedError(f"{self.bin_dir} lacks {', '.join(missing)}")
            begin = time.monotonic()
            try:
                self._start(begin + timeout)
            except BaseException:
                self._stop_after_failure()
                raise
            self.startup_seconds = time.monotonic() - begin
            self.log(f"usable in {self.startup_seconds:.1f} s")
            return True

    def _stop_after_failure(self) -> None:
        started = self.processes()
        if started:
            self.log(f"start-up failed; stopping {', '.join(r.name for r in started)}")
        try:
            self._stop(started)
        except TestbedError as error:  # keep state.json so that `down` can try again
            self.log(f"{error}; run `down` to try again")
            return
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _start(self, deadline: float) -> None:
        self._records = []
        self._check_ports()
        for sub in ("logs", "pki", "home"):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        (self.state_dir / "home").mkdir(parents=True)
        self.logs_dir.mkdir()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        pki.generate(self.pki.dir, SERVICE_IPS)
        (self.state_dir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        self._write_kubeconfig()
        self._save_state()

        self._spawn("etcd", self._etcd_args())
        self._wait("etcd", ["etcd"], deadline, lambda: self._unhealthy("etcd"))
        self._spawn("kube-apiserver", self._apiserver_args())
        self._wait(
            "/readyz", ["kube-apiserver"], deadline, lambda: self._unhealthy("kube-apiserver")
        )
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._spawn(name, self._component_args(name), self._component_env(name))
        self._create_nodes()
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._wait("/healthz", [name], deadline, functools.partial(self._unhealthy, name))
        self._wait(
            "nodes Ready and untainted",
            ["kwok", "kube-controller-manager"],
            deadline,
            self._nodes_problem,
        )
        self._wait(
            "default ServiceAccount",
            ["kube-controller-manager"],
            deadline,
            self._default_sa_problem,
        )

    def _check_ports(self) -> None:
        busy = [f"{name}={port}" for name, port in self.ports.items() if _port_in_use(port)]
        if busy:
            raise TestbedError(
                f"ports already in use on 127.0.0.1: {', '.join(busy)}; set {ENV}PORT_BASE "
                f"(or {ENV}<NAME>_PORT) to move the test bed, or stop what holds them"
            )

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.logs_dir / f"{name}.log", "wb") as log:
            child = subprocess.Popen(
                [str(self._bin(name)), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                env=env,
                start_new_session=True,  # survives the `up` command; no terminal signals
            )
        self._children[child.pid] = child
        stat = _proc_stat(child.pid)
        self._records.append(ProcessRecord(name, child.pid, stat[1] if stat else 0))
        self._save_state()

    def _wait(
        self,
        what: str,
        blame: list[str],
        deadline: float,
        problem: Callable[[], str | None],
    ) -> None:
        """Polls `problem` until it says None; fails early when any process died."""
        while True:
            self._check_alive()
            last = problem()
            if last is None:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        logs = {name: _tail(self.logs_dir / f"{name}.log") for name in blame}
        raise ComponentError(blame[0], f"{what} not reached in time ({last})", logs)

    def _check_alive(self) -> None:
        for record in self._records:
            child = self._children.get(record.pid)
            code = child.poll() if child is not None else None
            if code is not None or not self._running(record):
                logs = {record.name: _tail(self.logs_dir / f"{record.name}.log")}
                raise ComponentError(record.name, f"exited (code {code})", logs)

    def _nodes_problem(self) -> str | None:
        listing = self._api("GET", "/api/v1/nodes")
        nodes = {n["metadata"]["name"]: n for n in listing.get("items", [])}
        for name in self.node_names():
            node = nodes.get(name)
            if node is None:
                return f"node {name} missing"
            conditions = node.get("status", {}).get("conditions", [])
            if not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return f"node {name} not Ready"
            taints = [t["key"] for t in node.get("spec", {}).get("taints", [])]
            if taints:
                return f"node {name} tainted {taints}"
        return None

    def _default_sa_problem(self) -> str | None:
        found = self._api("GET", "/api/v1/namespaces/default/serviceaccounts/default")
        return None if found.get("kind") == "ServiceAccount" else "not created yet"

    def _create_nodes(self) -> None:
        for name in self.node_names():
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                },
                "status": {"allocatable": NODE_RESOURCES, "capacity": NODE_RESOURCES},
            }
            created = self._api("POST", "/api/v1/nodes", node)
            if created.get("_status") not in (None, 409):
                raise ComponentError("kube-apiserver", f"creating node {name}: {created}", {})

    def _write_kubeconfig(self) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        paths = self.pki
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CLUSTER_NAME,
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(paths.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": f"{CLUSTER_NAME}-admin",
                    "user": {
                        "client-certificate-data": b64(paths.admin_cert),
                        "client-key-data": b64(paths.admin_key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": CLUSTER_NAME,
                    "context": {
                        "cluster": CLUSTER_NAME,
                        "user": f"{CLUSTER_NAME}-admin",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": CLUSTER_NAME,
        }
        self.kubeconfig.touch(mode=0o600)
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))

    # ----------------------------------------------------------------- command lines

    def _etcd_args(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports.etcd}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        return [
            "--name=testbed",
            f"--data-dir={self.data_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=testbed={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        p = self.pki
        return [
            f"--etcd-servers=http://127.0.0.1:{self.ports.etcd}",
            "--advertise-address=127.0.0.1",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.apiserver}",
            f"--cert-dir={p.dir}",
            f"--client-ca-file={p.ca_cert}",
            f"--tls-cert-file={p.apiserver_cert}",
            f"--tls-private-key-file={p.apiserver_key}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--audit-policy-file={self.state_dir / 'audit-policy.yaml'}",
            f"--audit-log-path={self.logs_dir / 'audit.log'}",
            "--audit-log-maxsize=100",
            "--audit-log-maxbackup=1",
        ]

    def _component_args(self, name: str) -> list[str]:
        p = self.pki
        kubeconfig = str(self.kubeconfig)
        if name == "kwok":
            return [
                f"--kubeconfig={kubeconfig}",
                "--manage-all-nodes=true",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                # Leases keep the fake nodes Ready; kwok's own default is 0 (no leases).
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
                f"--server-address=127.0.0.1:{self.ports.kwok}",
                *(f"--config={self._bin('kwok-stages') / stage}" for stage in KWOK_STAGES),
            ]
        common = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--cert-dir={p.dir / name}",
            "--profiling=false",
        ]
        if name == "kube-scheduler":
            return [*common, f"--secure-port={self.ports.scheduler}"]
        return [
            *common,
            f"--secure-port={self.ports.controller_manager}",
            f"--service-account-private-key-file={p.sa_key}",
            f"--root-ca-file={p.ca_cert}",
            f"--cluster-signing-cert-file={p.ca_cert}",
            f"--cluster-signing-key-file={p.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        ]

    def _component_env(self, name: str) -> dict[str, str] | None:
        if name != "kwok":
            return None
        # kwok merges ~/.kwok/kwok.yaml into its configuration: give it a HOME of its own.
        return {**os.environ, "HOME": str(self.state_dir / "home")}

    # ----------------------------------------------------------------- down

    def down(self, timeout: float = 10.0) -> None:
        """Stops every process this test bed started (by pid), then removes its state
        (and its lock file: nothing of it is left outside the repository)."""
        with self._lock():
            self._refresh()
            self._down_locked(timeout)
            self._lock_path.unlink(missing_ok=True)

    def _down_locked(self, timeout: float = 10.0) -> None:
        recorded = self._recorded or {}
        self._stop(self.processes(), timeout)
        for pid, cmdline in processes_matching(self.markers()):
            self.log(f"warning: process {pid} still names this test bed: {cmdline[:200]}")
        data_dir = Path(recorded.get("data_dir", self.data_dir))
        for path in (data_dir, self.state_dir):
            shutil.rmtree(path, ignore_errors=True)
            if path.exists():
                raise TestbedError(f"could not remove {path}")
        self._recorded = None
        self._records = []
        self.ports, self.bin_dir = self._requested

    def _stop(self, records: list[ProcessRecord], timeout: float = 10.0) -> None:
        """Stops the processes one by one, last started first.

        Clients go before the API server (which otherwise waits for their watches
        to drain before it exits), and the API server before etcd.
        """
        stuck = []
        for record in reversed(records):
            if not self._stop_one(record, timeout):
                stuck.append(f"{record.name} ({record.pid})")
        if stuck:
            raise TestbedError(f"could not stop {', '.join(stuck)}")

    def _stop_one(self, record: ProcessRecord, timeout: float) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; True once the process is gone (and reaped)."""
        for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            if not self._running(record):
                break
            with contextlib.suppress(ProcessLookupError):
                # Each component leads a process group of its own (start_new_session):
                # signalling the group also reaches anything it may have spawned.
                if os.getpgid(record.pid) == record.pid:
                    os.killpg(record.pid, sig)
                else:
                    os.kill(record.pid, sig)
            deadline = time.monotonic() + grace
            while self._running(record) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._running(record):
                self.log(f"{record.name} ({record.pid}) still running {grace:g} s after {sig.name}")
        child = self._children.pop(record.pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        return not self._running(record)


# --------------------------------------------------------------------------- command line


def _print_status(bed: LocalTestBed) -> int:
    components = bed.status()
    if not components:
        print(f"not up ({bed.state_dir})")
        return 1
    mib = 1024 * 1024
    print(
        f"{'component':<24} {'pid':>8} {'running':>8} {'healthy':>8} {'RSS MiB':>8} {'PSS MiB':>8}"
    )
    for c in components:
        print(
            f"{c.name:<24} {c.pid:>8} {c.running!s:>8} {c.healthy!s:>8} "
            f"{c.rss_bytes / mib:>8.0f} {c.pss_bytes / mib:>8.0f}"
        )
    rss = sum(c.rss_bytes for c in components) / mib
    pss = sum(c.pss_bytes for c in components) / mib
    print(f"{'total':<24} {'':>8} {'':>8} {'':>8} {rss:>8.0f} {pss:>8.0f}")
    print(f"server {bed.server}, kubeconfig {bed.kubeconfig}")
    problem = bed.problem()
    if problem:
        print(f"problem: {problem}")
    return 0 if problem is None else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"state directory (default ${ENV}DIR or <repo>/.testbed)",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=None,
        help=f"first of the port block (default ${ENV}PORT_BASE or {DEFAULT_PORT_BASE})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start (or check) the test bed; prints export KUBECONFIG")
    up.add_argument("--timeout", type=float, default=120.0)
    up.add_argument("--nodes", type=int, default=2)
    commands.add_parser("down", help="stop every process started and remove the state")
    commands.add_parser("status", help="components, health and memory; exit 1 unless healthy")
    commands.add_parser("env", help="print export KUBECONFIG=... when up")
    commands.add_parser("kubectl", help="print export PATH=... with the test bed's kubectl")
    args = parser.parse_args(argv)

    bed = LocalTestBed(args.state_dir, args.port_base, nodes=getattr(args, "nodes", 2))
    try:
        if args.command == "up":
            bed.up(timeout=args.timeout)
        elif args.command == "down":
            bed.down()
            return 0
        elif args.command == "status":
            return _print_status(bed)
        elif args.command == "kubectl":
            print(f'export PATH="{kubectl_dir(find_bin_dir(build=False))}:$PATH"')
            return 0
        elif not bed.is_up():
            _stderr(f"not up ({bed.problem()}); run `make testbed-up`")
            return 1
    except TestbedError as error:
        _stderr(str(error))
        return 1
    print(f"export KUBECONFIG={bed.kubeconfig}")
    if bed.bin_dir is not None and (kubectl_dir(bed.bin_dir) / "kubectl").exists():
        print(f'export PATH="{kubectl_dir(bed.bin_dir)}:$PATH"  # kubectl {bed.bin_dir.name[4:]}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
