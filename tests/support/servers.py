"""Servers the tests run as real processes on loopback (Prometheus, Alertmanager, ...).

`ServerProcess` keeps what they share: a free port on 127.0.0.1, a log file in
the server's work directory, start in a session of its own, SIGTERM-then-kill
on stop (after which the URL refuses connections), and readiness through the
Prometheus-style `/-/ready` endpoint that fails early when the process died.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from testbed import ledger

__all__ = ["ServerProcess", "free_port", "require", "running"]

S = TypeVar("S", bound="ServerProcess")


def require(binary: Path | str, package: str) -> None:
    """Fail the test at once (never skip it) when a server it needs is not installed."""
    if not Path(binary).exists():
        pytest.fail(
            f"{binary} is not installed: `make deps` installs it (Debian package {package}; "
            f"as a user other than root: sudo apt-get install --no-install-recommends {package})",
            pytrace=False,
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process; `stop()` then `start()` keeps its port and its data."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / f"{self.name.lower()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30) -> None:
        """Start the process and wait until it serves (each server says how)."""
        raise NotImplementedError

    def _spawn(self, argv: list[str]) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        ledger.record(self.name, self.process.pid)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM and wait: afterwards the URL refuses connections."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None

    def _ready(self) -> bool:
        """GET /-/ready answers 200; raises at once when the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited early; see {self.log_path}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def running(
    make: Callable[[Path], S], binary: Path | str, package: str, workdir: Path | None = None
) -> Iterator[S]:
    """A started server in `workdir` (a temp dir, removed afterwards, when None); stopped
    at the end. Fails at once, naming the package, when `binary` is not installed."""
    require(binary, package)
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="runbook-server-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    server = make(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if own:
            shutil.rmtree(root, ignore_errors=True)
