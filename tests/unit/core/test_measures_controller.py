"""The controller's metrics step: through the real controller on the FakeKube."""

from __future__ import annotations

from prometheus_client import REGISTRY

from runbook_operator.adapters.metrics import DOMAIN
from runbook_operator.core import measures
from support.fake_kube import NS, FakeKube
from support.passes import Harness

from .test_notifying import ProbeKind


def sample(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"namespace": NS, "kind": "Probe", **labels})


def test_a_block_counts_once_however_many_passes_and_goes_with_the_object() -> None:
    DOMAIN.declare(measures.METRICS)
    kube = FakeKube()
    harness = Harness(ProbeKind(), kube)
    kube.add_custom(
        "probes", {"metadata": {"name": "m", "namespace": NS}, "spec": {"to": "Blocked"}}
    )
    blocks = ("runbook_policy_block_total", {"name": "m", "rule": "Blocked"})
    for _ in range(3):  # the first pass writes Blocked; the others write nothing
        harness.run("m")
        assert sample(blocks[0], **blocks[1]) == 1.0
    assert sample("runbook_operation_phase", name="m", phase="Blocked") == 1.0
    kube.store[("probes", NS, "m")]["spec"]["to"] = "Completed"
    harness.run("m")
    assert sample("runbook_operation_phase", name="m", phase="Completed") == 1.0
    assert sample("runbook_operation_phase", name="m", phase="Blocked") is None  # left
    assert sample(blocks[0], **blocks[1]) == 1.0
    harness.controller.forget((NS, "m"))
    assert sample(blocks[0], **blocks[1]) is None
    assert sample("runbook_operation_phase", name="m", phase="Completed") is None


def test_a_deletion_seen_while_a_pass_runs_leaves_no_series_behind() -> None:
    """The watch's DELETED can come while the pass that let the object go still runs; what
    that pass then keeps or measures must not bring the object's series back."""
    DOMAIN.declare(measures.METRICS)
    kube = FakeKube()
    harness = Harness(ProbeKind(), kube)
    kube.add_custom(
        "probes", {"metadata": {"name": "d", "namespace": NS}, "spec": {"to": "Completed"}}
    )
    deleted: list[str] = []

    def delete_during_the_status_write(call: tuple[str, ...]) -> None:
        if call[0] == "patch-status" and not deleted:
            obj = kube.store[("probes", NS, "d")]
            gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1000"}}
            deleted.append("d")
            harness.controller.observe("DELETED", gone)

    kube.before_write = delete_during_the_status_write
    harness.run("d")
    assert deleted == ["d"]
    assert harness.controller._deleted == {}  # kept only while that pass ran
    assert sample("runbook_operation_phase", name="d", phase="Completed") is None
    known = harness.controller.keys()  # the keys the controller keeps a body for
    assert (NS, "d") not in known
    # A new object of that name is an object like any other.
    harness.controller.observe(
        "ADDED",
        {
            **kube.store[("probes", NS, "d")],
            "metadata": {**kube.store[("probes", NS, "d")]["metadata"], "resourceVersion": "1001"},
        },
    )
    known = harness.controller.keys()
    assert (NS, "d") in known


def test_a_deletion_seen_between_passes_is_not_remembered() -> None:
    """Thousands of short-lived objects (a schedule's children) must not each leave an
    entry behind once deleted."""
    DOMAIN.declare(measures.METRICS)
    kube = FakeKube()
    harness = Harness(ProbeKind(), kube)
    for i in range(50):
        name = f"child-{i}"
        kube.add_custom(
            "probes", {"metadata": {"name": name, "namespace": NS}, "spec": {"to": "Completed"}}
        )
        harness.run(name)
        harness.delete(name)
        harness.run(name)  # the finalizer goes, and with it the object
        harness.run(name)  # the watch's DELETED, no pass running
    assert harness.controller._deleted == {}
    assert harness.controller.keys() == []
