"""`make bench`: every figure against its reference, measured side by side, as a ratio.

    .venv/bin/python benchmarks/bench.py
        [--only quiet,reaction,completion,isolation,scale,idle]
        [--samples 20] [--quiet-samples 3] [--many 1000] [--windows 1000] [--schedules 200]
        [--idle-seconds 60]
        [--operator-source DIR]   # another checkout's operator (a "before" run)

On the local test bed (started if needed) unless KUBECONFIG names a cluster. The
operator under test runs as a process of its own with the admin kubeconfig, serving
only the benchmark's namespaces, which are deleted at the end. Figures with a goal say
whether it is met; nothing here fails a build: these machines are noisy, so the goals
are read, not asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import completion
import isolation
import reaction
import scale
from lib import Bench, Figure, Operator, header

SUITES = ("quiet", "reaction", "completion", "isolation", "scale", "idle")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default=",".join(SUITES))
    # 20, not 10: the p95 of 10 samples is their maximum, one outlier on a noisy machine
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--quiet-samples", type=int, default=3)
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--schedules", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--operator-source", type=Path, default=None)
    args = parser.parse_args(argv)
    suites = [s for s in args.only.split(",") if s]

    bench = Bench()
    bench.install_admission(args.operator_source)
    operator = Operator(bench, source=args.operator_source)
    figures: list[Figure] = []
    started = time.monotonic()
    try:
        if {"quiet", "reaction", "completion", "isolation"} & set(suites):
            with operator.running():
                if "quiet" in suites:  # first: nothing earlier left anything due
                    figures += reaction.after_quiet(bench, args.quiet_samples)
                if "reaction" in suites:
                    figures += reaction.run(bench, args.samples)
                if "completion" in suites:
                    figures += completion.run(bench, max(3, args.samples // 3))
                if "isolation" in suites:
                    figures += isolation.run(bench, args.samples)
            bench.clear()  # the scale and idle figures count only their own objects
        if "scale" in suites:
            figures += scale.many(bench, operator, args.many)
        if "idle" in suites:
            figures += scale.idle(bench, operator, args.windows, args.schedules, args.idle_seconds)
    finally:
        operator.stop()
        bench.cleanup()
    source = args.operator_source or "this checkout"
    print(f"\nrunbook-operator benchmarks ({source}; {time.monotonic() - started:.0f} s)")
    print(header())
    for figure in figures:
        print(figure.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
