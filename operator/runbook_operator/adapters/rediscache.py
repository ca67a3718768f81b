"""Redis, for the runbook's cache commands: measure, flush, unlink by pattern.

One short-lived connection per call (`redis-py`), with connect and socket timeouts so a
dead server fails in seconds rather than stalling a pass. The password and the user
name never appear in a message: errors name the address and what went wrong.

Exceptions (each has a `reason` for conditions and events):
    RedisError
     +-- RedisUnreachable       (refused, timed out, name not resolved)
     +-- RedisAuthFailed        (NOAUTH, WRONGPASS)
     +-- RedisCommandRefused    (the command is renamed, disabled or not permitted)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
import redis.exceptions as rex
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "CONNECT_TIMEOUT",
    "Memory",
    "RedisAuthFailed",
    "RedisCommandRefused",
    "RedisError",
    "RedisServer",
    "RedisUnreachable",
    "Stats",
    "clear_marker",
    "flush",
    "has_marker",
    "memory",
    "set_marker",
    "stats",
    "unlink_matching",
]

CONNECT_TIMEOUT = 5.0
"""Seconds to connect."""
COMMAND_TIMEOUT = 30.0
"""Seconds for one command (a synchronous FLUSHDB of a large database takes a while)."""
BATCH = 500
"""Keys per SCAN step and per UNLINK."""


class RedisError(Exception):
    reason = "RedisError"


class RedisUnreachable(RedisError):
    reason = "RedisUnreachable"


class RedisAuthFailed(RedisError):
    reason = "RedisAuthFailed"


class RedisCommandRefused(RedisError):
    reason = "RedisCommandRefused"


@dataclass(frozen=True)
class RedisServer:
    """Where and as whom; the password never appears in repr()."""

    host: str
    port: int
    db: int
    password: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.db}"


@dataclass(frozen=True)
class Stats:
    keys: int
    used_memory: int
    used_memory_human: str
    version: str
    """The server's redis_version, e.g. 7.0.15."""

    @property
    def major(self) -> int:
        head = self.version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0


def _clean(text: str, server: RedisServer) -> str:
    for secret in (server.password, server.username):
        if secret:
            text = text.replace(secret, "[redacted]")
    return " ".join(text.split())


@dataclass(frozen=True)
class Memory:
    """What a health check asks: did PING answer, and how full is the server."""

    used_memory: int
    used_memory_human: str
    maxmemory: int
    """0: no limit set."""
    ping_seconds: float


@contextmanager
def _client(server: RedisServer, timeout: float | None = None) -> Iterator[redis.Redis]:
    """A connection; with a `timeout` (a health check's), one honest attempt: redis-py's
    default retries with backoff would turn "connection refused" into a timeout."""
    conn = redis.Redis(
        host=server.host,
        port=server.port,
        db=server.db,
        username=server.username,
        password=server.password,
        socket_connect_timeout=min(CONNECT_TIMEOUT, timeout or CONNECT_TIMEOUT),
        socket_timeout=timeout or COMMAND_TIMEOUT,
        client_name="runbook-operator",
    )
    if timeout is not None:
        conn.set_retry(Retry(NoBackoff(), 0))
    where = f"Redis at {server.address}"
    try:
        yield conn
    except rex.AuthenticationError as exc:
        text = _clean(str(exc), server)
        raise RedisAuthFailed(f"{where} rejected the credentials: {text}") from None
    except (rex.ConnectionError, rex.TimeoutError) as exc:
        raise RedisUnreachable(f"cannot reach {where}: {_clean(str(exc), server)}") from None
    except rex.ResponseError as exc:
        text = _clean(str(exc), server)
        if text.upper().startswith(("NOAUTH", "WRONGPASS")):
            raise RedisAuthFailed(f"{where} rejected the credentials: {text}") from None
        raise RedisCommandRefused(f"{where} refused the command: {text}") from None
    except rex.RedisError as exc:
        raise RedisError(f"{where}: {_clean(str(exc), server)}") from None
    finally:
        conn.close()


def _count(conn: redis.Redis, pattern: str | None) -> int:
    if pattern is None:
        return int(conn.dbsize())
    return sum(1 for _ in conn.scan_iter(match=pattern, count=BATCH))


def stats(server: RedisServer, pattern: str | None = None) -> Stats:
    """Keys (all, or matching `pattern`), memory in use, and the server's version."""
    with _client(server) as conn:
        memory = conn.info("memory")
        version = conn.info("server").get("redis_version", "")
        return Stats(
            keys=_count(conn, pattern),
            used_memory=int(memory.get("used_memory", 0)),
            used_memory_human=str(memory.get("used_memory_human", "")),
            version=str(version),
        )


def memory(server: RedisServer, timeout: float | None = None) -> Memory:
    """PING, then INFO memory: used_memory against maxmemory. `timeout` bounds each step."""
    with _client(server, timeout) as conn:
        started = time.monotonic()
        conn.ping()
        took = time.monotonic() - started
        info = conn.info("memory")
        return Memory(
            used_memory=int(info.get("used_memory", 0)),
            used_memory_human=str(info.get("used_memory_human", "")),
            maxmemory=int(info.get("maxmemory", 0)),
            ping_seconds=took,
        )


def set_marker(server: RedisServer, key: str, ttl_seconds: int) -> None:
    """Set `key` (kept when already there), expiring after `ttl_seconds`."""
    with _client(server) as conn:
        conn.set(key, b"runbook-operator flush pending", nx=True, ex=ttl_seconds)


def clear_marker(server: RedisServer, key: str) -> None:
    with _client(server) as conn:
        conn.delete(key)


def has_marker(server: RedisServer, key: str) -> bool:
    with _client(server) as conn:
        return bool(conn.exists(key))


def flush(server: RedisServer, *, asynchronous: bool) -> None:
    """FLUSHDB (ASYNC when asked: the keys go at once, the memory is freed behind)."""
    with _client(server) as conn:
        conn.flushdb(asynchronous=asynchronous)


def unlink_matching(
    server: RedisServer, pattern: str, stop: Callable[[], bool] = lambda: False
) -> int:
    """UNLINK every key matching `pattern`, a SCAN step at a time; how many were removed.
    Stops early (returning the count so far) once `stop()` says so."""
    removed = 0
    with _client(server) as conn:
        batch: list[bytes] = []
        for key in conn.scan_iter(match=pattern, count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                removed += int(conn.unlink(*batch))
                batch = []
                if stop():
                    return removed
        if batch:
            removed += int(conn.unlink(*batch))
    return removed
