"""A spec the operator cannot use is described field by field, in words, without links."""

from __future__ import annotations

import pytest

from runbook_operator.core.spec import InvalidSpec, parse
from runbook_operator.kinds.emergencyscale.api import EmergencyScaleSpec


def test_each_field_and_reason_and_no_link() -> None:
    with pytest.raises(InvalidSpec) as raised:
        parse(
            EmergencyScaleSpec,
            {"targets": [{"name": "web", "replicas": 5000}], "duration": "0.0000001s"},
        )
    message = str(raised.value)
    assert "spec.targets[0].replicas: Input should be less than or equal to 1000" in message
    assert "spec.duration: '0.0000001s' is shorter than 1s; give at least 1s" in message
    assert "pydantic" not in message and "http" not in message
    assert "Value error" not in message
