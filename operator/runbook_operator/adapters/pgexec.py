"""Running the PostgreSQL client tools: argument lists, a private passfile, a kill switch.

`pg_dump` and `pg_restore` come from the operator's PATH and are started with an
argument list, never through a shell. The password never appears on their command
line: a `Session` writes it to a passfile (mode 0600) in a private temporary
directory (mode 0700) and points PGPASSFILE at it, and removes the directory when
the session ends; the child's environment is ours without any PG* variable. Every
message that leaves this module has the password redacted.

A child is killed as soon as its `Cancel` is set (the pass's `stopped` flag: the
object was deleted, or the operator is stopping), or its `Deadline` passes: no dump or
restore runs for ever, whatever it waits for. Errors here are about processes;
`postgres` turns them into reasons a person can act on.

Exceptions:
    NotInstalled   the tool is not on PATH, or prints no version
    Exited         the tool failed (exit code and the end of its stderr)
    Stopped        the tool was killed because `cancel` was set
     +-- TimedOut  ... because its deadline passed
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = [
    "CONNECT_TIMEOUT",
    "Cancel",
    "Deadline",
    "Exited",
    "NotInstalled",
    "Session",
    "Stopped",
    "TimedOut",
    "Tools",
    "find_tools",
    "killed_on",
    "redact",
    "session",
    "stopped",
]

APPLICATION = "runbook-operator"
CONNECT_TIMEOUT = 10
"""Seconds to wait for a connection (libpq connect_timeout)."""
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class NotInstalled(Exception):
    pass


class Exited(Exception):
    def __init__(self, tool: str, code: int, tail: str) -> None:
        super().__init__(f"{tool} exited with code {code}: {tail or 'no message'}")
        self.code = code
        self.tail = tail


class Stopped(Exception):
    pass


class TimedOut(Stopped):
    pass


class Cancel(Protocol):
    """Set when the work must stop: a threading.Event, or a `Deadline`."""

    def is_set(self) -> bool: ...


@dataclass
class Deadline:
    """Set when `cancel` is, or once `seconds` have passed since it was made: the stop
    flag of one piece of long work, with its time limit (`label` says it in words)."""

    cancel: Cancel
    seconds: float
    label: str = ""
    started: float = field(default_factory=time.monotonic)

    def expired(self) -> bool:
        return time.monotonic() - self.started >= self.seconds

    def is_set(self) -> bool:
        return self.cancel.is_set() or self.expired()


def stopped(cancel: Cancel, tool: str) -> Stopped:
    """Why `tool` was killed: its deadline passed (TimedOut), or it was told to stop."""
    if isinstance(cancel, Deadline) and not cancel.cancel.is_set() and cancel.expired():
        within = cancel.label or f"{cancel.seconds:g}s"
        return TimedOut(f"{tool} did not finish within {within} (the timeout) and was stopped")
    return Stopped(f"{tool} was stopped")


def redact(text: str, password: str, user: str = "") -> str:
    """`text` without the password, nor the user name from the Secret where PostgreSQL
    quotes it (`for user "x"`, `role "x"`; a bare name may be any word of a message)."""
    if password:
        text = text.replace(password, "[redacted]")
    if user:
        text = text.replace(f'"{user}"', '"[redacted]"')
    return text


@dataclass(frozen=True)
class Tools:
    pg_dump: str
    pg_restore: str
    version: str
    """e.g. "15.18"."""
    major: int


def find_tools() -> Tools:
    """pg_dump and pg_restore from PATH, and their version."""
    found = {name: shutil.which(name) for name in ("pg_dump", "pg_restore")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise NotInstalled(
            f"{' and '.join(missing)} not found on the operator's PATH; "
            "install the PostgreSQL client tools in the operator's image"
        )
    pg_dump, pg_restore = str(found["pg_dump"]), str(found["pg_restore"])
    try:
        out = subprocess.run(
            [pg_dump, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError as exc:
        raise NotInstalled(f"cannot run {pg_dump}: {exc}") from exc
    match = _VERSION_RE.search(out)
    if match is None:
        raise NotInstalled(f"{pg_dump} --version printed no PostgreSQL version: {out.strip()!r}")
    major, minor = match.group(1), match.group(2)
    return Tools(pg_dump, pg_restore, f"{major}.{minor}" if minor else major, int(major))


@dataclass
class Session:
    """A private directory with the passfile, and the environment that uses it."""

    directory: Path
    password: str = field(repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    user: str = field(default="", repr=False)
    """The user name, from the Secret too: in the environment (PGUSER), never on a command
    line, and redacted from what the tools print."""

    def spawn(
        self, args: list[str], *, stdin: Any, stdout: Any, name: str = "stderr"
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a tool; its stderr goes to a file in the private directory."""
        stderr = self.directory / name
        with stderr.open("wb") as err:
            proc = subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=err, env=self.env)
        return proc, stderr

    def finish(self, proc: subprocess.Popen[bytes], stderr: Path, cancel: Cancel, tool: str) -> str:
        """Wait for the tool; raise Stopped or Exited; return the end of its stderr."""
        code = proc.wait()
        if cancel.is_set():
            raise stopped(cancel, tool)
        tail = self._tail(stderr)
        if code != 0:
            raise Exited(tool, code, tail)
        return tail

    def _tail(self, path: Path, lines: int = 8) -> str:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if line.strip()][-lines:]
        return redact(" ".join(kept), self.password, self.user)

    def run_fed(
        self, args: list[str], chunks: Iterable[bytes], cancel: Cancel, *, stdout: Path | None
    ) -> str:
        """Run a tool that reads `chunks` on its stdin (all of them are consumed)."""
        with (stdout or Path(os.devnull)).open("wb") as out:
            proc, stderr = self.spawn(args, stdin=subprocess.PIPE, stdout=out)
        try:
            with killed_on(cancel, proc):  # also while it works on after the last chunk
                _feed(proc, chunks)
                return self.finish(proc, stderr, cancel, Path(args[0]).name)
        except BaseException:
            proc.kill()
            proc.wait()
            raise


