"""The health checks on objects a real e2e run produced, in the real engines.

captured.json holds objects tests/e2e/test_gitops_health.py captured from the test bed
in every phase it reaches (names are `<object>@<state>`), each with the verdict the
README's contract gives it: (kstatus, Argo CD, Flux). Here they are judged again by the
shipped deploy/argocd and deploy/flux files, so a change to a Lua script or a CEL
expression is checked against real objects without a cluster. gitopshealth is built by
tests/testbed/build.sh (cached; about two minutes the first time).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from support.gitopshealth import judge

CAPTURED = json.loads((Path(__file__).parent / "captured.json").read_text())


def test_every_captured_state_is_judged_as_the_contract_says() -> None:
    objects = [c["object"] for c in CAPTURED]
    verdicts = judge(objects)
    wrong = [
        f"{v.name}: {v.triple}, wanted {tuple(c['expected'])}"
        for v, c in zip(verdicts, CAPTURED, strict=True)
        if v.triple != tuple(c["expected"]) or v.errors
    ]
    assert not wrong, "\n".join(wrong)


def test_the_capture_covers_every_kind_and_every_verdict() -> None:
    from runbook_operator.kinds import kinds

    assert {k.resource.kind for k in kinds()} <= {c["object"]["kind"] for c in CAPTURED}
    triples = {tuple(c["expected"]) for c in CAPTURED}
    for wanted in ("Current", "InProgress", "Failed"):
        assert any(t[0] == wanted for t in triples)
    assert {t[1] for t in triples} >= {"Healthy", "Progressing", "Degraded", "Suspended"}


def unobserved(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["generation"] = out["status"]["observedGeneration"] + 1
    return out


@pytest.mark.parametrize("entry", CAPTURED[:3], ids=lambda c: c["object"]["metadata"]["name"])
def test_a_spec_change_not_yet_observed_is_in_progress_everywhere(entry: dict[str, Any]) -> None:
    (v,) = judge([unobserved(entry["object"])])
    assert v.triple == ("InProgress", "Progressing", "InProgress")


def test_an_object_the_operator_has_not_seen_yet() -> None:
    fresh = copy.deepcopy(CAPTURED[0]["object"])
    del fresh["status"]
    (v,) = judge([fresh])
    # kstatus has no condition to read and calls it Current; Argo CD waits; Flux's
    # expressions cannot read a status that is not there, so Flux keeps polling.
    assert (v.kstatus, v.argocd) == ("Current", "Progressing")
    assert v.flux == "Unknown" and any("no such attribute" in e for e in v.errors)
