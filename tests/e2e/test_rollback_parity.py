"""Parity: a Rollback does exactly what `kubectl rollout undo` does.

Twin Deployments with identical histories live in two namespaces under the same
name (so their ReplicaSets get the same names and hashes). One is undone by
kubectl, the other by a Rollback object; after each undo the templates, the
annotations (change-cause included) and the ReplicaSets with their revision
numbers must be equal, and so must `kubectl rollout history`.
"""

from __future__ import annotations

from typing import Any

from support.crs import create_cr, wait_phase
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.rollback_cluster import (
    HOLD,
    create_deployment,
    extra_namespace,
    manifest,
    rollout,
    set_image,
    snapshot,
)

NAME = "mail-score-backend"
VERSIONS = ["1.4.0", "1.4.1", "1.4.2", "1.5.0"]


def version(index: int) -> str:
    """The image of the backend's release VERSIONS[index] (support.images: runnable anywhere)."""
    return image(f"{NAME}-{VERSIONS[index]}")


def _history(kube: Cluster, namespace: str) -> None:
    create_deployment(kube, namespace, manifest(NAME, version(0), replicas=3))
    set_image(kube, namespace, NAME, version(1), cause="deploy 1.4.1 (CHG-101)")
    set_image(kube, namespace, NAME, version(2))
    set_image(kube, namespace, NAME, version(3), cause="deploy 1.5.0 (CHG-117)")


def _undo_both(
    kube: Cluster, by_kubectl: str, by_operator: str, step: str, to_revision: int | None
) -> dict[str, Any]:
    args = ["-n", by_kubectl, "rollout", "undo", f"deployment/{NAME}"]
    if to_revision is not None:
        args.append(f"--to-revision={to_revision}")
    kube.run_kubectl(*args)
    target: dict[str, Any] = {"name": NAME}
    if to_revision is not None:
        target["toRevision"] = to_revision
    create_cr(kube.api, by_operator, "Rollback", step, {"targets": [target]})
    rollout(kube, by_kubectl, NAME)
    done = wait_phase(kube.api, by_operator, "Rollback", step, "Completed", timeout=90)
    rollout(kube, by_operator, NAME)
    return done


def _history_table(kube: Cluster, namespace: str) -> str:
    return kube.run_kubectl("-n", namespace, "rollout", "history", f"deployment/{NAME}").stdout


def test_rollbacks_match_kubectl_rollout_undo(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    with extra_namespace(kube, operator.prefix, "twin") as twin:
        _history(kube, namespace)
        _history(kube, twin)
        assert snapshot(kube, namespace, NAME) == snapshot(kube, twin, NAME)

        steps = [
            ("undo-previous", None, 3, version(2)),  # 4 -> the template of 3
            ("undo-the-undo", None, 4, version(3)),  # previous is now the undone 4
            ("undo-to-2", 2, 2, version(1)),  # a named revision, with its change-cause
            ("undo-to-1", 1, 1, version(0)),
        ]
        for step, to_revision, expected_revision, image in steps:
            done = _undo_both(kube, namespace, twin, step, to_revision)
            ours, theirs = snapshot(kube, twin, NAME), snapshot(kube, namespace, NAME)
            assert ours == theirs, step
            assert ours["template"]["spec"]["containers"][0]["image"] == image
            assert HOLD not in ours["annotations"]
            assert all(HOLD not in rs["annotations"] for rs in ours["replica_sets"])
            assert _history_table(kube, twin) == _history_table(kube, namespace)
            target = done["status"]["targets"][0]
            assert target["toRevision"] == expected_revision, step
            assert target["toImages"] == [f"app={image}"]
            assert target["state"] == "Complete"

        # revision 2 carried a change-cause: kubectl copies it back, and so do we
        assert ours["annotations"].get("kubernetes.io/change-cause") is None  # revision 1 had none
        table = _history_table(kube, twin)
        assert "deploy 1.4.1 (CHG-101)" in table
        assert "deploy 1.5.0 (CHG-117)" in table


def test_change_cause_comes_back_with_the_revision(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    with extra_namespace(kube, operator.prefix, "twin") as twin:
        for ns in (namespace, twin):
            create_deployment(kube, ns, manifest(NAME, version(0), replicas=2))
            set_image(kube, ns, NAME, version(1), cause="deploy 1.4.1 (CHG-101)")
            set_image(kube, ns, NAME, version(2), cause="deploy 1.4.2 (CHG-109)")
        _undo_both(kube, namespace, twin, "undo", None)
        ours, theirs = snapshot(kube, twin, NAME), snapshot(kube, namespace, NAME)
        assert ours == theirs
        assert ours["annotations"]["kubernetes.io/change-cause"] == "deploy 1.4.1 (CHG-101)"
