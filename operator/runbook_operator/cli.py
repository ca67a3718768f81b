"""`runbook-operator run | crds`.

`run` starts Kopf for our kinds with JSON logs, a liveness endpoint and
/metrics; SIGTERM and SIGINT stop it cleanly (Kopf finishes the handlers in
flight and releases the watches). `crds` writes the CustomResourceDefinitions
generated from the models.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main"]


def _run(args: argparse.Namespace) -> int:
    import kopf

    from .core.runtime import register
    from .kinds import kinds
    from .settings import Settings

    register(kinds())
    kopf.configure(log_format=kopf.LogFormat.JSON, verbose=args.verbose)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # every liveness probe
    settings = Settings(namespaces=tuple(args.namespace))
    memo = kopf.Memo(settings=settings)
    liveness = (
        f"http://{settings.metrics_address}:{settings.liveness_port}/healthz"
        if settings.liveness_port
        else None
    )
    # Kopf serves exact namespaces itself. With a glob it would watch the namespaces and
    # start its watchers as they appear, but a namespace created while it starts is seen
    # only in the list that begins its namespace watch, which Kopf ignores: such a namespace
    # stayed unserved until something changed it. So globs are matched here instead, on
    # cluster-wide watches (core.runtime ignores every object outside the patterns).
    exact = [n for n in args.namespace if not any(c in n for c in "*?[")]
    globbed = len(exact) != len(args.namespace)
    kopf.run(
        standalone=True,
        clusterwide=not args.namespace or globbed,
        namespaces=[] if globbed else exact,
        liveness_endpoint=liveness,
        memo=memo,
    )
    return 0


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
