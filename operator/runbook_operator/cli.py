"""`runbook-operator run | crds`.

`run` starts Kopf for our kinds with JSON logs, a liveness endpoint and
/metrics; SIGTERM and SIGINT stop it cleanly (Kopf finishes the handlers in
flight and releases the watches). `crds` writes the CustomResourceDefinitions
generated from the models.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.leader import Elector
    from .settings import Settings

__all__ = ["main"]

LOG = logging.getLogger("runbook_operator")


def _run(args: argparse.Namespace) -> int:
    import kopf

    from .adapters import urls
    from .core.runtime import register
    from .kinds import kinds
    from .settings import Settings

    register(kinds())
    kopf.configure(log_format=kopf.LogFormat.JSON, verbose=args.verbose)
    if not args.verbose:
        # Kopf logs every run of an on.event handler at INFO ("Handler 'deployments-event'
        # succeeded."): one record per watch event, built on the event loop while a pass
        # may wait for the interpreter (about a tenth of Kopf's time per event, profiled
        # on the test bed). Steps taken are logged on their own; Kopf's warnings and
        # errors about an object (a failed handler, a watch error) still pass.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # every liveness probe
    settings = Settings(namespaces=tuple(args.namespace))
    try:  # before anything starts: a malformed allow-list is a configuration error
        allowed = urls.configure(settings.allowed_urls, settings.prometheus_url)
    except ValueError as exc:
        LOG.error(str(exc))
        return 2
    if allowed.origins:
        LOG.info(f"outbound URLs restricted to {', '.join(str(o) for o in allowed.origins)}")
    if settings.election.enabled:
        return _run_elected(settings)
    _serve(settings, kopf.Memo(settings=settings), stop_flag=None)
    return 0


def _run_elected(settings: Settings) -> int:
    """Follow until the Lease is ours, serve while it stays ours, then exit.

    Why the gate is here, around the whole of Kopf, and not inside it: Kopf's peering
    only pauses operators of the same priority (all of them freeze when two have equal
    ones) and is no leader election, and a paused Kopf still watches everything. So a
    follower does not start Kopf at all (it watches nothing and costs the API server one
    Lease read per retry period), and the leader runs `kopf.run` with the elector's
    `stop_flag`, resolved when leadership is lost. Fencing does not wait for Kopf to
    stop: every write is refused in adapters.kube from the moment the renew deadline
    passes. A leader that lost the Lease exits (client-go's OnStoppedLeading), and its
    replacement starts as a follower; SIGTERM makes it stop serving first and then hand
    the Lease over at once, so a rolling update waits for no expiry.
    """
    import kopf

    from .core.leader import Elector

    elector = Elector(settings.election)
    terminated = threading.Event()

    def terminate(*_: object) -> None:
        # Until Kopf puts its own handlers in place, and also while it starts: a stop
        # asked for then must not kill the leader before it hands the Lease over.
        terminated.set()
        elector.stopping()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, terminate)
    _probes(settings, elector)
    elector.start()
    while not (elector.leading.is_set() or terminated.is_set() or not elector.alive()):
        elector.leading.wait(0.1)
    if terminated.is_set() or not elector.leading.is_set():
        elector.release()
        return 0
    memo = kopf.Memo(settings=settings, elector=elector)
    LOG.info("serving as the leader", extra={"identity": elector.identity})
    _serve(settings, memo, stop_flag=elector.stop_flag, probes=False)
    if elector.lost.is_set():
        LOG.error("exiting: the Lease is lost, a new process starts as a follower")
        return 1
    elector.release()
    return 0


def _probes(settings: Settings, elector: Elector) -> None:
    from .adapters import metrics, probes

    if settings.metrics_port:
        metrics.serve(settings.metrics_address, settings.metrics_port)
        metrics.LEADER.set(0)
    if settings.liveness_port:
        probes.serve(
            settings.metrics_address,
            settings.liveness_port,
            alive=elector.alive,
            role=lambda: {"leader": elector.is_leader(), "identity": elector.identity},
        )


def _serve(
    settings: Settings, memo: Any, *, stop_flag: Future[str] | None, probes: bool = True
) -> None:
    import kopf

    liveness = (
        f"http://{settings.metrics_address}:{settings.liveness_port}/healthz"
        if settings.liveness_port and probes
        else None
    )
    # Kopf serves exact namespaces itself. With a glob it would watch the namespaces and
    # start its watchers as they appear, but a namespace created while it starts is seen
    # only in the list that begins its namespace watch, which Kopf ignores: such a namespace
    # stayed unserved until something changed it. So globs are matched here instead, on
    # cluster-wide watches (core.runtime ignores every object outside the patterns).
    exact = settings.exact_namespaces
    kopf.run(
        standalone=True,
        clusterwide=exact is None,
        namespaces=list(exact or ()),
        liveness_endpoint=liveness,
        memo=memo,
        stop_flag=stop_flag,
    )


def _crds(args: argparse.Namespace) -> int:
    from .crdgen import render_all, write_all

    if args.check:
        stale = [
            name
            for name, text in render_all().items()
            if not (args.out / name).exists() or (args.out / name).read_text() != text
        ]
        if stale:
            print(f"stale CRDs in {args.out}: {', '.join(stale)}; run `runbook-operator crds`")
            return 1
        return 0
    for path in write_all(args.out):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runbook-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="serve only this namespace (repeatable; globs like 'team-*' allowed); default: all",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log Kopf's own details too")
    run.set_defaults(func=_run)

    crds = sub.add_parser("crds", help="write the CRDs generated from the models")
    crds.add_argument("--out", type=Path, default=Path("crds"), help="directory (default: crds/)")
    crds.add_argument("--check", action="store_true", help="only check crds/ is up to date")
    crds.set_defaults(func=_crds)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
