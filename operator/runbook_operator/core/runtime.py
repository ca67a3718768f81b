"""The operator process: Kopf's settings, the kinds' controllers, and the glue to Kopf.

`register(kinds)` declares the Kopf handlers, all of them thin: a startup handler that
builds the `Runtime` (kept in Kopf's memo, typed), a cleanup handler that stops it, and
one `on.event` handler per kind and per watched workload kind, which only tell the
runtime which object changed. Kopf keeps no state on our objects: no progress or
diff-base annotations, and its finalizer name differs from ours (core.names), which the
controllers add and remove themselves.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kopf

from ..adapters import metrics
from ..adapters.kube import IDLE_CLOSE_SECONDS, Kube, api_client, warm
from ..apigroup import GROUP, VERSION
from ..settings import Settings
from . import measures
from .context import Pass
from .controller import Controller, Key
from .interest import Interest
from .kind import DATABASE, PASSES, Kind, Result
from .leader import Elector, agent
from .names import ANNOTATION_PREFIX, KOPF_FINALIZER
from .ports import KubePort, Obj
from .recorder import Recorder
from .watchcache import WatchCache
from .writer import StatusWriter

__all__ = ["WORKLOADS", "Runtime", "keep_warm", "register", "runtime_of"]

WORKLOADS = (
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
)
"""Workload kinds whose changes (a rollout's progress) wake the operations watching them."""
WARM_SECONDS = IDLE_CLOSE_SECONDS * 2 / 3
"""How often the client's connections are used, so the API server never closes them as
idle: an operation created after a quiet spell (the usual case, an idle object costing
no request) then starts on open connections. WARM_CONNECTIONS requests a minute."""
STOP_SECONDS = 20.0
"""How long a stopping operator waits for passes in flight (a pg_dump is told to stop)."""
LOG = logging.getLogger("runbook_operator")


@dataclass
class Runtime:
    """Everything a pass needs, built once at start-up; kept in Kopf's memo."""

    settings: Settings
    kube: KubePort
    kinds: Sequence[Kind]
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    post_events: bool = True
    fenced: Callable[[], bool] = lambda: False
    """The leader elector's fence (core.leader); never fenced when running standalone."""
    controllers: dict[str, Controller] = field(default_factory=dict)
    interest: Interest = field(default_factory=Interest)
    pools: dict[str, ThreadPoolExecutor] = field(default_factory=dict)
    cache: WatchCache = field(default_factory=WatchCache)
    """The workloads as the watches delivered them (core.watchcache)."""
    _since: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """Per operation whose pass runs, the last change `interest` had seen as it began."""

    def __post_init__(self) -> None:
        sizes = {PASSES: self.settings.pass_workers, DATABASE: self.settings.database_workers}
        for pool, size in sizes.items():
            self.pools[pool] = ThreadPoolExecutor(size, thread_name_prefix=f"runbook-{pool}")
        for kind in self.kinds:
            self.controllers[kind.resource.kind] = Controller(
                kind,
                self.kube,
                self.pools[kind.pool],
                self.new_pass,
                self._after,
                on_start=self._started,
            )

    def new_pass(self, kind: Kind, body: Obj, stopped: threading.Event) -> Pass:
        writer = StatusWriter(self.kube, kind.resource, body)
        recorder = Recorder(body, self.kube if self.post_events else None, instance=self.instance)
        writer.told = recorder.settle  # each status write finds the Events before it posted
        return Pass(
            kube=self.kube,
            settings=self.settings,
            resource=kind.resource,
            writer=writer,
            recorder=recorder,
            instance=self.instance,
            stopped=stopped,
            fenced=self.fenced,
            cache=self.cache,
        )

    def _started(self, kind: Kind, key: Key) -> None:
        self._since[(kind.resource.kind, key[0], key[1])] = self.interest.seq

    def _after(self, kind: Kind, key: Key, result: Result | None) -> None:
        owner = (kind.resource.kind, key[0], key[1])
        since = self._since.pop(owner, 0)
        if self.interest.watch(owner, result.watch if result is not None else (), since):
            # A change of a newly watched object during the pass woke nobody: look again.
            self.controllers[kind.resource.kind].enqueue(key)
        self.interest.prune(min(self._since.values(), default=self.interest.seq))

    # --- events -----------------------------------------------------------

    def observe(self, kind: str, event_type: str | None, body: Obj) -> None:
        """A watch event of one of our objects (those of namespaces not served are ignored)."""
        if not self.settings.serves(str((body.get("metadata") or {}).get("namespace"))):
            return
        self.controllers[kind].observe(event_type, body)
        self.notify(kind, body)

    def seen(self, kind: str, event_type: str | None, body: Obj) -> None:
        """A watch event of an object operations wait on: a workload's copy is kept
        (core.watchcache) before the operations that watch it are woken, so each reads
        the copy that woke it."""
        self.cache.observe(kind, event_type, body)
        self.notify(kind, body)

    def notify(self, kind: str, body: Obj) -> None:
        """Wake the operations that watch this object."""
        meta = body.get("metadata") or {}
        namespace = str(meta["namespace"]) if meta.get("namespace") else None
        name = str(meta.get("name"))
        self.interest.changed(namespace, kind, name)
        for owner_kind, owner_namespace, owner in self.interest.owners(namespace, kind, name):
            self.controllers[owner_kind].enqueue((owner_namespace, owner))

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop(STOP_SECONDS) for c in self.controllers.values()))
        for pool in self.pools.values():
            pool.shutdown(wait=False, cancel_futures=True)


