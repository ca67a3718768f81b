"""ImageUpdate's glue on the core, against the one FakeKube (e2e uses the real API).

What the logic cannot see: the order of the I/O (the hold, then the recorded images,
then the patch), a second pass that changes nothing, a status write lost to a
conflict, and the hold released before the terminal status is written.
"""

from __future__ import annotations

from typing import Any

import pytest

from runbook_operator.adapters.kube import Conflict
from runbook_operator.core.names import FINALIZER, HOLD_ANNOTATION
from runbook_operator.kinds.imageupdate.handlers import ImageUpdateKind
from runbook_operator.settings import Settings
from support.fake_kube import FakeKube
from support.passes import Harness

NAME = "security-patch"
PLURAL = "imageupdates"
ME = "ImageUpdate/security-patch"


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_deployment("mail-score-backend", 2, image="backend:1.4.2")
    return k


def harness(kube: FakeKube) -> Harness:
    return Harness(ImageUpdateKind(http_status=lambda url: 200), kube, Settings(tick_seconds=2))


def create(kube: FakeKube, **extra: Any) -> None:
    spec = {
        "deployment": "mail-score-backend",
        "images": [{"container": "c", "image": "backend:1.4.3"}],
        **extra,
    }
    kube.add_custom(
        PLURAL,
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "ImageUpdate",
            "metadata": {"name": NAME},
            "spec": spec,
        },
    )


def image_of(kube: FakeKube) -> str:
    return str(
        kube.obj("Deployment", "mail-score-backend")["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
    )


def writes(kube: FakeKube) -> list[tuple[str, ...]]:
    return [c for c in kube.calls if c[0] in ("patch", "patch-status", "json-patch")]


def test_hold_then_recorded_images_then_the_change(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube)
    finalized: list[bool] = []
    kube.before_status = lambda name, patch: finalized.append(
        FINALIZER in (kube.obj(PLURAL, NAME)["metadata"].get("finalizers") or [])
    )
    h.run(NAME)
    done = writes(kube)
    assert sorted(done[:2]) == [  # side by side
        ("patch", "Deployment", "mail-score-backend"),  # the hold
        ("patch", PLURAL, NAME),  # our finalizer
    ]
    assert done[2:4] == [
        ("patch-status", PLURAL, NAME),  # Updating, the images it replaces recorded ...
        ("patch", "Deployment", "mail-score-backend"),  # ... before kubectl set image's patch
    ]
    assert finalized and all(finalized)  # on before the first status, so before any change
    status = h.status(NAME)
    assert status.phase == "Completed" and status.new_revision == 2
    assert [(p.container, p.image) for p in status.previous] == [("c", "backend:1.4.2")]
    assert image_of(kube) == "backend:1.4.3"
    assert kube.template_changes["mail-score-backend"] == 1
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "mail-score-backend")


def test_a_second_pass_changes_nothing(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube)
    h.run(NAME)
    kube.calls.clear()
    h.run(NAME)
    assert writes(kube) == []
    assert kube.template_changes["mail-score-backend"] == 1


def test_a_lost_status_write_never_sets_the_images_before_it_is_recorded(
    kube: FakeKube,
) -> None:
    h = harness(kube)
    create(kube)
    lost: list[dict[str, Any]] = []

    def conflict_once(name: str, patch: dict[str, Any]) -> None:
        if "previous" in (patch.get("status") or {}) and not lost:
            lost.append(patch)
            raise Conflict("the object has been modified")

    kube.before_status = conflict_once
    h.run(NAME)
    assert lost, "the first record was lost"
    h.run(NAME)
    assert h.status(NAME).phase == "Completed"
    assert kube.template_changes["mail-score-backend"] == 1


def test_the_hold_is_gone_when_the_status_says_completed(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube)
    seen: list[tuple[str, str | None]] = []

    def record(name: str, patch: dict[str, Any]) -> None:
        phase = (patch.get("status") or {}).get("phase")
        if phase is not None:
            held = kube.annotations("Deployment", "mail-score-backend").get(HOLD_ANNOTATION)
            seen.append((phase, held))

    kube.before_status = record
    h.run(NAME)
    assert seen[0] == ("Updating", f"{ME}/{h.obj(NAME)['metadata']['uid']}")
    assert seen[-1] == ("Completed", None)


def test_deleted_before_its_finalizer_is_on_it_leaves_no_hold(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube)

    def deleted(call: tuple[str, ...]) -> None:
        if call == ("patch", PLURAL, NAME):
            kube.store.pop((PLURAL, "shop", NAME))

    kube.before_write = deleted
    h.run(NAME)
    assert ("patch", "Deployment", "mail-score-backend") in kube.calls  # it took the hold
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "mail-score-backend")
    assert image_of(kube) == "backend:1.4.2"
