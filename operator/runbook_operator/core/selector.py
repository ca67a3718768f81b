"""A Kubernetes label selector (metav1.LabelSelector): the model, matching, and words.

Cluster-wide policies choose the namespaces they govern by their labels, exactly as a
NetworkPolicy or a webhook's namespaceSelector does, so a person who knows one knows
this one. Semantics are the API server's: every matchLabels pair and every expression
must hold; `NotIn` and `DoesNotExist` hold for a label that is absent; an empty
selector selects everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .model import ApiModel, cel

__all__ = ["LabelSelector", "Operator", "Requirement", "describe", "matches"]

LabelKey = Annotated[str, Field(min_length=1, max_length=317)]
LabelValue = Annotated[str, Field(max_length=63)]


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class Requirement(ApiModel):
    """One matchExpressions entry: a label key, an operator, and values."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "self.operator in ['In', 'NotIn'] ? "
                    "(has(self.values) && size(self.values) > 0) "
                    ": (!has(self.values) || size(self.values) == 0)",
                    "In and NotIn need values; Exists and DoesNotExist take none",
                )
            ]
        }
    }

    key: LabelKey
    """The label's key, e.g. tier."""
    operator: Operator
    """In, NotIn, Exists or DoesNotExist."""
    values: Annotated[list[LabelValue], Field(max_length=50)] = Field(default_factory=list)
    """The values for In and NotIn (none for Exists and DoesNotExist)."""


class LabelSelector(ApiModel):
    """Which objects, by their labels: all of matchLabels and all of matchExpressions must
    hold. Empty selects everything."""

    match_labels: dict[str, LabelValue] = Field(default_factory=dict)
    """Labels that must be present with exactly these values, e.g. tier: production."""
    match_expressions: Annotated[list[Requirement], Field(max_length=20)] = Field(
        default_factory=list
    )
    """Further requirements on labels (In, NotIn, Exists, DoesNotExist)."""


def _holds(r: Requirement, labels: Mapping[str, str]) -> bool:
    present = r.key in labels
    if r.operator == Operator.IN:
        return present and labels[r.key] in r.values
    if r.operator == Operator.NOT_IN:
        return not present or labels[r.key] not in r.values
    if r.operator == Operator.EXISTS:
        return present
    return not present


def matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether an object with these labels is selected."""
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    return all(_holds(r, labels) for r in selector.match_expressions)


def describe(selector: LabelSelector) -> str:
    """The selector in kubectl's `-l` words, e.g. `tier=production,region in (eu, us)`;
    "everything" for an empty one."""
    parts = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    for r in selector.match_expressions:
        if r.operator == Operator.EXISTS:
            parts.append(r.key)
        elif r.operator == Operator.DOES_NOT_EXIST:
            parts.append(f"!{r.key}")
        else:
            word = "in" if r.operator == Operator.IN else "notin"
            parts.append(f"{r.key} {word} ({', '.join(r.values)})")
    return ",".join(parts) or "everything"
