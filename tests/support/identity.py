"""Acting as distinct people in e2e tests: the admin impersonates them (``--as``).

The test bed's admin (O=system:masters) may impersonate anyone, so a request made with
``--as=alice --as-group=sre-leads`` reaches authorization and admission exactly as one of
alice's own would: RBAC sees alice, the admission policies see ``request.userInfo``
alice. `grant` gives such a user a ClusterRole in one namespace.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from .kube import Cluster

__all__ = [
    "Refused",
    "accepted_as",
    "approve_as",
    "as_user",
    "create_as",
    "created_as",
    "dry_run_as",
    "grant",
    "grant_rules",
]


class Refused(AssertionError):
    """kubectl as a user exited non-zero; `message` is what the API server said."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def as_user(
    kube: Cluster, user: str, *args: str, groups: tuple[str, ...] = (), stdin: str | None = None
) -> str:
    """kubectl as `user` (and `groups`); its stdout, or `Refused` with its stderr."""
    argv = [kube.kubectl, f"--kubeconfig={kube.kubeconfig}", f"--as={user}"]
    argv += [f"--as-group={g}" for g in groups]
    done = subprocess.run(
        [*argv, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise Refused(done.stderr.strip())
    return done.stdout


def create_as(
    kube: Cluster, user: str, obj: dict[str, Any], groups: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Create `obj` as `user`; the object as stored (after admission), or `Refused`."""
    out = as_user(
        kube, user, "create", "-o", "json", "-f", "-", groups=groups, stdin=json.dumps(obj)
    )
    stored: dict[str, Any] = json.loads(out)
    return stored


def grant(kube: Cluster, namespace: str, role: str, *users: str) -> None:
    """A RoleBinding of ClusterRole `role` to `users` in `namespace` (idempotent)."""
    name = f"{role}-{'-'.join(users)}"[:63].rstrip("-")
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users
        ],
    }
    subprocess.run(
        [kube.kubectl, f"--kubeconfig={kube.kubeconfig}", "apply", "-f", "-"],
        input=json.dumps(binding),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def approve_as(
    kube: Cluster,
    namespace: str,
    name: str,
    user: str,
    *,
    approver: str | None = None,
    groups: tuple[str, ...] = (),
    comment: str | None = None,
) -> dict[str, Any]:
    """What an approver runs: add an approval (in their own name unless `approver` says
    otherwise) to the MaintenanceWindow; the window as stored, or `Refused`."""
    value: dict[str, Any] = {"approver": approver or user}
    if comment:
        value["comment"] = comment
    patch = json.dumps([{"op": "add", "path": "/spec/approvals/-", "value": value}])
    out = as_user(
        kube,
        user,
        "patch",
        "-n",
        namespace,
        "maintenancewindow",
        name,
        "--type=json",
        "-p",
        patch,
        "-o",
        "json",
        groups=groups,
    )
    stored: dict[str, Any] = json.loads(out)
    return stored


def created_as(kube: Cluster, user: str, obj: dict[str, Any]) -> bool:
    """Whether `user` could create `obj` (it is created when they could)."""
    try:
        create_as(kube, user, obj)
    except Refused:
        return False
    return True


def dry_run_as(kube: Cluster, user: str, obj: dict[str, Any]) -> None:
    """Create `obj` as `user` with a server-side dry run: admitted, or `Refused`."""
    as_user(kube, user, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(obj))


def accepted_as(kube: Cluster, user: str, obj: dict[str, Any]) -> bool:
    """Whether the API server would admit `obj` from `user` (nothing is created)."""
    try:
        dry_run_as(kube, user, obj)
    except Refused:
        return False
    return True


def grant_rules(
    kube: Cluster, namespace: str, name: str, user: str, rules: list[dict[str, Any]]
) -> None:
    """A Role `name` with `rules` in `namespace`, bound to `user` (RoleBinding `name`)."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(kube.api)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