class _NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: the operator has only `on.event` handlers, and Kopf's diff base (the
    "essence" it compares to detect a creation or an update) serves only the changing
    handlers (`on.create`, `on.update`, ...). Kopf builds it for every event all the same:
    a deep copy of the whole object but its status, on the event loop, before our handler
    is called and while a pass waiting for its answer waits for the interpreter. On a
    Deployment, which every rollout changes many times, that is its whole template.
    A changing handler would need Kopf's own storage back (the runtime's unit tests hold
    `register()` to event and activity handlers)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def runtime_of(memo: Any) -> Runtime:
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the operator's runtime is not set up (startup handler not run)")
    return runtime


def _configure(settings: kopf.OperatorSettings, ours: Settings) -> None:
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = _NoDiffBase()
    # Every step's Event is created by core.recorder, inside its pass; Kopf posts only its
    # own warnings and errors (a failed watch), never a copy of one of our log lines.
    settings.posting.level = logging.WARNING
    # Watches are re-opened every minute, so a stream that went quiet (an API server
    # under load can stop sending without closing) is noticed quickly: seen on the shared
    # test cluster, where a new operator saw nothing for minutes with Kopf's defaults.
    settings.watching.server_timeout = 50
    settings.watching.client_timeout = 60
    settings.watching.connect_timeout = 10
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 60
    # Our handlers only queue a key (core.controller), which folds bursts itself (a pass
    # reads the newest body): Kopf's batch window (0.1 s by default) would only add its
    # length to every reaction. Its per-object workers end 1 s after their last event
    # instead of 5 s: with thousands of objects, idle workers are memory for nothing.
    settings.batching.batch_window = 0.0
    settings.batching.idle_timeout = 1.0
    # Serving namespaces named exactly (the namespaced install, deploy/namespaced), Kopf
    # needs no cluster-wide read: it would list the namespaces only to match patterns, and
    # watch the CRDs only to notice new versions, which a new operator version (a rollout,
    # so a restart) brings anyway. Its start-up scan of the API groups is discovery, which
    # every authenticated client may read. Peering is off already (standalone).
    settings.scanning.disabled = ours.exact_namespaces is not None


def _runtime(
    ours: Settings, kinds: Sequence[Kind], elector: Elector | None
) -> tuple[Runtime, Callable[[], int]]:
    """The runtime, and how to keep its client's connections open (adapters.kube.warm)."""
    if elector is None:
        client = api_client()
        return Runtime(ours, Kube(client), kinds), functools.partial(warm, client)
    # Every write this process sends is refused unless it leads (core.leader).
    client = api_client(fence=elector.is_fenced, user_agent=agent(elector.identity))
    runtime = Runtime(
        ours, Kube(client), kinds, instance=elector.identity, fenced=elector.is_fenced
    )
    return runtime, functools.partial(warm, client)


