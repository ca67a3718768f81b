"""RUNBOOK_ALLOWED_URLS on the real test bed: an operator started with the setting calls
only the origins it lists, and says so of every other URL a custom resource names.

An operator of its own (the session's serves other namespaces) with the deploy/ RBAC,
allowed only the origin of a health server on loopback. The same server reached by
another name (localhost instead of 127.0.0.1) is another origin, so it is refused:
origins are compared as written, not by where they resolve.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.crs import cond, create_cr, wait_condition
from support.health import Health
from support.health import health as health  # noqa: PLC0414  (the fixture)
from support.images import image
from support.kube import Cluster, create_namespace, delete_namespace, unique_name
from support.operator import OperatorProcess
from support.rollback_cluster import create_deployment, manifest


@pytest.fixture
def restricted(
    kube: Cluster,
    operator_credentials: Path,
    tmp_path: Path,
    health: tuple[str, type[Health]],
) -> Iterator[tuple[str, str]]:
    """(namespace, allowed origin): a namespace served by an operator allowed only the
    health server's origin."""
    url, _ = health
    origin = url.rsplit("/", 1)[0]
    prefix = f"rbe2e-allow-{secrets.token_hex(3)}"
    process = OperatorProcess(
        kubeconfig=operator_credentials,
        namespaces=[f"{prefix}-*"],
        log_path=tmp_path / "operator.log",
        backup_root=tmp_path,
        prefix=prefix,
    )
    process.env["RUNBOOK_ALLOWED_URLS"] = origin
    process.start()
    namespace = create_namespace(kube.api_client, unique_name("urls", prefix=prefix))
    try:
        yield namespace, origin
    finally:
        delete_namespace(kube.api_client, namespace)
        process.stop()


def result(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in obj["status"]["checks"] if r["name"] == name)


def test_only_the_allowed_origin_is_called(
    kube: Cluster, restricted: tuple[str, str], health: tuple[str, type[Health]]
) -> None:
    namespace, origin = restricted
    url, _ = health
    port = origin.rsplit(":", 1)[1]
    other = f"http://localhost:{port}"  # the same server, by another name
    spec = {
        "checks": [
            {"name": "allowed", "http": {"url": url}},
            {"name": "refused", "http": {"url": f"{other}/health"}},
        ]
    }
    create_cr(kube.api, namespace, "HealthReport", "urls", spec)
    report = wait_condition(
        kube.api, namespace, "HealthReport", "urls", "Ready", "False", timeout=60
    )
    assert report["status"]["summary"] == "1/2"
    assert result(report, "allowed")["passed"]
    refused = result(report, "refused")
    assert not refused["passed"]
    assert refused["message"] == (
        f"health check URL refused: {other} is not allowed by the operator's "
        f"RUNBOOK_ALLOWED_URLS ({origin})"
    )

    # A trigger on a Prometheus the setting does not list: never asked, Stalled, in words.
    create_deployment(kube, namespace, manifest("web", image("web-1"), replicas=1))
    create_cr(
        kube.api,
        namespace,
        "EmergencyScale",
        "surge",
        {
            "duration": "10m",
            "targets": [{"name": "web", "replicas": 2}],
            "trigger": {"url": "http://prometheus.elsewhere:9090", "query": "up", "threshold": 1},
        },
    )
    stalled = wait_condition(
        kube.api,
        namespace,
        "EmergencyScale",
        "surge",
        "Stalled",
        reason="URLNotAllowed",
        timeout=60,
    )
    message = cond(stalled, "Stalled")["message"]
    assert "Prometheus URL refused: http://prometheus.elsewhere:9090 is not allowed by the " in (
        message
    )
    assert f"RUNBOOK_ALLOWED_URLS ({origin})" in message
