"""Operator start-up: Kopf's settings and the adapters handlers reach via `memo`.

Kopf keeps its handler progress and diff-base in annotations under our
prefix (never in status, whose strict schema would prune them), uses our
finalizer name, and posts events for every step.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf

from ..adapters import metrics
from ..adapters.kube import Kube, api_client
from ..names import ANNOTATION_PREFIX, FINALIZER
from ..settings import Settings

__all__ = ["configure", "object_lock"]


def object_lock(memo: Any, uid: str) -> threading.Lock:
    """One lock per object, so a timer and a change handler never act at once."""
    with memo.locks_guard:
        return memo.locks.setdefault(uid, threading.Lock())  # type: ignore[no-any-return]


@kopf.on.startup(id="runbook-startup")
def configure(settings: kopf.OperatorSettings, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Kopf's persistence and pacing, then the adapters handlers reach through `memo`.

    memo.settings: Settings; memo.kube: Kube; memo.locks: per-object locks (object_lock()).
    """
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    # Watches are re-opened every minute, so a stream that went quiet (an API
    # server under load can stop sending without closing) is noticed quickly.
    settings.watching.server_timeout = 50
    settings.watching.client_timeout = 60
    settings.watching.connect_timeout = 10
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.execution.max_workers = 16
    # Errors are retried with growing delays, not hammered.
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]

    ours: Settings = memo.settings
    if "kube" not in memo:
        memo.kube = Kube(api_client())
    memo.locks = {}
    memo.locks_guard = threading.Lock()
    if ours.metrics_port:
        metrics.serve(ours.metrics_address, ours.metrics_port)
    logger.info("runbook-operator started", extra={"namespaces": list(ours.namespaces) or "all"})
