"""Armed Rollback: a real Prometheus scrapes an exporter whose error ratio the test sets.

A new (bad) revision rolls out, the error ratio rises, Prometheus crosses the
threshold, the Rollback fires and the Deployment goes back; outside the window
after a rollout it does not fire.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from support.crs import cond, create_cr, get_cr, wait_condition, wait_phase
from support.events import wait_event
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.prometheus import Prometheus, prometheus  # noqa: F401  (the fixture)
from support.rollback_cluster import (
    create_deployment,
    deployment,
    manifest,
    set_image,
)
from support.wait import wait_for

METRIC = "http_errors_ratio"
QUERY = f'max({METRIC}{{service="web"}})'


def _image(kube: Cluster, namespace: str) -> str:
    dep = deployment(kube, namespace, "web")
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def _errors(prom: Prometheus, value: float) -> None:
    prom.exporter.set(METRIC, value, {"service": "web"})
    prom.wait_for(QUERY, lambda values: values == [value])


def _arm(kube: Cluster, namespace: str, prom: Prometheus, window: str, **extra: Any) -> None:
    trigger = {"url": prom.url, "query": QUERY, "threshold": 0.1, "window": window, **extra}
    create_cr(
        kube.api, namespace, "Rollback", "guard", {"targets": [{"name": "web"}], "trigger": trigger}
    )
    armed = wait_condition(kube.api, namespace, "Rollback", "guard", "Ready", reason="Armed")
    assert armed["status"]["phase"] == "Armed"


def _target(kube: Cluster, namespace: str) -> dict[str, Any]:
    return get_cr(kube.api, namespace, "Rollback", "guard")["status"]["targets"][0]  # type: ignore[no-any-return]


def _stays(check: Callable[[], bool], seconds: float, what: str) -> None:
    """`check` holds at every look for `seconds` (the operator ticks every second in tests)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert check(), what
        time.sleep(0.25)


def test_fires_when_errors_rise_after_a_new_revision(
    kube: Cluster,
    namespace: str,
    operator: OperatorProcess,
    prometheus: Prometheus,  # noqa: F811
) -> None:
    create_deployment(kube, namespace, manifest("web", image("web-1")))
    _errors(prometheus, 0.0)
    _arm(kube, namespace, prometheus, "2m", **{"for": "2s"})
    assert _target(kube, namespace).get("watchedRevision") == 1  # a first revision: no window

    set_image(kube, namespace, "web", image("web-2"))  # the bad deploy
    wait_for(
        lambda: (
            _target(kube, namespace).get("watchedRevision") == 2
            and (
                get_cr(kube.api, namespace, "Rollback", "guard")["status"].get("trigger") or {}
            ).get("evaluatedAt")
        ),
        timeout=30,
        what="revision 2 watched and the trigger evaluated inside its window",
    )
    assert _image(kube, namespace) == image("web-2")

    _errors(prometheus, 0.5)
    done = wait_phase(kube.api, namespace, "Rollback", "guard", "Completed", timeout=60)
    assert _image(kube, namespace) == image("web-1")
    status = done["status"]
    assert status["trigger"]["firedAt"]
    assert status["trigger"]["value"] == 0.5
    target = status["targets"][0]
    assert (target["fromRevision"], target["toRevision"], target["state"]) == (2, 1, "Complete")
    assert target["fromImages"] == [f"app={image('web-2')}"]
    assert cond(done, "Ready")["reason"] == "RolledBack"
    fired = wait_event(kube.api, namespace, "guard", "TriggerFired")
    assert "web revision 2" in fired["message"]


def test_does_not_fire_outside_the_window(
    kube: Cluster,
    namespace: str,
    operator: OperatorProcess,
    prometheus: Prometheus,  # noqa: F811
) -> None:
    create_deployment(kube, namespace, manifest("web", image("web-1")))
    set_image(kube, namespace, "web", image("web-2"))
    _errors(prometheus, 0.0)
    _arm(kube, namespace, prometheus, "3s")

    def window_closed() -> bool:
        ends = _target(kube, namespace).get("windowEndsAt")
        return ends is not None and datetime.fromisoformat(ends) < datetime.now(UTC)

    wait_for(window_closed, timeout=30, what="the window after revision 2 to close")
    _errors(prometheus, 0.5)

    def still_armed() -> bool:
        obj = get_cr(kube.api, namespace, "Rollback", "guard")
        return obj["status"]["phase"] == "Armed" and not obj["status"].get("trigger", {}).get(
            "firedAt"
        )

    _stays(still_armed, 5, "an armed Rollback outside its window stays Armed")
    assert _image(kube, namespace) == image("web-2")

    # The same signal inside a new window (after revision 3) fires: only the window held it back.
    set_image(kube, namespace, "web", image("web-3"))
    wait_phase(kube.api, namespace, "Rollback", "guard", "Completed", timeout=60)
    assert _image(kube, namespace) == image("web-2")
