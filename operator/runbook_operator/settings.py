"""The operator's settings, grouped, each with its unit.

Read once at start-up from the command line and the environment
(`RUNBOOK_*`), then passed to handlers through Kopf's `memo`.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"RUNBOOK_{name}", default)


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """Namespaces (or globs like `team-*`) to serve; empty means all."""

    def serves(self, namespace: str) -> bool:
        """Whether objects of this namespace are ours to act on."""
        return not self.namespaces or any(
            fnmatch.fnmatchcase(namespace, p) for p in self.namespaces
        )

    metrics_address: str = field(default_factory=lambda: _env("METRICS_ADDRESS", "0.0.0.0"))
    """Address of the Prometheus /metrics endpoint."""
    metrics_port: int = field(default_factory=lambda: int(_env("METRICS_PORT", "8080")))
    """Port of the /metrics endpoint; 0 disables it."""
    liveness_port: int = field(default_factory=lambda: int(_env("LIVENESS_PORT", "8081")))
    """Port of the /healthz liveness endpoint; 0 disables it."""
    prometheus_url: str = field(default_factory=lambda: _env("PROMETHEUS_URL", ""))
    """Default Prometheus for triggers and health checks, e.g. http://prometheus:9090."""
    argocd_namespace: str = field(default_factory=lambda: _env("ARGOCD_NAMESPACE", "argocd"))
    """Where Argo CD's Applications live, when a tracking annotation does not say."""
    max_replicas: int = field(default_factory=lambda: int(_env("MAX_REPLICAS", "50")))
    """Policy cap on the replicas an EmergencyScale may ask for."""
    backup_root: Path = field(
        default_factory=lambda: Path(_env("BACKUP_ROOT", "/var/lib/runbook/backups"))
    )
    """Where DatabaseBackups are written (a mounted volume)."""
    volume_quota_bytes: int = field(default_factory=lambda: int(_env("VOLUME_QUOTA_BYTES", "0")))
    """Bytes of artifacts one namespace may keep on the backup volume (0: no limit); a
    backup of a namespace at or over it fails with reason QuotaExceeded before pg_dump."""
    volume_quota_count: int = field(default_factory=lambda: int(_env("VOLUME_QUOTA_COUNT", "0")))
    """Artifacts one namespace may keep on the backup volume (0: no limit)."""
    tick_seconds: float = field(default_factory=lambda: float(_env("TICK_SECONDS", "2")))
    """How often a Prometheus condition (a trigger, a gate) is asked again, in seconds.
    Nothing else polls: everything else waits for a watch event or its own due time."""
    pass_workers: int = field(default_factory=lambda: int(_env("PASS_WORKERS", "16")))
    """Threads for the passes of operations (Kubernetes API calls), shared by every kind."""
    database_workers: int = field(default_factory=lambda: int(_env("DATABASE_WORKERS", "4")))
    """Threads for database work (pg_dump, pg_restore), apart from the passes': this many
    dumps or restores run at once, the rest wait, and no incident ever waits for them."""
