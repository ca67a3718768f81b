"""The operator's client keeps its connections to the real API server open (adapters.kube.warm):
with the operator's own credentials, each request of one turn holds a connection of its
own, and the next turn finds them all open."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from runbook_operator.adapters.kube import api_client, warm


def _open(api: client.ApiClient) -> int:
    pool = api.rest_client.pool_manager.connection_from_url(api.configuration.host)
    return sum(1 for conn in list(pool.pool.queue) if conn is not None and conn.sock is not None)


def test_a_turn_opens_its_connections_and_the_next_finds_them_open(
    operator_credentials: Path,
) -> None:
    api = api_client(str(operator_credentials), counted=False)
    try:
        assert warm(api, 3) == 3  # a new client: three requests, three new connections
        assert _open(api) == 3
        assert warm(api, 3) == 0  # all three were open, and each was used again
        assert warm(api, 5) == 2  # a larger turn opens only what is missing
        assert _open(api) == 5
    finally:
        api.close()
