"""Prometheus, asked for exactly one number.

Gates need one value: `query_one` returns it, or raises an error that says in
plain words why there is none; its `problem` names the kind of failure as the
gate knows it (core.gate.Problem's values), and core.sampling turns both into
the gate's `Sample`.

Exceptions:
    PrometheusError
     +-- Unreachable     (connection refused, timeout, HTTP 5xx)
     +-- QueryRefused    (HTTP 4xx: a PromQL error; the message is Prometheus's)
     +-- NoData          (no series)
     +-- SeveralSeries   (more than one series: which one counts is unclear)
     +-- NotAllowed      (also a urls.URLNotAllowed: RUNBOOK_ALLOWED_URLS refuses the URL
                          or a redirect; never asked)

URLs may carry credentials (http://user:secret@host); messages never show them.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urljoin

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from .urls import URLNotAllowed, check, redact

__all__ = [
    "NoData",
    "NotAllowed",
    "PrometheusError",
    "QueryRefused",
    "SeveralSeries",
    "Unreachable",
    "query_one",
]

TIMEOUT_SECONDS = 5
"""Per request; the gate asks again on the next tick rather than waiting long."""
MAX_LABELS_SHOWN = 3


class PrometheusError(Exception):
    problem = "Unreachable"


class Unreachable(PrometheusError):
    problem = "Unreachable"


class QueryRefused(PrometheusError):
    problem = "BadQuery"


class NoData(PrometheusError):
    problem = "NoData"


class NotAllowed(PrometheusError, URLNotAllowed):
    problem = "URLNotAllowed"


class SeveralSeries(PrometheusError):
    problem = "SeveralSeries"


_local = threading.local()


def _client(url: str) -> PrometheusConnect:
    """One client (and its connection pool) per URL and thread; no retries inside."""
    clients: dict[str, PrometheusConnect] = getattr(_local, "clients", None) or {}
    _local.clients = clients
    if url not in clients:
        clients[url] = PrometheusConnect(
            url=url.rstrip("/"),
            retry=Retry(total=0, raise_on_status=False),
            timeout=TIMEOUT_SECONDS,
        )
        clients[url]._session.hooks["response"].append(_redirect_checked)
    return clients[url]


def _redirect_checked(response: requests.Response, *_: Any, **__: Any) -> None:
    """requests follows redirects itself: each one's target must be allowed too."""
    if response.is_redirect:
        target = urljoin(response.url, response.headers.get("location", ""))
        check(target, NotAllowed, "Prometheus redirect")


def _refusal(exc: PrometheusApiClientException, url: str) -> PrometheusError:
    """prometheus-api-client reports `HTTP Status Code 400 (b'{...}')`: pick it apart."""
    text = str(exc)
    status = text.split("HTTP Status Code ", 1)[-1].split(" ", 1)[0]
    detail = text
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start : text.rfind("}") + 1].encode().decode("unicode_escape"))
            detail = str(body.get("error") or text)
        except ValueError:
            pass
    if status.startswith("4"):
        return QueryRefused(f"Prometheus refused the query: {detail}")
    return Unreachable(f"Prometheus at {redact(url)} answered HTTP {status}")


def _series_names(result: list[dict[str, Any]]) -> str:
    """The series told apart by the labels whose values differ, e.g. `{pod="a"}, {pod="b"}`."""
    labels = [dict(series.get("metric") or {}) for series in result]
    keys = sorted({k for one in labels for k in one if len({other.get(k) for other in labels}) > 1})
    names = [
        "{" + ", ".join(f'{k}="{one.get(k, "")}"' for k in keys[:MAX_LABELS_SHOWN]) + "}"
        for one in labels[:MAX_LABELS_SHOWN]
    ]
    return ", ".join(names) + ("" if len(result) <= MAX_LABELS_SHOWN else ", ...")


def query_one(url: str, query: str) -> float:
    """The value of an instant query that returns exactly one series (or a scalar)."""
    check(url, NotAllowed, "Prometheus")
    try:
        result = _client(url).custom_query(query)
    except NotAllowed:
        raise
    except PrometheusApiClientException as exc:
        raise _refusal(exc, url) from exc
    except requests.exceptions.JSONDecodeError as exc:
        raise Unreachable(f"{redact(url)} did not answer like a Prometheus server") from exc
    except requests.RequestException as exc:
        raise Unreachable(
            f"Prometheus at {redact(url)} cannot be reached ({type(exc).__name__})"
        ) from exc
    return _one_value(result)


def _one_value(result: Any) -> float:
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return float(result[1])  # a scalar: [time, "value"]
    if not isinstance(result, list):
        raise QueryRefused("the query must return an instant vector or a scalar")
    if not result:
        raise NoData("the query returned no series")
    if len(result) > 1:
        raise SeveralSeries(
            f"the query returned {len(result)} series ({_series_names(result)}); it must return "
            "exactly one (aggregate it, e.g. with sum() or max())"
        )
    series = result[0]
    if "value" not in series:
        raise QueryRefused("the query returned a range vector; it must return an instant vector")
    return float(series["value"][1])
