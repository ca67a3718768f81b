"""What the API server's refusals become: a failed `test` of a JSON patch is a conflict."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from runbook_operator.adapters.kube import JSON_PATCH, Conflict, KubeError, _call

UNAPPLIED = {  # as the API server answers a JSON patch whose `test` failed
    "kind": "Status",
    "status": "Failure",
    "message": "the server rejected our request due to an error in our request",
    "reason": "Invalid",
    "details": {},
    "code": 422,
}
INVALID = {  # as it answers a patch that would make the object invalid
    **UNAPPLIED,
    "message": 'EmergencyScale.ops.mailscore.com "p1" is invalid: [status.phase: ...]',
    "details": {"name": "p1", "causes": [{"field": "status.phase", "reason": "FieldValueInvalid"}]},
}


def refused(body: dict[str, Any]) -> Any:
    def call(*_: Any, **__: Any) -> Any:
        error = ApiException(status=422, reason="Unprocessable Entity")
        error.body = json.dumps(body)
        raise error

    return call


def test_a_json_patch_whose_test_failed_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="changed since it was read"):
        _call(refused(UNAPPLIED), _content_type=JSON_PATCH)


def test_an_invalid_object_is_not_a_conflict() -> None:
    with pytest.raises(KubeError, match=r"HTTP 422: .* is invalid") as raised:
        _call(refused(INVALID), _content_type=JSON_PATCH)
    assert not isinstance(raised.value, Conflict)


def test_only_a_json_patch_can_fail_a_test() -> None:
    with pytest.raises(KubeError) as raised:
        _call(refused(UNAPPLIED))
    assert not isinstance(raised.value, Conflict)
