"""The one status writer: optimistic, synchronous, only what changed, nested keys too."""

from __future__ import annotations

import pytest

from runbook_operator.adapters.kube import Conflict
from runbook_operator.core.names import FINALIZER
from runbook_operator.core.writer import Stale, StatusWriter, merge_patch
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


def test_a_finalizer_sent_beside_is_on_before_the_next_status_write(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    seen: list[object] = []
    kube.before_status = lambda name, patch: seen.append(
        kube.obj(PLURAL, "es")["metadata"].get("finalizers")
    )
    writer.add_finalizer_beside()
    writer.add_finalizer_beside()  # one patch in flight is enough
    assert writer.write(EmergencyScaleStatus(phase="Active"))  # its version: no conflict
    assert seen == [[FINALIZER]]
    assert writer.has_finalizer()
    assert kube.calls == [("patch", PLURAL, "es"), ("patch-status", PLURAL, "es")]


def test_a_finalizer_sent_beside_that_lost_a_race_makes_the_pass_stale(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    kube.patch_custom(PLURAL, "shop", "es", {"spec": {"reason": "edited meanwhile"}})
    writer.add_finalizer_beside()
    with pytest.raises(Stale):
        writer.write(EmergencyScaleStatus(phase="Active"))
    assert kube.obj(PLURAL, "es")["status"]["phase"] == "Pending"
    assert not kube.obj(PLURAL, "es")["metadata"].get("finalizers")


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


def test_what_tells_the_staged_fields_comes_when_the_pass_ends_after_their_write(
    kube: FakeKube,
) -> None:
    """The Requested event: told when the pass ends, the write waits for no post of it."""
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    told: list[dict[str, object]] = []
    writer.stage(
        {"requestedBy": {"user": "rita"}},
        then=lambda: told.append(kube.obj(PLURAL, "es")["status"]),
    )
    assert told == []
    assert writer.write(EmergencyScaleStatus(phase="Active"))
    assert writer.write(EmergencyScaleStatus(phase="Reverting"))
    assert told == []  # nothing shares the API server with the writes and the change
    writer.ended()
    assert [t.get("requestedBy") for t in told] == [{"user": "rita"}]
    writer.ended()
    assert len(told) == 1  # once


def test_staged_fields_refused_as_stale_tell_nothing(kube: FakeKube) -> None:
    writer = StatusWriter(kube, EMERGENCY_SCALE, kube.get_custom(PLURAL, "shop", "es"))
    told: list[str] = []
    writer.stage({"requestedBy": {"user": "rita"}}, then=lambda: told.append("Requested"))
    kube.patch_custom(PLURAL, "shop", "es", {"spec": {"reason": "edited meanwhile"}})
    with pytest.raises(Stale):
        writer.write(EmergencyScaleStatus(phase="Active"))
    writer.ended()
    assert told == []  # the pass decided again stages, and tells, again
