"""Every process a test run starts, written down so that none outlives it.

Servers (PostgreSQL, Prometheus, ...), the operator and a test bed that the run
brought up are each recorded here by pid and kernel start time as they start.
Each leads a session of its own, so everything it forks (postgres backends, a
Go build's compilers) carries its session id and is found again by it, even
after the leader is gone. At the end of the run `reap()` stops whatever is
still alive, by pid and session, never by name; `python tests/testbed/ledger.py
check` (the last step of `make test`) fails when anything recorded still runs.

The ledger is a JSON-lines file, `<repo>/.testrun/processes.jsonl` unless
RUNBOOK_TEST_LEDGER names another; a process started twice (a restarted server)
simply has two lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Entry", "alive", "entries", "ledger_path", "reap", "record", "reset"]

REPO = Path(__file__).resolve().parents[2]


def ledger_path() -> Path:
    named = os.environ.get("RUNBOOK_TEST_LEDGER")
    return Path(named) if named else REPO / ".testrun" / "processes.jsonl"


@dataclass(frozen=True)
class Entry:
    name: str
    pid: int
    start_time: int
    """Kernel start time in clock ticks: tells a reused pid apart."""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, session id, start time) of a live pid, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[3]), int(fields[19])


def record(name: str, pid: int) -> Entry | None:
    """Write one started process into the ledger (None when it has already exited)."""
    stat = _stat(pid)
    if stat is None:
        return None
    entry = Entry(name, pid, stat[2])
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as ledger:
        ledger.write(json.dumps(asdict(entry)) + "\n")
    return entry


def entries(path: Path | None = None) -> list[Entry]:
    """What the ledger (this run's, or the one at `path`) recorded."""
    try:
        lines = (path or ledger_path()).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError, TypeError):
            out.append(Entry(**json.loads(line)))
    return out


def _members(entry: Entry) -> list[int]:
    """Live processes of an entry: the process itself and every process of the session it
    leads. Nothing is found when its pid now belongs to another process (a reused pid)."""
    leader = _stat(entry.pid)
    if leader is not None and leader[2] != entry.start_time:
        return []
    found = []
    for item in Path("/proc").iterdir():
        if not item.name.isdigit():
            continue
        stat = _stat(int(item.name))
        if stat is not None and stat[0] != "Z" and entry.pid in (int(item.name), stat[1]):
            found.append(int(item.name))
    return found


def alive(recorded: Iterable[Entry] | None = None) -> dict[Entry, list[int]]:
    """Recorded entries with live processes, and those processes."""
    out = {}
    for entry in recorded if recorded is not None else entries():
        members = _members(entry)
        if members:
            out[entry] = members
    return out


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def reap(grace: float = 10.0) -> list[str]:
    """Stop every recorded process still alive (SIGTERM, then SIGKILL after `grace`).

    Returns a line per entry that had to be stopped.
    """
    left = alive()
    stopped = [f"{e.name} (pid {e.pid}): {len(p)} process(es)" for e, p in left.items()]
    for members in left.values():
        _signal(members, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = alive(left)
    for members in left.values():
        _signal(members, signal.SIGKILL)
    return stopped


def reset() -> None:
    """Start a fresh ledger (after reaping what an interrupted earlier run left)."""
    reap()
    with contextlib.suppress(FileNotFoundError):
        ledger_path().unlink()


def _check() -> int:
    left = alive()
    if not left:
        print(f"no process of the test run is left ({len(entries())} were recorded)")
        return 0
    for entry, members in left.items():
        print(f"still running: {entry.name} (pid {entry.pid}): {members}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "check":
        sys.exit(_check())
    if command == "reap":
        for line in reap():
            print(f"stopped {line}")
        sys.exit(0)
    print("usage: ledger.py check|reap", file=sys.stderr)
    sys.exit(2)
