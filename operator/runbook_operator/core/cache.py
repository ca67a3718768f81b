"""Cache work's I/O for the kinds that run it: the Redis port, and the login.

`Redis` is the port: adapters.rediscache is its one implementation (`REDIS`, the module
itself); unit tests inject tests/support/fake_redis.py. `server()` reads the password
(and ACL user name) from the Secret the API names, when it is needed, with `get` only;
neither value is ever logged or put into a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..adapters import rediscache as rc
from .database import CredentialsError, secret_value
from .ports import KubePort
from .redis import RedisRef

__all__ = ["FAILURES", "REDIS", "Redis", "server"]


class Redis(Protocol):
    """What the cache kinds ask of Redis (adapters.rediscache says how)."""

    def stats(self, server: rc.RedisServer, pattern: str | None = None) -> rc.Stats: ...

    def set_marker(self, server: rc.RedisServer, key: str, ttl_seconds: int) -> None: ...

    def has_marker(self, server: rc.RedisServer, key: str) -> bool: ...

    def clear_marker(self, server: rc.RedisServer, key: str) -> None: ...

    def flush(self, server: rc.RedisServer, *, asynchronous: bool) -> None: ...

    def unlink_matching(
        self, server: rc.RedisServer, pattern: str, stop: Callable[[], bool] = ...
    ) -> int: ...


REDIS: Redis = rc
"""The real one."""

FAILURES = (rc.RedisError, CredentialsError)
"""What ends cache work with a reason (each has `.reason`)."""


def server(kube: KubePort, namespace: str, ref: RedisRef) -> rc.RedisServer:
    """The server `ref` names, with its password (and ACL user name) read from its Secret
    when it names one."""
    password = username = None
    creds = ref.credentials
    if creds is not None:
        keys = repr(creds.password_key)
        keys += f" and {creds.username_key!r}" if creds.username_key else ""
        password = secret_value(kube, namespace, creds.secret_name, creds.password_key, keys)
        if creds.username_key is not None:
            username = secret_value(kube, namespace, creds.secret_name, creds.username_key, keys)
    return rc.RedisServer(ref.host, ref.port, ref.db, password=password, username=username)
