"""The operator under test, as a real process.

It runs `runbook-operator run` in a subprocess (not a thread) so tests can
SIGKILL it in the middle of an operation and start it again, exactly as a
node failure would. It authenticates with a ServiceAccount token bound by the
RBAC in deploy/, so a missing permission fails a test instead of hiding
behind an admin certificate.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from testbed import ledger

from .servers import free_port
from .wait import wait_for

REPO = Path(__file__).resolve().parents[2]
__all__ = ["LEASE_NAMESPACE", "LEASE_TIMINGS", "OperatorProcess", "free_port", "running_operator"]

LEASE_NAMESPACE = "runbook-system"
"""Where deploy/ lets the operator keep its Lease (deploy/rbac/leader-election.yaml)."""
LEASE_TIMINGS = {
    "RUNBOOK_LEASE_DURATION": "3",
    "RUNBOOK_RENEW_DEADLINE": "2",
    "RUNBOOK_RETRY_PERIOD": "0.5",
}


class OperatorProcess:
    """start() / stop() (SIGTERM) / kill() (SIGKILL) / restart(); logs() parses its JSON lines."""

    def __init__(
        self,
        *,
        kubeconfig: Path,
        namespaces: list[str],
        log_path: Path,
        backup_root: Path,
        prefix: str,
        lease: str | None = None,
        elected: bool = True,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.log_path = log_path
        self.backup_root = backup_root
        self.prefix = prefix
        self.env: dict[str, str] = {}
        """Extra environment for the next start(), e.g. RUNBOOK_PROMETHEUS_URL."""
        self.lease = lease or f"runbook-{prefix}"
        """The Lease it elects its leader on: several processes given the same one are
        replicas of one operator. Short timings, so a restart after a kill waits ~3 s."""
        self.election = dict(LEASE_TIMINGS) if elected else {"RUNBOOK_LEADER_ELECTION": "false"}
        self.elected = elected
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        """How the last process ended (None while it runs or before it started)."""
        return None if self.process is None else self.process.poll()

    def start(self, *, timeout: float = 30.0, wait: bool = True, lead: bool = True) -> None:
        """Start it and (unless wait=False: it may die on a failpoint first) wait until
        its liveness endpoint answers and (unless lead=False: a second replica follows)
        until it leads."""
        if self.running:
            return
        if self.process is not None:
            self._end(signal.SIGKILL, 10.0)  # exited by itself (a failpoint): reap it
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "RUNBOOK_METRICS_ADDRESS": "127.0.0.1",
            "RUNBOOK_METRICS_PORT": str(self.metrics_port),
            "RUNBOOK_LIVENESS_PORT": str(self.liveness_port),
            "RUNBOOK_BACKUP_ROOT": str(self.backup_root),
            "RUNBOOK_TICK_SECONDS": "1",
            "RUNBOOK_LEASE_NAMESPACE": LEASE_NAMESPACE,
            "RUNBOOK_LEASE_NAME": self.lease,
            **self.election,
            **self.env,
        }
        args = [sys.executable, "-m", "runbook_operator.cli", "run"]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            args,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches pytest, whose teardown stops it
        )
        ledger.record("operator", self.process.pid)
        if not wait:
            return
        wait_for(
            self._healthy,
            timeout=timeout,
            interval=0.1,
            what=f"operator liveness on :{self.liveness_port} (log: {self.log_path})",
        )
        if lead and self.elected:
            wait_for(
                self.leads,
                timeout=timeout,
                interval=0.1,
                what=f"operator to take the Lease {self.lease} (log: {self.log_path})",
            )

    def role(self) -> dict[str, Any]:
        """Its /readyz answer: {"leader": bool, "identity": str}."""
        url = f"http://127.0.0.1:{self.liveness_port}/readyz"
        with urllib.request.urlopen(url, timeout=1) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    def leads(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"operator exited with {self.process.returncode}:\n{self.tail()}")
        return bool(self.role().get("leader"))

    def pause(self) -> None:
        """SIGSTOP: frozen, as behind a network partition or on a stalled node."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"operator exited with {self.process.returncode}:\n{self.tail()}")
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)

    def stop(self, *, timeout: float = 30.0) -> int | None:
        """SIGTERM, as Kubernetes does; returns the exit code."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies."""
        self._end(signal.SIGKILL, 10.0)

    def restart(self) -> None:
        self.stop()
        self.start()

    def die_at(self, failpoints: str, done: Callable[[], bool], *, runs: int = 15) -> int:
        """Start the operator again and again with RUNBOOK_FAILPOINTS armed: each run dies
        (exit 137) at the first failpoint it passes, until one runs to `done()`. Returns
        the deaths; afterwards an operator without failpoints is running."""
        deaths = 0
        self.env["RUNBOOK_FAILPOINTS"] = failpoints
        try:
            for _ in range(runs):
                self.start(wait=False)
                wait_for(
                    lambda: not self.running or done(),
                    timeout=60,
                    what="a death at a failpoint, or the end",
                )
                if self.running:
                    break
                assert self.exit_code() == 137, self.tail()
                deaths += 1
        finally:
            self.env.pop("RUNBOOK_FAILPOINTS")
            self.stop()
            self.start()
        return deaths

    def _end(self, sig: signal.Signals, timeout: float) -> int | None:
        if self.process is None:
            return None
        code: int | None = self.process.poll()
        if code is None:
            self.process.send_signal(sig)
            self.process.send_signal(signal.SIGCONT)  # a paused one acts on it only then
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def logs(self) -> list[dict[str, Any]]:
        """Every JSON log line written so far (other lines, e.g. tracebacks, are skipped)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def raw_log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())


@contextlib.contextmanager
def running_operator(credentials: Path, workdir: Path, prefix: str) -> Iterator[OperatorProcess]:
    """An operator process with the deploy/ RBAC serving the namespaces `<prefix>-*`."""
    process = OperatorProcess(
        kubeconfig=credentials,
        namespaces=[f"{prefix}-*"],
        log_path=REPO / ".testbed" / "logs" / f"operator-{prefix}.log",
        backup_root=workdir / "backups",
        prefix=prefix,
    )
    process.backup_root.mkdir()
    process.start()
    try:
        yield process
    finally:
        process.stop()