@contextmanager
def session(
    password: str,
    sslmode: str,
    user: str = "",
    require_auth: str | None = None,
    ca_pem: str | None = None,
) -> Iterator[Session]:
    directory = Path(tempfile.mkdtemp(prefix="runbook-pg-"))  # mode 0700
    try:
        env = _child_env(directory, password, sslmode)
        if ca_pem:
            (directory / "root.crt").write_text(ca_pem)
            env["PGSSLROOTCERT"] = str(directory / "root.crt")
        if user:
            env["PGUSER"] = user
        if require_auth:
            env["PGREQUIREAUTH"] = require_auth  # honoured by libpq 16 and newer
        yield Session(directory, password, env, user)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _child_env(private: Path, password: str, sslmode: str) -> dict[str, str]:
    """Our environment without PG*, plus sslmode, a timeout and the passfile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGSSLMODE=sslmode,
        PGCONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
        PGAPPNAME=APPLICATION,
    )
    if "\n" in password or "\r" in password:
        env["PGPASSWORD"] = password  # a passfile cannot hold it; the child's env only
        return env
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    passfile = private / "pgpass"
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(f"*:*:*:*:{escaped}\n")
    env["PGPASSFILE"] = str(passfile)
    return env


@contextmanager
def killed_on(cancel: Cancel, proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """Kill `proc` as soon as `cancel` is set, while the block runs."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if cancel.is_set():
                proc.kill()
                return

    watcher = threading.Thread(target=watch, name="pg-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _feed(proc: subprocess.Popen[bytes], chunks: Iterable[bytes]) -> None:
    """Write every chunk to the child's stdin; keep reading if it stops early."""
    stdin: IO[bytes] | None = proc.stdin
    for chunk in chunks:
        if stdin is None:
            continue  # consume the rest (the caller may be hashing it)
        try:
            stdin.write(chunk)
        except BrokenPipeError:
            stdin = None
    if stdin is not None:
        with suppress(BrokenPipeError):
            stdin.close()
