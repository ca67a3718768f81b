"""The Alertmanager adapter against the real Alertmanager from Debian's package."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runbook_operator.adapters.alertmanager import Alertmanager, AlertmanagerError
from runbook_operator.adapters.urls import redact
from support.alertmanager import Alertmanager as Server
from support.alertmanager import alertmanager  # noqa: F401  (fixture)

MATCHERS = [{"name": "namespace", "value": "shop", "isRegex": False, "isEqual": True}]


def test_create_find_extend_expire(alertmanager: Server) -> None:  # noqa: F811
    am = Alertmanager(alertmanager.url)
    now = datetime.now(UTC)
    first = am.create(MATCHERS, now, now + timedelta(hours=1), "upgrade [mw:uid:1]")
    assert [s["id"] for s in alertmanager.active()] == [first]
    assert [s["id"] for s in am.find("mw:uid:1")] == [first]
    assert am.find("mw:uid:2") == []

    found = am.find("mw:uid:1")[0]
    starts = datetime.fromisoformat(found["startsAt"])
    same = am.create(found["matchers"], starts, now + timedelta(hours=3), found["comment"], first)
    assert same == first
    (only,) = alertmanager.active()
    assert only["endsAt"].startswith((now + timedelta(hours=3)).strftime("%Y-%m-%dT%H"))

    am.expire(first)
    am.expire(first)  # twice is fine
    assert alertmanager.active() == [] and am.find("mw:uid:1") == []
    assert [s["status"]["state"] for s in alertmanager.silences()] == ["expired"]


def test_unreachable_says_so_without_credentials(alertmanager: Server) -> None:  # noqa: F811
    alertmanager.stop()
    am = Alertmanager(f"http://ops:s3cret@127.0.0.1:{alertmanager.port}")
    with pytest.raises(AlertmanagerError, match="cannot be reached") as info:
        am.find("x")
    assert "s3cret" not in str(info.value)


def test_refusal_names_the_status(alertmanager: Server) -> None:  # noqa: F811
    am = Alertmanager(alertmanager.url)
    now = datetime.now(UTC)
    with pytest.raises(AlertmanagerError, match=r"HTTP 422 .*at least 1 items"):
        am.create([], now, now + timedelta(hours=1), "no matchers")


def test_redact() -> None:
    assert redact("http://u:p@am:9093/x") == "http://am:9093/x"
    assert redact("http://am:9093") == "http://am:9093"
