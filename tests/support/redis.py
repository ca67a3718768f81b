"""A real Redis (Debian's /usr/bin/redis-server) on loopback, with a password.

CacheFlushes are proven against the real server: the test fills it with redis-py, the
operator flushes it, the test counts what is left.

    from support.redis import redis_server as redis_server  # noqa: PLC0414  (the fixture)

    def test_flush(redis_server):
        redis_server.client().set("k", "v")
        redis_server.stop()       # "Redis is down"
        redis_server.start()      # back on the same port (empty: nothing is persisted)

It listens on 127.0.0.1 on a free port, persists nothing, and is stopped when the
fixture ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .servers import ServerProcess, running

__all__ = ["REDIS_BINARY", "RedisProcess", "redis_server", "running_redis"]

REDIS_BINARY = os.environ.get("RUNBOOK_TEST_REDIS", "/usr/bin/redis-server")


class RedisProcess(ServerProcess):
    name = "Redis"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.password = f"leakcheck-{secrets.token_hex(12)}"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self, timeout: float = 20) -> None:
        if self.running:
            return
        self._spawn(
            [
                REDIS_BINARY,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--requirepass",
                self.password,
            ]
        )
        deadline = time.monotonic() + timeout
        while not self._pong():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Redis not ready after {timeout}s; see {self.log_path}")
            time.sleep(0.05)

    def _pong(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"Redis exited early; see {self.log_path}:\n{self.log_tail()}")
        try:
            return bool(self.client().ping())
        except redis.exceptions.ConnectionError:
            return False

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, db=db, password=self.password, socket_timeout=5
        )


def running_redis(workdir: Path | None = None) -> contextlib.AbstractContextManager[RedisProcess]:
    return running(RedisProcess, REDIS_BINARY, "redis-server", workdir)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A fresh, empty Redis for one test (it starts in milliseconds)."""
    with running_redis(tmp_path / "redis") as server:
        yield server
