"""adapters/prometheus.py and core/sampling.py against a real Prometheus (no cluster needed).

Each way a gate's query can fail has its own plain reason, and credentials in
the URL never show up in one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runbook_operator.adapters import prometheus as adapter
from runbook_operator.core import sampling
from runbook_operator.core.gate import Problem
from support.prometheus import Prometheus, running_prometheus


@pytest.fixture(scope="module")
def shared() -> Iterator[Prometheus]:
    """One server for the tests that only read (each uses its own metric name)."""
    with running_prometheus() as server:
        yield server


def test_one_series_gives_its_value(shared: Prometheus) -> None:
    shared.exporter.set("one", 0.25, {"service": "backend"})
    shared.wait_for("one", lambda values: values == [0.25])
    assert adapter.query_one(shared.url, 'one{service="backend"}') == 0.25
    assert adapter.query_one(shared.url + "/", "max(one)") == 0.25
    assert sampling.sample(shared.url, "one").value == 0.25


def test_a_scalar_gives_its_value(shared: Prometheus) -> None:
    assert adapter.query_one(shared.url, "1 + 1") == 2.0


def test_no_series(shared: Prometheus) -> None:
    with pytest.raises(adapter.NoData, match="no series"):
        adapter.query_one(shared.url, "does_not_exist")
    assert sampling.sample(shared.url, "does_not_exist").problem == Problem.NO_DATA


def test_nan_is_no_data(shared: Prometheus) -> None:
    sample = sampling.sample(shared.url, "0 / 0")
    assert sample.problem == Problem.NO_DATA and "NaN" in sample.detail


def test_several_series_are_named_by_what_tells_them_apart(shared: Prometheus) -> None:
    shared.exporter.set("several", 0.1, {"service": "backend"})
    shared.exporter.set("several", 0.2, {"service": "frontend"})
    shared.wait_for("several", lambda values: len(values) == 2)
    with pytest.raises(adapter.SeveralSeries) as raised:
        adapter.query_one(shared.url, "several")
    assert str(raised.value) == (
        'the query returned 2 series ({service="backend"}, {service="frontend"}); '
        "it must return exactly one (aggregate it, e.g. with sum() or max())"
    )


def test_a_refused_query_says_why(shared: Prometheus) -> None:
    with pytest.raises(adapter.QueryRefused) as raised:
        adapter.query_one(shared.url, "sum(rate(x[5m])")
    assert str(raised.value).startswith("Prometheus refused the query: ")
    assert "parse error" in str(raised.value)


def test_a_range_vector_is_refused(shared: Prometheus) -> None:
    shared.exporter.set("ranged", 0.1, {"service": "backend"})
    shared.wait_for("ranged")
    with pytest.raises(adapter.QueryRefused, match="range vector"):
        adapter.query_one(shared.url, "ranged[1m]")


def test_unreachable_without_showing_credentials() -> None:
    with running_prometheus() as prometheus:
        url = prometheus.url
    secret_url = url.replace("http://", "http://admin:s3cret@")
    with pytest.raises(adapter.Unreachable) as raised:
        adapter.query_one(secret_url, "up")
    message = str(raised.value)
    assert message.startswith(f"Prometheus at {url} cannot be reached")
    assert "s3cret" not in message and "admin" not in message
    sample = sampling.sample(secret_url, "up")
    assert sample.problem == Problem.UNREACHABLE
    assert "s3cret" not in sample.detail


def test_not_prometheus_at_all(shared: Prometheus) -> None:
    # The exporter answers HTTP on every path, but with metrics text, not the query API.
    url = f"http://{shared.exporter.target}"
    sample = sampling.sample(url, "up")
    assert sample.problem == Problem.UNREACHABLE
    assert sample.detail == f"{url} did not answer like a Prometheus server"
