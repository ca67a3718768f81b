"""The one in-memory Redis for unit tests, checked against core.cache.Redis.

Databases are dicts of keys; every call is logged in order with the address it used, an
operation can be made to fail. The e2e tests use the real server (support/redis.py).

    r = FakeRedis({0: {b"session:1": b"x", b"user:1": b"y"}})
    r.fail["flush"] = rc.RedisUnreachable("cannot reach Redis")
    r.calls                      # [("stats", "redis:6379/0"), ...]
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from runbook_operator.adapters import rediscache as rc
from runbook_operator.core.cache import Redis

__all__ = ["FakeRedis"]


class FakeRedis:
    def __init__(self, dbs: dict[int, dict[bytes, bytes]] | None = None, version: str = "7.0.15"):
        self.dbs = dbs or {}
        self.version = version
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[str, Exception] = {}
        self.logins: list[tuple[str | None, str | None]] = []

    def _db(self, server: rc.RedisServer, call: str) -> dict[bytes, bytes]:
        self.calls.append((call, server.address))
        self.logins.append((server.username, server.password))
        if call in self.fail:
            raise self.fail[call]
        return self.dbs.setdefault(server.db, {})

    def _matching(self, db: dict[bytes, bytes], pattern: str | None) -> list[bytes]:
        if pattern is None:
            return list(db)
        return [k for k in db if fnmatch.fnmatchcase(k.decode(), pattern)]

    def stats(self, server: rc.RedisServer, pattern: str | None = None) -> rc.Stats:
        db = self._db(server, "stats")
        keys = len(self._matching(db, pattern))
        used = 1000 + sum(len(k) + len(v) for k, v in db.items())
        return rc.Stats(keys, used, f"{used / 1024:.2f}K", self.version)

    def set_marker(self, server: rc.RedisServer, key: str, ttl_seconds: int) -> None:
        self._db(server, "set_marker").setdefault(key.encode(), b"pending")

    def clear_marker(self, server: rc.RedisServer, key: str) -> None:
        self._db(server, "clear_marker").pop(key.encode(), None)

    def has_marker(self, server: rc.RedisServer, key: str) -> bool:
        return key.encode() in self._db(server, "has_marker")

    def flush(self, server: rc.RedisServer, *, asynchronous: bool) -> None:
        self._db(server, "flush_async" if asynchronous else "flush").clear()

    def unlink_matching(
        self, server: rc.RedisServer, pattern: str, stop: Callable[[], bool] = lambda: False
    ) -> int:
        db = self._db(server, "unlink_matching")
        gone = self._matching(db, pattern)
        for key in gone:
            del db[key]
        return len(gone)


_checked: Redis = FakeRedis()