def register(kinds: Sequence[Kind]) -> None:
    """Declare the Kopf handlers for these kinds (once, before kopf.run)."""

    @kopf.on.startup(id="runbook-startup")
    async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        ours: Settings = memo["settings"]
        _configure(settings, ours)
        elector: Elector | None = memo.get("elector")
        runtime, warming = _runtime(ours, kinds, elector)
        memo["runtime"] = runtime
        memo["warming"] = asyncio.create_task(keep_warm(warming, WARM_SECONDS))
        # Every handler is async and only queues (passes run in the runtime's own pools:
        # PASSES for API work, DATABASE for dumps), so Kopf's sync executor stays small.
        settings.execution.max_workers = 2
        settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
        metrics.DOMAIN.declare(measures.METRICS)
        if ours.metrics_port and elector is None:  # else served since the start (cli)
            metrics.serve(ours.metrics_address, ours.metrics_port)
        _freeze_what_lasts()
        LOG.info("runbook-operator started", extra={"namespaces": list(ours.namespaces) or "all"})

    @kopf.on.cleanup(id="runbook-cleanup")
    async def cleanup(memo: Any, **_: Any) -> None:
        warming: asyncio.Task[None] | None = memo.get("warming")
        if warming is not None:
            warming.cancel()
        await runtime_of(memo).stop()
        elector: Elector | None = memo.get("elector")
        if elector is not None:
            elector.stopping()

    for kind in kinds:
        _register_kind(kind.resource.kind, kind.resource.plural)
    for group, version, plural, kind_name in WORKLOADS:
        _register_workload(group, version, plural, kind_name)
    # Cluster-scoped objects some kind reads (Kopf watches them cluster-wide even when it
    # serves only some namespaces): their changes only wake the operations watching them.
    policies = {(GROUP, VERSION, r.plural, r.kind) for k in kinds for r in k.policies}
    if any(k.namespace_labels for k in kinds):
        policies.add(("", "v1", "namespaces", "Namespace"))
    for group, version, plural, kind_name in sorted(policies):
        _register_workload(group, version, plural, kind_name)


def _freeze_what_lasts() -> None:
    """Leave what the start made (the modules, the Kubernetes client's API classes and
    models, pydantic's validators, Kopf's) out of every later garbage collection: it
    lives as long as the process.

    Measured on the test bed: the process tracked 160,000 to 220,000 objects once it
    served, nearly all of them made by its start, and each full collection walked them
    all, 80 to 120 ms with the interpreter held, a few times a minute while operations
    came and went. An operation created during one waited that long for its first
    change: most of a reaction's p95. Frozen before the runtime's client was made, the
    API classes it imports stayed out (100,000 objects, collections of 40 to 75 ms);
    frozen here, after it, a collection walks only what was made since."""
    gc.collect()
    gc.freeze()


async def keep_warm(use: Callable[[], object], every: float) -> None:
    """Call `use` (adapters.kube.warm: the client's connections) in a thread now, then
    every `every` seconds, until cancelled. A failure is logged and tried again at the
    next turn: the watches say it louder when the API server is away."""
    while True:
        try:
            await asyncio.to_thread(use)
        except Exception as exc:
            LOG.warning(f"could not keep the connections to the API server open: {exc}")
        await asyncio.sleep(every)


def _register_kind(kind: str, plural: str) -> None:
    @kopf.on.event(GROUP, VERSION, plural, id=f"{kind.lower()}-event")
    async def changed(event: Any, memo: Any, **_: Any) -> None:
        runtime_of(memo).observe(kind, event.get("type"), dict(event["object"]))


def _register_workload(group: str, version: str, plural: str, kind: str) -> None:
    @kopf.on.event(group, version, plural, id=f"{plural}-event")
    async def changed(event: Any, memo: Any, **_: Any) -> None:
        runtime_of(memo).seen(kind, event.get("type"), dict(event["object"]))
