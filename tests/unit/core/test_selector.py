"""Label selectors with the API server's semantics, and in kubectl's words."""

from __future__ import annotations

from typing import Any

import pytest

from runbook_operator.core.selector import LabelSelector, describe, matches

PROD = {"tier": "production", "region": "eu"}


def sel(**fields: Any) -> LabelSelector:
    return LabelSelector.model_validate(fields)


def test_an_empty_selector_selects_everything() -> None:
    assert matches(sel(), {}) and matches(sel(), PROD)
    assert describe(sel()) == "everything"


def test_match_labels_need_every_pair_exactly() -> None:
    assert matches(sel(matchLabels={"tier": "production"}), PROD)
    assert not matches(sel(matchLabels={"tier": "production"}), {"tier": "staging"})
    assert not matches(sel(matchLabels={"tier": "production"}), {})
    assert not matches(sel(matchLabels={"tier": "production", "region": "us"}), PROD)


@pytest.mark.parametrize(
    ("expression", "labels", "selected"),
    [
        ({"key": "tier", "operator": "In", "values": ["production", "staging"]}, PROD, True),
        ({"key": "tier", "operator": "In", "values": ["staging"]}, PROD, False),
        ({"key": "tier", "operator": "In", "values": ["production"]}, {}, False),
        ({"key": "tier", "operator": "NotIn", "values": ["dev"]}, PROD, True),
        ({"key": "tier", "operator": "NotIn", "values": ["production"]}, PROD, False),
        # As in Kubernetes: NotIn holds for an object without the label.
        ({"key": "tier", "operator": "NotIn", "values": ["production"]}, {}, True),
        ({"key": "tier", "operator": "Exists"}, PROD, True),
        ({"key": "tier", "operator": "Exists"}, {}, False),
        ({"key": "tier", "operator": "DoesNotExist"}, PROD, False),
        ({"key": "tier", "operator": "DoesNotExist"}, {}, True),
    ],
)
def test_expressions(expression: dict[str, Any], labels: dict[str, str], selected: bool) -> None:
    assert matches(sel(matchExpressions=[expression]), labels) is selected


def test_labels_and_expressions_must_all_hold() -> None:
    both = sel(
        matchLabels={"tier": "production"},
        matchExpressions=[{"key": "region", "operator": "In", "values": ["us"]}],
    )
    assert not matches(both, PROD)
    assert matches(both, {**PROD, "region": "us"})


def test_described_as_kubectl_writes_it() -> None:
    text = describe(
        sel(
            matchLabels={"tier": "production", "app": "mail"},
            matchExpressions=[
                {"key": "region", "operator": "In", "values": ["eu", "us"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "team", "operator": "Exists"},
                {"key": "stage", "operator": "NotIn", "values": ["dev"]},
            ],
        )
    )
    assert text == "app=mail,tier=production,region in (eu, us),!legacy,team,stage notin (dev)"
