"""A real Alertmanager (Debian's /usr/bin/prometheus-alertmanager) on loopback.

MaintenanceWindow silences are proven against the real server, not a mock:
the operator creates and expires silences through its v2 API, and the test
reads them back from the same API.

    from support.alertmanager import alertmanager  # noqa: F401  (the fixture)

    def test_silence(alertmanager):
        ... spec.silence.url = alertmanager.url ...
        alertmanager.silences()       # every silence, with status.state
        alertmanager.stop()           # "Alertmanager is down"
        alertmanager.start()          # back, same port, same data

Everything listens on 127.0.0.1 on free ports, clustering is off, silences
live in a temp dir; the server is stopped when the fixture ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .servers import ServerProcess, running

__all__ = ["ALERTMANAGER_BINARY", "Alertmanager", "alertmanager", "running_alertmanager"]

ALERTMANAGER_BINARY = os.environ.get(
    "RUNBOOK_TEST_ALERTMANAGER", "/usr/bin/prometheus-alertmanager"
)
CONFIG = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"


class Alertmanager(ServerProcess):
    """One Alertmanager process; `stop()`/`start()` keep its port and its silences."""

    name = "Alertmanager"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.config = workdir / "alertmanager.yml"
        self.data = workdir / "data"
        self.config.write_text(CONFIG)

    def start(self, timeout: float = 30) -> None:
        if self.running:
            return
        self._spawn(
            [
                ALERTMANAGER_BINARY,
                f"--config.file={self.config}",
                f"--storage.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ]
        )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Alertmanager not ready after {timeout}s; see {self.log_path}")
            time.sleep(0.1)

    def silences(self) -> list[dict[str, Any]]:
        """Every silence Alertmanager knows, active, pending and expired."""
        with urllib.request.urlopen(f"{self.url}/api/v2/silences", timeout=5) as response:
            return list(json.load(response))

    def active(self) -> list[dict[str, Any]]:
        return [s for s in self.silences() if s["status"]["state"] == "active"]


def running_alertmanager(
    workdir: Path | None = None,
) -> contextlib.AbstractContextManager[Alertmanager]:
    return running(Alertmanager, ALERTMANAGER_BINARY, "prometheus-alertmanager", workdir)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """A fresh Alertmanager for one test (well under a second to start)."""
    with running_alertmanager(tmp_path / "alertmanager") as server:
        yield server
