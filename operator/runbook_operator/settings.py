"""The operator's settings, grouped, each with its unit.

Read once at start-up from the command line and the environment
(`RUNBOOK_*`), then passed to handlers through Kopf's `memo`.
"""

from __future__ import annotations

import fnmatch
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Election", "Settings"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"RUNBOOK_{name}", default)


def _identity() -> str:
    """client-go's default: the host (the pod's name in a pod) and a unique suffix, so a
    restarted process never mistakes the Lease of its predecessor for its own."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Election:
    """Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

    A follower takes over at most `lease_duration + retry_period` after the leader last
    renewed (plus its own start-up); a leader that could not renew for `renew_deadline`
    stops acting, which is before any follower may take over because
    `renew_deadline < lease_duration`."""

    enabled: bool = field(default_factory=lambda: _env("LEADER_ELECTION", "true") == "true")
    """`false` runs one standalone operator that acts at once (no Lease)."""
    lease_name: str = field(default_factory=lambda: _env("LEASE_NAME", "runbook-operator"))
    """The Lease's name."""
    lease_namespace: str = field(
        default_factory=lambda: _env(
            "LEASE_NAMESPACE", os.environ.get("POD_NAMESPACE", "runbook-system")
        )
    )
    """The Lease's namespace: the operator's own (POD_NAMESPACE) by default."""
    identity: str = field(default_factory=_identity)
    """This process's holderIdentity in the Lease."""
    lease_duration: float = field(default_factory=lambda: float(_env("LEASE_DURATION", "10")))
    """Seconds a follower waits, after it last saw the Lease change, before taking it over."""
    renew_deadline: float = field(default_factory=lambda: float(_env("RENEW_DEADLINE", "7")))
    """Seconds after its last successful renewal at which a leader stops acting (fenced)."""
    retry_period: float = field(default_factory=lambda: float(_env("RETRY_PERIOD", "2")))
    """Seconds between two attempts to acquire or renew the Lease."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration, "
                f"got {self.retry_period}, {self.renew_deadline}, {self.lease_duration}"
            )


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """Namespaces (or globs like `team-*`) to serve; empty means all."""

    def serves(self, namespace: str) -> bool:
        """Whether objects of this namespace are ours to act on."""
        return not self.namespaces or any(
            fnmatch.fnmatchcase(namespace, p) for p in self.namespaces
        )

    @property
    def exact_namespaces(self) -> tuple[str, ...] | None:
        """The namespaces served, when they are all named exactly (no glob); None when
        the operator serves all namespaces or a pattern, and so watches cluster-wide.

        Only with exact names does it need no cluster-wide permission at all: Kopf
        watches each namespace, and neither lists namespaces nor watches CRDs
        (deploy/namespaced, the namespaced install mode).
        """
        if not self.namespaces or any(c in n for n in self.namespaces for c in "*?["):
            return None
        return self.namespaces

    metrics_address: str = field(default_factory=lambda: _env("METRICS_ADDRESS", "0.0.0.0"))
    """Address of the Prometheus /metrics endpoint."""
    metrics_port: int = field(default_factory=lambda: int(_env("METRICS_PORT", "8080")))
    """Port of the /metrics endpoint; 0 disables it."""
    liveness_port: int = field(default_factory=lambda: int(_env("LIVENESS_PORT", "8081")))
    """Port of the /healthz liveness endpoint; 0 disables it."""
    prometheus_url: str = field(default_factory=lambda: _env("PROMETHEUS_URL", ""))
    """Default Prometheus for triggers and health checks, e.g. http://prometheus:9090."""
    allowed_urls: str = field(default_factory=lambda: _env("ALLOWED_URLS", ""))
    """Comma-separated origins (scheme://host[:port], `*.` for names below a domain, `:*`
    for any port) that Prometheus, Alertmanager, health-check and webhook URLs taken
    from custom resources must match (adapters.urls). Empty: any URL."""
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
    safety_backups_keep: int = field(default_factory=lambda: int(_env("SAFETY_BACKUPS_KEEP", "3")))
    """Completed safety backups (taken by DatabaseRestores before they overwrite) kept per
    database, newest first; older ones are deleted with their artifacts (at least 1)."""
    safety_backups_max_age: str = field(default_factory=lambda: _env("SAFETY_BACKUPS_MAX_AGE", ""))
    """A Go duration, e.g. 720h: safety backups older than this are deleted, except the
    newest Completed one of each database. Empty: no age limit."""
    tick_seconds: float = field(default_factory=lambda: float(_env("TICK_SECONDS", "2")))
    """How often a Prometheus condition (a trigger, a gate) is asked again, in seconds.
    Nothing else polls: everything else waits for a watch event or its own due time."""
    pass_workers: int = field(default_factory=lambda: int(_env("PASS_WORKERS", "16")))
    """Threads for the passes of operations (Kubernetes API calls), shared by every kind."""
    database_workers: int = field(default_factory=lambda: int(_env("DATABASE_WORKERS", "4")))
    """Threads for database work (pg_dump, pg_restore), apart from the passes': this many
    dumps or restores run at once, the rest wait, and no incident ever waits for them."""
    election: Election = field(default_factory=Election)
    """Leader election: only the leader of several replicas acts."""
