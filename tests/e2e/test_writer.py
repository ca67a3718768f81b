"""The status writer against the API server itself: a new operation's first status write
and our finalizer go out together, guarded by JSON patch `test`s (core.writer).

The writer runs here, in the test, with the operator's own credentials, on EmergencyScales
in a namespace no operator serves: what lands is what the API server made of our patches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from runbook_operator.adapters.kube import Conflict, Kube, api_client
from runbook_operator.core.names import FINALIZER
from runbook_operator.core.writer import Stale, StatusWriter, comparable
from runbook_operator.kinds.emergencyscale.api import EMERGENCY_SCALE, EmergencyScaleStatus
from support.crs import create_cr, get_cr, patch_cr
from support.kube import Cluster, create_namespace, delete_namespace, unique_name

KIND = "EmergencyScale"
PLURAL = EMERGENCY_SCALE.plural
SPEC = {"targets": [{"name": "web", "replicas": 4}], "duration": "1h"}
Obj = dict[str, Any]


@pytest.fixture
def space(kube: Cluster, deploy_installed: None) -> Iterator[str]:
    """A namespace no operator serves (their prefixes differ), emptied of our finalizers."""
    name = create_namespace(kube.api_client, unique_name("writer", prefix="rbwriter"))
    try:
        yield name
    finally:
        custom = client.CustomObjectsApi(kube.api_client)
        for obj in custom.list_namespaced_custom_object(
            "ops.mailscore.com", "v1alpha1", name, PLURAL
        )["items"]:
            patch_cr(
                kube.api, name, KIND, obj["metadata"]["name"], {"metadata": {"finalizers": []}}
            )
        delete_namespace(kube.api_client, name)


class Spied(Kube):
    """The real adapter, noting which of our objects got a guarded JSON patch."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.guarded: list[tuple[str, bool]] = []

    def json_patch_custom(
        self, plural: str, namespace: str, name: str, operations: list[Obj], *, status: bool
    ) -> Obj:
        self.guarded.append((name, status))
        return super().json_patch_custom(plural, namespace, name, operations, status=status)


@pytest.fixture
def kube_as_operator(operator_credentials: Path) -> Iterator[Spied]:
    """The operator's own client: its ServiceAccount, bound by deploy/'s RBAC."""
    api = api_client(str(operator_credentials))
    try:
        yield Spied(api)
    finally:
        api.close()


def writer_of(kube: Kube, cluster: Cluster, namespace: str, name: str) -> StatusWriter:
    return StatusWriter(kube, EMERGENCY_SCALE, get_cr(cluster.api, namespace, KIND, name))


def test_the_first_status_and_the_finalizer_land_together(
    kube: Cluster, kube_as_operator: Spied, space: str
) -> None:
    create_cr(kube.api, space, KIND, "es", SPEC, labels={"team": "mail"})
    spied = kube_as_operator
    writer = writer_of(spied, kube, space, "es")
    writer.add_finalizer_beside()
    assert writer.write(EmergencyScaleStatus(phase="Active"))
    assert sorted(spied.guarded) == [("es", False), ("es", True)]  # both tested, not versioned
    stored = get_cr(kube.api, space, KIND, "es")
    assert stored["metadata"]["finalizers"] == [FINALIZER]
    assert stored["status"]["phase"] == "Active"
    assert writer.obj["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    assert writer.write(EmergencyScaleStatus(phase="Reverting"))  # the newest version held
    assert get_cr(kube.api, space, KIND, "es")["status"]["phase"] == "Reverting"


def test_a_spec_edited_meanwhile_lets_neither_write_land(
    kube: Cluster, kube_as_operator: Spied, space: str
) -> None:
    create_cr(kube.api, space, KIND, "es", SPEC)
    writer = writer_of(kube_as_operator, kube, space, "es")
    edited = {"spec": {"targets": [{"name": "web", "replicas": 6}]}}
    patch_cr(kube.api, space, KIND, "es", edited)
    writer.add_finalizer_beside()
    with pytest.raises(Stale) as raised:
        writer.write(EmergencyScaleStatus(phase="Active"))
    assert isinstance(raised.value.__cause__, Conflict)
    stored = get_cr(kube.api, space, KIND, "es")
    assert not stored["metadata"].get("finalizers")
    assert "status" not in stored


def test_a_status_written_meanwhile_stands_and_our_finalizer_is_on(
    kube: Cluster, kube_as_operator: Spied, space: str
) -> None:
    create_cr(kube.api, space, KIND, "es", SPEC)
    writer = writer_of(kube_as_operator, kube, space, "es")
    kube_as_operator.patch_custom_status(PLURAL, space, "es", {"status": {"phase": "Failed"}})
    writer.add_finalizer_beside()
    with pytest.raises(Stale):
        writer.write(EmergencyScaleStatus(phase="Active"))
    stored = get_cr(kube.api, space, KIND, "es")
    assert stored["status"]["phase"] == "Failed"
    assert stored["metadata"]["finalizers"] == [FINALIZER]
    assert writer.has_finalizer()


def test_what_a_test_cannot_compare_is_written_in_a_row_instead(
    kube: Cluster, kube_as_operator: Spied, space: str
) -> None:
    """The API server compares a `test` as it encodes the stored object (<, > and &
    escaped, other characters as UTF-8): such a value fails it even unchanged."""
    noted = {"ops.mailscore.com/why": "P1 -> web answers 502 \u2014 caf\u00e9 & co"}
    create_cr(kube.api, space, KIND, "es", SPEC)
    obj = patch_cr(kube.api, space, KIND, "es", {"metadata": {"annotations": noted}})
    annotations = obj["metadata"]["annotations"]
    assert not comparable(annotations)
    unchanged = [{"op": "test", "path": "/metadata/annotations", "value": annotations}]
    with pytest.raises(Conflict):
        kube_as_operator.json_patch_custom(PLURAL, space, "es", unchanged, status=False)

    spied = kube_as_operator
    spied.guarded.clear()
    writer = writer_of(spied, kube, space, "es")
    writer.add_finalizer_beside()
    assert writer.write(EmergencyScaleStatus(phase="Active"))
    assert spied.guarded == []  # the resourceVersion guarded them, one after the other
    stored = get_cr(kube.api, space, KIND, "es")
    assert stored["metadata"]["finalizers"] == [FINALIZER]
    assert stored["status"]["phase"] == "Active"
