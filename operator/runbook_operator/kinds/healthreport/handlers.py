"""HealthReport on the operation core: measure every check in parallel, then report.

A pass asks logic when the next run is due (a one-shot report that ran for this
generation is done; one with an interval sleeps until `nextRun`, `Result.requeue_after`,
with no polling between). When due, the checks run on a small pool of their own, each
bounded by its timeout: one that has not answered by then is reported "timed out" and
left to end by itself (every adapter has socket timeouts of its own), so a dead server
never stalls the report. Then logic folds the results into the status, which is
written, and the events of what changed are posted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ...adapters import httpcheck, pghealth, prometheus
from ...adapters import postgres as pg
from ...adapters import rediscache as rc
from ...adapters.kube import KubeError, NotFound
from ...adapters.urls import redact
from ...core import cache, database
from ...core.context import Pass
from ...core.fields import parse_duration
from ...core.kind import Kind, Result, due_in
from ...core.postgres import PostgresConnection, PostgresRef
from ...core.resource import Resource
from . import logic
from .api import HEALTH_REPORT, CheckResult, CheckSpec, CheckType, HealthReportSpec

__all__ = ["POOL_SIZE", "HealthReportKind", "Probes"]

POOL_SIZE = 4
"""Checks of one report measured at the same time."""
FAILURES = (
    pg.PostgresError,
    rc.RedisError,
    database.CredentialsError,
    httpcheck.HttpCheckError,
    prometheus.PrometheusError,
    KubeError,
)
"""What a check reports as its failure, in the adapter's words (never a secret)."""


@dataclass(frozen=True)
class Probes:
    """The outside world a report measures (the adapters; fakes in unit tests)."""

    http_status: Callable[[str, float], int] = httpcheck.get_status
    query: Callable[[str, str], float] = prometheus.query_one
    redis_memory: Callable[[rc.RedisServer, float], rc.Memory] = rc.memory
    pg_health: Callable[[pg.Server, float, bool, float], pghealth.PgHealth] = (
        lambda server, long_query, show, timeout: pghealth.health(
            server, long_query_seconds=long_query, show_queries=show, timeout=timeout
        )
    )
    """(server, long-query seconds, show the queries' text, timeout) -> what it saw."""


