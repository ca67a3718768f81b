"""The leader elector: acquires, renews and releases the Lease, and fences this process.

A thread of its own, so that renewing never waits behind the operator's work: every
`retry_period` it reads the Lease and, when core.election says so, writes it with the
resourceVersion it read (two candidates that read the same Lease cannot both win).

- `leading` is set once the Lease is ours; the process then starts serving (cli).
- `is_fenced()` is asked before every write the operator sends (adapters.kube): True
  unless the last successful renewal, timed from *before* its request was sent, is
  younger than the renew deadline. A leader stopped (SIGSTOP, a frozen node, a lost
  network) finds itself fenced the moment it runs again, before it sends anything.
- `lost` is set the first time a leader finds itself fenced; it never leads again in
  this process (client-go's OnStoppedLeading: the process exits and starts afresh).
- `release()` hands the Lease over at once on a clean stop (SIGTERM), after the
  operator stopped acting, so a rolling update waits for no expiry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime

from ..adapters import metrics
from ..adapters.kube import Conflict, KubeError
from ..adapters.lease import LeaseStore
from ..settings import Election
from . import election

__all__ = ["Elector", "agent"]

LOG = logging.getLogger("runbook_operator.leader")
JITTER = 1.2
"""A follower waits up to this factor of the retry period (client-go's JitterFactor
1.2), so that several followers do not all ask at the same instant."""


def agent(identity: str) -> str:
    """The User-Agent of a replica's requests: its identity, as the audit log records it."""
    return f"runbook-operator/{identity}"


class Elector:
    def __init__(self, settings: Election, store: LeaseStore | None = None) -> None:
        self.settings = settings
        self.store = store or LeaseStore(
            settings.lease_namespace,
            settings.lease_name,
            timeout=min(settings.retry_period, settings.renew_deadline / 2),
            user_agent=agent(settings.identity),
        )
        self.leading = threading.Event()
        self.lost = threading.Event()
        self.stop_flag: Future[str] = Future()
        """Kopf's stop flag, resolved with the reason when leadership is lost, and by
        `stopping()` when the operator stops for another reason."""
        self._stop = threading.Event()
        self._seen: election.Observed | None = None
        self._renewed_at: float | None = None
        self._last_error = ""
        self._thread = threading.Thread(target=self._loop, name="runbook-leader", daemon=True)

    @property
    def identity(self) -> str:
        return self.settings.identity

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def is_fenced(self) -> bool:
        """Whether a write now would be one a deposed (or never elected) leader sends."""
        fenced = election.fenced(self._renewed_at, self.settings.renew_deadline, time.monotonic())
        if fenced and self.leading.is_set() and not self.lost.is_set():
            self._lose("the renew deadline passed before this write")
        return fenced

    def is_leader(self) -> bool:
        return self.leading.is_set() and not self.is_fenced()

    # --- the loop ----------------------------------------------------------

    def _loop(self) -> None:
        LOG.info(
            "leader election started",
            extra={
                "identity": self.identity,
                "lease": f"{self.settings.lease_namespace}/{self.settings.lease_name}",
            },
        )
        while not self._stop.is_set() and not self.lost.is_set():
            started = time.monotonic()
            renewed = self._try(started)
            if renewed:
                self._renewed_at = started
                if not self.leading.is_set():
                    self.leading.set()
                    metrics.LEADER.set(1)
                    LOG.info("became the leader", extra={"identity": self.identity})
            if self.leading.is_set():
                self.is_fenced()  # loses leadership once the renew deadline passed
                period = self.settings.retry_period
            else:
                period = self.settings.retry_period * random.uniform(1.0, JITTER)
            self._stop.wait(max(0.0, started + period - time.monotonic()))

    def _try(self, now: float) -> bool:
        """One tryAcquireOrRenew: True when the Lease is ours now."""
        try:
            current = self.store.get()
            wall = datetime.now(UTC)
            if current is None:
                record = election.claim(None, self.identity, self._duration(), wall, now)
                assert record is not None
                self.store.create(election.to_spec(record))
                self._seen = election.observe(None, record, time.monotonic())
                return True
            read, version = election.from_spec(current[0]), current[1]
            self._seen = election.observe(self._seen, read, now)
            if self.leading.is_set() and read.holder != self.identity:
                self._lose(f"the Lease is held by {read.holder or 'nobody'}")
                return False
            wanted = election.claim(self._seen, self.identity, self._duration(), wall, now)
            if wanted is None:
                return False
            self.store.replace(election.to_spec(wanted), version)
            self._seen = election.observe(self._seen, wanted, time.monotonic())
            if read.holder != self.identity:
                LOG.info(
                    "took over the Lease",
                    extra={"previous": read.holder or "nobody", "transitions": wanted.transitions},
                )
            return True
        except Conflict:
            return False  # someone else wrote it first: read again next time
        except (KubeError, OSError) as exc:
            self._complain(str(exc))
            return False

    def _duration(self) -> int:
        return max(1, round(self.settings.lease_duration))

    def _complain(self, message: str) -> None:
        if message != self._last_error:
            LOG.warning("cannot read or write the Lease", extra={"error": message})
        self._last_error = message

    def _lose(self, why: str) -> None:
        if self.lost.is_set():
            return
        self.lost.set()
        if not self.stop_flag.done():
            self.stop_flag.set_result(why)
        metrics.LEADER.set(0)
        LOG.error("leadership lost: this operator stops acting", extra={"reason": why})

    # --- stopping ------------------------------------------------------------

    def stopping(self) -> None:
        """The operator stops for another reason (SIGTERM): resolve Kopf's stop flag too.
        Kopf waits for a concurrent Future in a thread of the loop's default executor,
        which the loop's shutdown joins: unresolved, the process would never exit."""
        if not self.stop_flag.done():
            self.stop_flag.set_result("stopping")

    def release(self) -> None:
        """Step down: stop renewing and, if the Lease is still ours, give it up at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.settings.retry_period * 2)
        was_leader = self.is_leader()
        self._renewed_at = None
        self.leading.clear()
        metrics.LEADER.set(0)
        if not was_leader:
            return
        try:
            current = self.store.get()
            read = None if current is None else election.from_spec(current[0])
            if current is None or read is None or read.holder != self.identity:
                return
            gone = election.released(read, datetime.now(UTC))
            self.store.replace(election.to_spec(gone), current[1])
            LOG.info("released the Lease", extra={"identity": self.identity})
        except KubeError as exc:
            LOG.warning("could not release the Lease", extra={"error": str(exc)})
