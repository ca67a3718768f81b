"""Which operations a watch event of another object wakes, through the runtime: a
cluster-scoped MaintenancePolicy wakes the windows of every namespace that watch it, a
Namespace the windows in it."""

from __future__ import annotations

from typing import Any

from runbook_operator.core.kind import Result
from runbook_operator.core.runtime import Runtime
from runbook_operator.kinds.maintenancewindow.handlers import MaintenanceWindowKind
from runbook_operator.settings import Settings
from support.fake_kube import FakeKube

MW = "MaintenanceWindow"


class Queue:
    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def enqueue(self, key: tuple[str, str]) -> None:
        self.keys.append(key)


def runtime() -> tuple[Runtime, Queue]:
    rt = Runtime(Settings(), FakeKube(), [MaintenanceWindowKind()])
    queue = Queue()
    rt.controllers[MW] = queue  # type: ignore[assignment]
    kind = rt.kinds[0]
    watching = frozenset({("MaintenancePolicy", "*"), ("Namespace", "shop")})
    rt._after(kind, ("shop", "weekly"), Result(watch=watching))
    rt._after(kind, ("bank", "nightly"), Result(watch=frozenset({("Deployment", "web")})))
    queue.keys.clear()  # the look again for newly watched objects
    return rt, queue


def body(name: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **meta}}


def test_a_cluster_policy_wakes_the_windows_watching_it_in_any_namespace() -> None:
    rt, queue = runtime()
    rt.notify("MaintenancePolicy", body("production-minimums"))
    assert queue.keys == [("shop", "weekly")]


def test_a_namespace_wakes_the_windows_in_it() -> None:
    rt, queue = runtime()
    rt.notify("Namespace", body("shop"))
    rt.notify("Namespace", body("bank"))
    assert queue.keys == [("shop", "weekly")]


def test_namespaced_objects_still_wake_only_their_own_namespace() -> None:
    rt, queue = runtime()
    rt.notify("Deployment", body("web", namespace="bank"))
    rt.notify("Deployment", body("web", namespace="shop"))
    assert queue.keys == [("bank", "nightly")]


def test_a_workload_event_is_kept_before_the_operations_watching_it_are_woken() -> None:
    rt, queue = runtime()
    kept: list[object] = []

    def enqueue(key: tuple[str, str]) -> None:
        kept.append(rt.cache.workload("Deployment", "bank", "web"))
        queue.keys.append(key)

    queue.enqueue = enqueue  # type: ignore[method-assign]
    deployment = body("web", namespace="bank", uid="u1", resourceVersion="9")
    rt.seen("Deployment", "MODIFIED", deployment)
    assert queue.keys == [("bank", "nightly")]
    assert kept == [deployment]  # the woken pass finds the copy that woke it
    rt.seen("Deployment", "DELETED", deployment)
    assert rt.cache.workload("Deployment", "bank", "web") is None
    rt.seen("Namespace", "MODIFIED", body("shop"))  # woken, not kept
    assert len(rt.cache) == 0


def test_a_pass_looks_again_only_if_what_it_starts_watching_changed_while_it_ran() -> None:
    rt = Runtime(Settings(), FakeKube(), [MaintenanceWindowKind()])
    queue = Queue()
    rt.controllers[MW] = queue  # type: ignore[assignment]
    kind = rt.kinds[0]
    watching = Result(watch=frozenset({("Namespace", "shop")}))
    rt._started(kind, ("shop", "weekly"))
    rt._after(kind, ("shop", "weekly"), watching)
    assert queue.keys == []  # nothing it watches changed: no pass for nothing
    rt._started(kind, ("shop", "daily"))
    rt.notify("Namespace", body("shop"))  # while daily's first pass runs
    rt._after(kind, ("shop", "daily"), watching)
    assert queue.keys == [("shop", "weekly"), ("shop", "daily")]
