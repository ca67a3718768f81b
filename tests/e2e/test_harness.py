"""The test harness itself: nothing it starts outlives it, whatever stops it.

`make test` must leave no process behind, also when it is interrupted during the
test-bed build or during the suite. These tests interrupt both for real: build.sh
with a stand-in `go` whose build hangs (and has a child, as a compiler would), and a
pytest session of its own that has started the real servers (PostgreSQL,
Alertmanager), stopped by Ctrl-C (SIGINT to its process group) or by SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.wait import wait_for
from testbed import ledger

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "testbed" / "build.sh"
PROBE = ROOT / "tests" / "harness" / "probe_servers.py"

STUB_GO = """#!/bin/sh
# A `go build` that hangs, with a child of its own (as the compiler and linker are).
echo $$ > "$STUB_PIDS/go.pid"
sleep 600 &
echo $! > "$STUB_PIDS/child.pid"
wait
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _read_pid(path: Path) -> int:
    text = wait_for(lambda: path.exists() and path.read_text().strip(), timeout=30, what=str(path))
    return int(str(text))


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_build_leaves_no_process_and_no_half_built_directory(
    tmp_path: Path, how: str
) -> None:
    stub, pids, cache = tmp_path / "bin", tmp_path / "pids", tmp_path / "cache"
    for d in (stub, pids, cache):
        d.mkdir()
    (stub / "go").write_text(STUB_GO)
    (stub / "go").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{stub}:{os.environ['PATH']}",
        "STUB_PIDS": str(pids),
        "RUNBOOK_TESTBED_CACHE": str(cache),
    }
    build = subprocess.Popen(
        ["bash", str(BUILD)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    go, child = _read_pid(pids / "go.pid"), _read_pid(pids / "child.pid")
    assert list(cache.glob("*.tmp")), "the build writes into a temporary directory"
    if how == "ctrl-c":
        os.killpg(build.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    else:
        build.terminate()  # only build.sh itself, as a timeout would
    _, err = build.communicate(timeout=30)
    assert build.returncode == 130, err
    assert b"interrupted; nothing half-built is kept" in err
    wait_for(lambda: not _alive(go) and not _alive(child), timeout=10, what="the build stopped")
    assert not list(cache.glob("*.tmp"))
    assert not list(cache.glob("*/.complete"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_test_session_stops_every_server_it_started(
    tmp_path: Path, how: str
) -> None:
    ready, session_ledger = tmp_path / "ready", tmp_path / "processes.jsonl"
    env = {
        **os.environ,
        "PROBE_READY": str(ready),
        "RUNBOOK_TEST_LEDGER": str(session_ledger),
    }
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(PROBE), "-p", "no:cacheprovider", "-q"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: ready.exists() or session.poll() is not None,
            timeout=120,
            what="the probe session's servers",
        )
        if not ready.exists():
            output = session.stdout.read() if session.stdout else b""
            pytest.fail(f"the probe session ended early:\n{output.decode(errors='replace')}")
        started = ledger.entries(session_ledger)
        assert {e.name for e in started} >= {"postgres", "Alertmanager"}, started
        assert all(ledger.alive([e]) for e in started)
        if how == "ctrl-c":
            os.killpg(session.pid, signal.SIGINT)
        else:
            session.terminate()
        output, _ = session.communicate(timeout=90)
    finally:
        if session.poll() is None:
            session.kill()
    assert session.returncode != 0
    deadline = time.monotonic() + 10
    while ledger.alive(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ledger.alive(started), output.decode(errors="replace")[-2000:]
