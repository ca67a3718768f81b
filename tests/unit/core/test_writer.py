"""The one status writer: optimistic, synchronous, only what changed, nested keys too."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from runbook_operator.adapters.kube import Conflict
from runbook_operator.core.names import FINALIZER
from runbook_operator.core.writer import Stale, StatusWriter, comparable, merge_patch, merged
from runbook_operator.kinds.emergencyscale.api import EMERGENCY_SCALE, EmergencyScaleStatus
from support.fake_kube import FakeKube, merge

PLURAL = EMERGENCY_SCALE.plural


def test_merge_patch_removes_nested_keys() -> None:
    """Only the top level used to be compared, so a nested key never left the status."""
    old = {"phase": "Running", "verification": {"method": "restore", "tocEntries": 12}}
    new = {"phase": "Running", "verification": {"method": "readable"}}
    diff = merge_patch(old, new)
    assert diff == {"verification": {"method": "readable", "tocEntries": None}}
    merged = dict(old)
    merge(merged, diff)
    assert merged == new


def test_merge_patch_replaces_lists_whole_and_is_empty_without_change() -> None:
    old = {"targets": [{"name": "a"}, {"name": "b"}], "gate": {"value": 1.0}}
    assert merge_patch(old, old) == {}
    assert merge_patch(old, {**old, "targets": [{"name": "a"}]}) == {"targets": [{"name": "a"}]}
    assert merge_patch(old, {"targets": old["targets"]}) == {"gate": None}


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_custom(PLURAL, {"metadata": {"name": "es"}, "spec": {}, "status": {"phase": "Pending"}})
    return k


def test_a_write_carries_the_resource_version_it_read_and_refreshes_it(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    before = writer.obj["metadata"]["resourceVersion"]
    assert writer.write(EmergencyScaleStatus(phase="Active"))
    assert writer.obj["metadata"]["resourceVersion"] != before
    assert writer.write(EmergencyScaleStatus(phase="Reverting"))  # the new version: no conflict
    assert kube.obj(PLURAL, "es")["status"]["phase"] == "Reverting"


def test_nothing_to_write_sends_nothing(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    assert not writer.write(EmergencyScaleStatus(phase="Pending"))
    assert kube.calls == []


def test_a_stale_read_is_refused_instead_of_overwriting(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    kube.patch_custom(PLURAL, "shop", "es", {"spec": {"reason": "edited meanwhile"}})
    with pytest.raises(Stale) as raised:
        writer.write(EmergencyScaleStatus(phase="Active"))
    assert isinstance(raised.value.__cause__, Conflict)
    assert kube.obj(PLURAL, "es")["status"]["phase"] == "Pending"


def test_finalizer_added_once_and_removed(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    writer.ensure_finalizer()
    writer.ensure_finalizer()
    assert kube.obj(PLURAL, "es")["metadata"]["finalizers"] == [FINALIZER]
    writer.remove_finalizer()
    assert not kube.obj(PLURAL, "es")["metadata"].get("finalizers")


def test_a_finalizer_sent_beside_is_on_when_the_next_status_write_returns(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    writer.add_finalizer_beside()
    writer.add_finalizer_beside()  # one patch in flight is enough
    assert writer.write(EmergencyScaleStatus(phase="Active"))  # answered in either order
    stored = kube.obj(PLURAL, "es")
    assert stored["metadata"]["finalizers"] == [FINALIZER]
    assert stored["status"]["phase"] == "Active"
    assert writer.has_finalizer() and writer.obj["status"]["phase"] == "Active"
    assert writer.obj["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    assert sorted(kube.calls) == [("patch", PLURAL, "es"), ("patch-status", PLURAL, "es")]


def test_the_status_goes_out_while_the_finalizer_is_on_its_way(kube: FakeKube) -> None:
    """The two writes are sent together: the status does not wait for the finalizer's
    answer, but the write returns only once the finalizer is on (the change comes after)."""
    release = threading.Event()

    def finalizing(call: tuple[str, ...]) -> None:
        if call[0] == "patch":
            release.wait(10)  # the finalizer's answer is held back

    kube.before_write = finalizing
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    answered: list[object] = []
    writer.on_write = lambda obj: answered.append(obj["metadata"].get("finalizers"))
    writer.add_finalizer_beside()
    writing = threading.Thread(target=writer.write, args=(EmergencyScaleStatus(phase="Active"),))
    writing.start()
    deadline = time.monotonic() + 10
    while kube.obj(PLURAL, "es").get("status", {}).get("phase") != "Active":
        assert time.monotonic() < deadline, "the status waited for the finalizer"
        time.sleep(0.01)
    assert not kube.obj(PLURAL, "es")["metadata"].get("finalizers")
    writing.join(0.2)
    assert writing.is_alive()  # not returned: the finalizer is not on yet
    release.set()
    writing.join(10)
    assert not writing.is_alive()
    assert answered == [None, [FINALIZER]]  # each answer told, the status's first
    assert writer.has_finalizer() and writer.obj["status"]["phase"] == "Active"


@pytest.mark.parametrize(
    "meanwhile",
    [
        {"spec": {"reason": "edited meanwhile"}},
        {"metadata": {"annotations": {"ops.mailscore.com/release": "now"}}},
        {"metadata": {"labels": {"team": "mail"}}},
    ],
    ids=["spec", "annotations", "labels"],
)
def test_what_the_pass_decided_on_changed_so_neither_write_lands(
    kube: FakeKube, meanwhile: dict[str, object]
) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    kube.patch_custom(PLURAL, "shop", "es", meanwhile)
    writer.add_finalizer_beside()
    with pytest.raises(Stale) as raised:
        writer.write(EmergencyScaleStatus(phase="Active"))
    assert isinstance(raised.value.__cause__, Conflict)
    assert kube.obj(PLURAL, "es")["status"]["phase"] == "Pending"
    assert not kube.obj(PLURAL, "es")["metadata"].get("finalizers")
    writer.settle()  # nothing is left in flight


def test_a_status_someone_else_wrote_meanwhile_refuses_ours_and_the_finalizer_is_still_awaited(
    kube: FakeKube,
) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    kube.patch_custom_status(PLURAL, "shop", "es", {"status": {"phase": "Failed"}})
    writer.add_finalizer_beside()
    with pytest.raises(Stale):
        writer.write(EmergencyScaleStatus(phase="Active"))
    assert kube.obj(PLURAL, "es")["status"]["phase"] == "Failed"  # theirs stands
    assert kube.obj(PLURAL, "es")["metadata"]["finalizers"] == [FINALIZER]  # ours is on
    assert writer.has_finalizer()  # and the pass knows: no patch is left in flight


def test_a_later_write_of_the_pass_carries_the_resource_version_of_both(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    writer.add_finalizer_beside()
    assert writer.write(EmergencyScaleStatus(phase="Active"))
    assert writer.write(EmergencyScaleStatus(phase="Reverting"))  # no conflict with either
    assert kube.obj(PLURAL, "es")["status"]["phase"] == "Reverting"


def test_a_finalizer_sent_beside_an_object_deleted_meanwhile_makes_the_pass_stale(
    kube: FakeKube,
) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    kube.store.pop((PLURAL, "shop", "es"))
    writer.add_finalizer_beside()
    with pytest.raises(Stale):
        writer.settle()
    writer.settle()  # told once; nothing is pending any more


def test_a_default_the_server_never_stored_is_written() -> None:
    """`rolledBack: false` parsed back from an empty status equals the new one, so a diff of
    parsed copies never sent it: the status in the API server lacked the field for good."""
    from runbook_operator.kinds.imageupdate.api import IMAGE_UPDATE, ImageUpdateStatus

    kube = FakeKube()
    kube.add_custom(IMAGE_UPDATE.plural, {"metadata": {"name": "iu"}, "spec": {}})
    writer = StatusWriter(kube, IMAGE_UPDATE, kube.get_custom(IMAGE_UPDATE.plural, "shop", "iu"))
    assert writer.write(ImageUpdateStatus(phase="Updating"))
    stored = kube.obj(IMAGE_UPDATE.plural, "iu")["status"]
    assert stored["rolledBack"] is False and stored["phase"] == "Updating"
    assert "previous" not in stored and "conditions" not in stored  # empty lists say nothing
    assert not writer.write(ImageUpdateStatus(phase="Updating"))  # and nothing is sent again


def test_staged_fields_ride_on_the_next_status_write(kube: FakeKube) -> None:
    """Who asked costs no round trip of its own: it goes out with the first write."""
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    writer.stage({"requestedBy": {"user": "rita"}})
    assert kube.calls == []
    assert writer.write(EmergencyScaleStatus(phase="Active"))
    assert len(kube.calls) == 1
    status = kube.obj(PLURAL, "es")["status"]
    assert (status["phase"], status["requestedBy"]) == ("Active", {"user": "rita"})
    assert not writer.flush()  # gone out already
    assert len(kube.calls) == 1


def test_staged_fields_are_written_at_the_end_when_no_write_came(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    writer.stage({"requestedBy": {"user": "rita"}})
    assert not writer.write(EmergencyScaleStatus(phase="Pending"))  # nothing of its own
    assert writer.flush()
    assert kube.obj(PLURAL, "es")["status"]["requestedBy"] == {"user": "rita"}
    writer.stage({"requestedBy": {"user": "rita"}})  # stored already: nothing staged
    assert not writer.flush()


@pytest.mark.parametrize(
    ("value", "alike"),
    [
        ({"a": "plain text: (x) [y] {z} 'q' \"dq\" \\ / ~ # % $ @ ! = + ; ,"}, True),
        ({"kubectl.kubernetes.io/last-applied-configuration": '{"spec":{}}\n'}, True),
        (["uid-1", 3, None, True, {"team": "mail"}], True),
        ("P1 -> web", False),  # > is sent as \u003e by the API server, as is < ...
        ("a & b", False),  # ... and &
        ("caf\u00e9", False),  # non-ASCII: UTF-8 there, \u00e9 here
        ("\u2014", False),
        ("del\x7f", False),
        ({"gate": 0.5}, False),  # a float may be written otherwise (1e-07, 1e-7)
        ({"a <b>": "x"}, False),  # keys too
    ],
)
def test_only_values_both_sides_encode_alike_are_tested(value: object, alike: bool) -> None:
    assert comparable(value) is alike


def test_an_annotation_a_test_cannot_compare_keeps_the_writes_in_a_row(kube: FakeKube) -> None:
    """Sent, such a `test` would fail on an unchanged object: the finalizer carries the
    resourceVersion instead, and the status waits for its answer, as a pass did before."""
    kube.patch_custom(PLURAL, "shop", "es", {"metadata": {"annotations": {"why": "P1 -> web"}}})
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    guarded: list[str] = []
    json_patch = kube.json_patch_custom

    def spy(*args: Any, **kwargs: Any) -> dict[str, Any]:
        guarded.append(args[2])
        return json_patch(*args, **kwargs)

    kube.json_patch_custom = spy  # type: ignore[method-assign]
    seen: list[object] = []
    kube.before_status = lambda name, patch: seen.append(
        kube.obj(PLURAL, "es")["metadata"].get("finalizers")
    )
    writer.add_finalizer_beside()
    assert writer.write(EmergencyScaleStatus(phase="Active"))
    assert guarded == []
    assert seen == [[FINALIZER]]  # on before the status went out
    assert writer.has_finalizer() and kube.obj(PLURAL, "es")["status"]["phase"] == "Active"


def test_a_status_a_test_cannot_compare_waits_for_the_finalizer(kube: FakeKube) -> None:
    kube.patch_custom_status(PLURAL, "shop", "es", {"status": {"reason": "caf\u00e9"}})
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    seen: list[object] = []
    kube.before_status = lambda name, patch: seen.append(
        kube.obj(PLURAL, "es")["metadata"].get("finalizers")
    )
    writer.add_finalizer_beside()
    assert writer.write(EmergencyScaleStatus(phase="Active"))
    assert seen == [[FINALIZER]]


def test_merged_applies_a_merge_patch_as_the_api_server_does() -> None:
    old = {"phase": "Pending", "gate": {"value": 1, "since": "t0"}, "targets": [{"name": "a"}]}
    patch = {"gate": {"since": None, "by": "alice"}, "targets": [{"name": "b"}], "phase": None}
    assert merged(old, patch) == {"gate": {"value": 1, "by": "alice"}, "targets": [{"name": "b"}]}
    assert old["phase"] == "Pending"  # not changed in place
    new = {"phase": "Active", "gate": {"value": 2}}
    assert merged(old, merge_patch(old, new)) == new  # the diff the writer sends, applied
    assert merged(None, {"phase": "Active"}) == {"phase": "Active"}
