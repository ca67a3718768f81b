"""The coordination.k8s.io/v1 Lease that elects the leader: read, create, replace.

It has a client of its own, never fenced (adapters.kube's fence would stop a leader
from renewing the very Lease that lets it act), and short request timeouts: a renewal
that hangs must not outlive the renew deadline. A replace carries the resourceVersion
read, so of two processes that read the same Lease only one can write it (`Conflict`).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from .kube import NotFound, _call, api_client

__all__ = ["LeaseStore"]

Obj = dict[str, Any]


class LeaseStore:
    """One Lease, by namespace and name."""

    def __init__(
        self, namespace: str, name: str, *, timeout: float, user_agent: str | None = None
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.timeout = timeout
        self.api = client.CoordinationV1Api(api_client(counted=False, user_agent=user_agent))

    def get(self) -> tuple[Obj, str] | None:
        """The Lease's spec and its resourceVersion, or None when there is no Lease."""
        try:
            lease = _call(
                self.api.read_namespaced_lease,
                self.name,
                self.namespace,
                _request_timeout=self.timeout,
            )
        except NotFound:
            return None
        return dict(lease.get("spec") or {}), str(lease["metadata"]["resourceVersion"])

    def create(self, spec: Obj) -> None:
        """adapters.kube.Conflict (409 AlreadyExists) when someone created it first."""
        body: Obj = {"metadata": {"name": self.name, "namespace": self.namespace}}
        body["spec"] = spec
        _call(self.api.create_namespaced_lease, self.namespace, body, _request_timeout=self.timeout)

    def replace(self, spec: Obj, resource_version: str) -> None:
        """Conflict when it changed since it was read at `resource_version`."""
        body = {
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": resource_version,
            },
            "spec": spec,
        }
        _call(
            self.api.replace_namespaced_lease,
            self.name,
            self.namespace,
            body,
            _request_timeout=self.timeout,
        )
