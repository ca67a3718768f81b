"""PostgreSQL, asked how it is: reachable, connections, long-running queries, replication.

The runbook's `pg_isready` and its look at `pg_stat_activity`, as one short connection
(adapters.postgres.connect: keepalives, no password anywhere but libpq) with a statement
timeout, so a server that accepts connections but answers nothing fails in seconds.

A login without `pg_monitor` (or `pg_read_all_stats`) sees only its own sessions' states:
the long-query count then covers those. The query text is read only when asked for.

Errors are adapters.postgres's (ServerUnreachable, AuthenticationFailed, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from .postgres import PostgresError, Server, connect

__all__ = ["LongQuery", "PgHealth", "health"]

MAX_QUERY_TEXT = 200
"""Characters of a long query's text kept (when asked for)."""
MAX_QUERIES = 5
"""Long queries listed (the longest first)."""

_CONNECTIONS = """
SELECT current_setting('max_connections')::int,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend')
"""
_LONG = """
SELECT pid, EXTRACT(EPOCH FROM (clock_timestamp() - query_start))::float8, {text}
FROM pg_catalog.pg_stat_activity
WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND query_start < clock_timestamp() - make_interval(secs => %s)
ORDER BY query_start
"""
_REPLICATION = """
SELECT count(*), max(EXTRACT(EPOCH FROM replay_lag))::float8
FROM pg_catalog.pg_stat_replication
"""


@dataclass(frozen=True)
class LongQuery:
    pid: int
    seconds: float
    text: str | None
    """The query's first MAX_QUERY_TEXT characters, only when asked for."""


@dataclass(frozen=True)
class PgHealth:
    connections: int
    max_connections: int
    long_queries: list[LongQuery]
    """Active longer than the threshold, longest first (at most MAX_QUERIES)."""
    long_query_count: int
    replicas: int
    """Rows of pg_stat_replication (standbys streaming from this server)."""
    replication_lag: float | None
    """The largest replay_lag in seconds; None without standbys (or no lag measured yet)."""


def health(
    server: Server, *, long_query_seconds: float, show_queries: bool, timeout: float
) -> PgHealth:
    """One connection, three catalog queries, each bounded by `timeout` seconds."""
    conn = connect(server, autocommit=True)
    try:
        with conn:
            conn.execute(f"SET statement_timeout = {max(1, round(timeout * 1000))}")
            row = conn.execute(_CONNECTIONS).fetchone()
            assert row is not None
            text = f"left(query, {MAX_QUERY_TEXT})" if show_queries else "NULL::text"
            rows: list[Any] = conn.execute(
                _LONG.format(text=text).encode(), (long_query_seconds,)
            ).fetchall()
            replication = conn.execute(_REPLICATION).fetchone()
    except psycopg.Error as exc:
        detail = " ".join(server.redact(str(exc)).split())
        raise PostgresError(f"PostgreSQL at {server.address}: {detail}") from None
    assert replication is not None
    queries = [
        LongQuery(int(pid), float(secs), q if show_queries else None) for pid, secs, q in rows
    ]
    return PgHealth(
        connections=int(row[1]),
        max_connections=int(row[0]),
        long_queries=queries[:MAX_QUERIES],
        long_query_count=len(queries),
        replicas=int(replication[0]),
        replication_lag=None if replication[1] is None else float(replication[1]),
    )