class HealthReportKind(Kind):
    resource: Resource = HEALTH_REPORT

    def __init__(self, probes: Probes | None = None) -> None:
        self.probes = probes or Probes()

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(HealthReportSpec)
        status = ctx.status()
        wait_for = logic.due(spec, status, ctx.generation, ctx.now)
        if wait_for is None:
            return Result()
        if wait_for > 0:
            return Result(requeue_after=wait_for)
        results = self.run(ctx, spec)
        new, events = logic.report(spec, status, results, generation=ctx.generation, now=ctx.tick())
        ctx.write(new)
        ctx.recorder.events(events)
        return Result(requeue_after=due_in(new.next_run, ctx.now))

    def finalize(self, ctx: Pass) -> Result | None:
        """A report changes nothing, so there is nothing to undo."""
        return None

    # --- running the checks ------------------------------------------------

    def run(self, ctx: Pass, spec: HealthReportSpec) -> list[CheckResult]:
        """Every check's result, in spec order; none takes longer than its timeout."""
        checks = spec.checks
        limits = [logic.timeout_of(spec, c) for c in checks]
        started: dict[int, float] = {}

        def one(i: int) -> CheckResult:
            started[i] = time.monotonic()
            return self.check(ctx, checks[i], limits[i])

        pool = ThreadPoolExecutor(min(POOL_SIZE, len(checks)), thread_name_prefix="healthcheck")
        try:
            futures = [pool.submit(one, i) for i in range(len(checks))]
            results = self._collect(ctx, checks, limits, futures, started)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return results

    def _collect(
        self,
        ctx: Pass,
        checks: list[CheckSpec],
        limits: list[float],
        futures: list[Future[CheckResult]],
        started: dict[int, float],
    ) -> list[CheckResult]:
        results: dict[int, CheckResult] = {}
        while len(results) < len(checks):
            pending = [i for i in range(len(checks)) if i not in results]
            now = time.monotonic()
            due = [started[i] + limits[i] - now for i in pending if i in started]
            wait([futures[i] for i in pending], min([0.1, *due]), FIRST_COMPLETED)
            now = time.monotonic()
            for i in pending:
                if futures[i].done():
                    results[i] = self._outcome(ctx, checks[i], futures[i])
                elif i in started and now - started[i] >= limits[i]:
                    results[i] = logic.timed_out(checks[i], limits[i], ctx.clock())
        return [results[i] for i in range(len(checks))]

    @staticmethod
    def _outcome(ctx: Pass, check: CheckSpec, future: Future[CheckResult]) -> CheckResult:
        try:
            return future.result()
        except FAILURES as exc:
            return logic.failed(check, str(exc), ctx.clock())
        except Exception as exc:  # a bug must not take the other checks' results with it
            ctx.recorder.log(f"check {check.name} failed unexpectedly: {type(exc).__name__}")
            return logic.failed(check, f"unexpected error ({type(exc).__name__})", ctx.clock())

    def check(self, ctx: Pass, check: CheckSpec, timeout: float) -> CheckResult:
        """Measure one check (in a pool thread) and judge it."""
        kind = check.type
        if kind == CheckType.WORKLOADS:
            return self._workloads(ctx, check)
        if kind == CheckType.POSTGRES:
            return self._postgres(ctx, check, timeout)
        if kind == CheckType.REDIS:
            return self._redis(ctx, check, timeout)
        if kind == CheckType.HTTP:
            return self._http(ctx, check, timeout)
        return self._prometheus(ctx, check)

    def _workloads(self, ctx: Pass, check: CheckSpec) -> CheckResult:
        probe = check.workloads
        assert probe is not None
        window = parse_duration(probe.window)
        events = ctx.kube.list_events(ctx.namespace, "type=Warning")
        named = [("Deployment", n) for n in probe.deployments]
        named += [("StatefulSet", n) for n in probe.stateful_sets]
        found = []
        for kind, name in named:
            try:
                obj = ctx.kube.get_workload(kind, ctx.namespace, name)
            except NotFound:
                found.append(logic.seen(kind, name, None, [], [], window, ctx.clock()))
                continue
            selector = logic.selector(obj)
            pods = ctx.kube.list_pods(ctx.namespace, selector) if selector else []
            found.append(logic.seen(kind, name, obj, pods, events, window, ctx.clock()))
        return logic.judge_workloads(check, found, ctx.clock())

    def _postgres(self, ctx: Pass, check: CheckSpec, timeout: float) -> CheckResult:
        probe = check.postgres
        assert probe is not None
        fields = probe.model_dump(include=set(PostgresConnection.model_fields))
        ref = PostgresRef.model_validate({**fields, "lock_timeout": f"{max(timeout, 1):g}s"})
        server = database.server(ctx.kube, ctx.namespace, ref)
        long_query = parse_duration(probe.long_query).total_seconds()
        try:
            found = self.probes.pg_health(server, long_query, probe.show_queries, timeout)
        except pg.AuthenticationFailed:
            secret = probe.credentials.secret_name
            raise pg.AuthenticationFailed(
                f"PostgreSQL at {server.address} rejected the credentials in Secret {secret}"
            ) from None
        return logic.judge_postgres(
            check,
            connections=found.connections,
            max_connections=found.max_connections,
            long_queries=found.long_query_count,
            longest=found.long_queries[0].seconds if found.long_queries else None,
            queries=[q.text for q in found.long_queries if q.text is not None],
            replicas=found.replicas,
            replication_lag=found.replication_lag,
            now=ctx.clock(),
        )

    def _redis(self, ctx: Pass, check: CheckSpec, timeout: float) -> CheckResult:
        probe = check.redis
        assert probe is not None
        server = cache.server(ctx.kube, ctx.namespace, probe)
        found = self.probes.redis_memory(server, timeout)
        return logic.judge_redis(
            check,
            used_memory=found.used_memory,
            used_memory_human=found.used_memory_human,
            maxmemory=found.maxmemory,
            ping_seconds=found.ping_seconds,
            now=ctx.clock(),
        )

    def _http(self, ctx: Pass, check: CheckSpec, timeout: float) -> CheckResult:
        probe = check.http
        assert probe is not None
        started = time.monotonic()
        status = self.probes.http_status(probe.url, timeout)
        took = time.monotonic() - started
        return logic.judge_http(
            check, url=redact(probe.url), status=status, seconds=took, now=ctx.clock()
        )

    def _prometheus(self, ctx: Pass, check: CheckSpec) -> CheckResult:
        probe = check.prometheus
        assert probe is not None
        url = probe.url or ctx.settings.prometheus_url
        if not url:
            text = "no Prometheus URL: set the check's prometheus.url or RUNBOOK_PROMETHEUS_URL"
            return logic.failed(check, text, ctx.clock())
        return logic.judge_prometheus(check, self.probes.query(url, probe.query), ctx.clock())
