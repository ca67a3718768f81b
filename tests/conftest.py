"""Test-bed plumbing: which Kubernetes cluster the e2e tests talk to.

Option:
    --kubeconfig PATH   test against the cluster this kubeconfig names. Without it,
                        $KUBECONFIG is used when set; otherwise the local test bed
                        (tests/testbed/testbed.py) is brought up for the session.

Fixtures:
    kube (session)        a `support.kube.Cluster`: ``kubeconfig`` (admin), ``api_client``
                          (kubernetes ApiClient), ``kubectl`` (path), ``local`` (bool),
                          ``run_kubectl(*args)``. A local test bed is torn down at the end
                          of the session only if this session started it; one that was
                          already up (``make testbed-up``) is left running.
    namespace (function)  the name of a fresh namespace (its ``default`` ServiceAccount
                          present), deleted after the test.

Only tests under tests/e2e may request these; they are marked ``e2e`` automatically,
so ``pytest tests/unit`` or ``-m "not e2e"`` never needs a cluster. Helpers for tests
(polling, minting a ServiceAccount's kubeconfig) live in ``support.kube``.

Nothing is built or installed here: `make test` builds the test bed and installs the
servers before pytest starts, and a fixture that finds something missing fails at once,
naming the command that provides it. Every process a test starts is written into the
ledger (testbed/ledger.py) and stopped at the end of the session, whatever happened;
SIGTERM ends the session like Ctrl-C, so teardown runs. The last line of the report
says which suites ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # `support` and `testbed` importable whatever the import mode
    sys.path.insert(0, str(TESTS))

from support import images  # noqa: E402
from support.kube import (  # noqa: E402
    Cluster,
    api_client_from_kubeconfig,
    create_namespace,
    delete_namespace,
    unique_name,
)
from testbed import ledger  # noqa: E402
from testbed.testbed import LocalTestBed, TestbedError, cached_bin_dir  # noqa: E402

E2E_DIR = TESTS / "e2e"
UNIT_DIR = TESTS / "unit"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubeconfig",
        default=None,
        help="run the e2e tests against this cluster instead of the local test bed "
        "(default: $KUBECONFIG when set)",
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("RUNBOOK_TEST_LEDGER"):
        # One ledger per session, so sessions side by side never reap each other's servers.
        os.environ["RUNBOOK_TEST_LEDGER"] = str(
            ledger.REPO / ".testrun" / f"processes-{os.getpid()}.jsonl"
        )
    ledger.reset()  # stops what an interrupted earlier run with this ledger left behind
    if not hasattr(config, "workerinput"):
        signal.signal(signal.SIGTERM, _terminate)


def pytest_unconfigure(config: pytest.Config) -> None:
    for line in ledger.reap():
        print(f"\nstopped at the end of the session (its test did not): {line}", file=sys.stderr)
    if ledger.ledger_path().name.startswith(f"processes-{os.getpid()}."):
        ledger.ledger_path().unlink(missing_ok=True)  # this session's own: nothing is left


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


def _suite(nodeid: str) -> str:
    """`unit`, or the e2e module without its test_ prefix (e2e/rollback_parity)."""
    path = nodeid.split("::", 1)[0]
    parts = Path(path).parts
    if "e2e" in parts:
        return "e2e/" + Path(path).stem.removeprefix("test_")
    if "unit" in parts:
        return "unit"
    return Path(path).stem


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line naming every suite that ran, and how many of its tests passed."""
    ran: Counter[str] = Counter()
    other: dict[str, Counter[str]] = {}
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if not nodeid or getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            suite = _suite(nodeid)
            if outcome == "passed":
                ran[suite] += 1
            else:
                other.setdefault(suite, Counter())[outcome] += 1
    suites = sorted(set(ran) | set(other))
    if not suites:
        return
    parts = []
    for suite in suites:
        extra = ", ".join(f"{n} {what}" for what, n in sorted(other.get(suite, {}).items()))
        parts.append(f"{suite} {ran[suite]} passed" + (f" ({extra})" if extra else ""))
    e2e = [s for s in suites if s.startswith("e2e/")]
    terminalreporter.write_line(
        f"suites run: {len(suites)} ({len(e2e)} end-to-end): " + "; ".join(parts)
    )


def _external_kubeconfig(option: str | None) -> Path | None:
    """The kubeconfig named by --kubeconfig or $KUBECONFIG (first existing entry), if any."""
    named = option or os.environ.get("KUBECONFIG")
    if not named:
        return None
    entries = [Path(p).expanduser() for p in named.split(os.pathsep) if p]
    existing = [p for p in entries if p.is_file()]
    if existing:
        return existing[0].resolve()
    if entries and all(p.resolve() == LocalTestBed().kubeconfig for p in entries):
        return entries[0].resolve()  # the local test bed's, not up yet: started below
    raise pytest.UsageError(f"kubeconfig {named} does not exist")


def _kubectl_on_path() -> str:
    found = shutil.which("kubectl")
    if found:
        return found
    bin_dir = cached_bin_dir()
    if bin_dir is None:
        pytest.fail("no kubectl on PATH; `make kubectl` builds one", pytrace=False)
    return str(bin_dir / "kubectl")


def _local_bed() -> LocalTestBed:
    """The local test bed, with binaries that are already built (never building here)."""
    bin_dir = cached_bin_dir()
    if bin_dir is None:
        pytest.fail(
            "the local test bed's binaries are not built: run `make testbed-build` "
            "(or `make test`, which builds them first), or point KUBECONFIG at a cluster",
            pytrace=False,
        )
    return LocalTestBed(bin_dir=bin_dir)


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    kubeconfig = _external_kubeconfig(request.config.getoption("--kubeconfig"))
    bed = LocalTestBed()
    started = False
    if kubeconfig is None or kubeconfig == bed.kubeconfig:
        bed = _local_bed()
        try:
            started = bed.up()
        except TestbedError as error:
            pytest.fail(f"the local test bed did not start: {error}", pytrace=False)
        if started:
            for record in bed.processes():
                ledger.record(f"testbed {record.name}", record.pid)
        kubeconfig, kubectl, local = bed.kubeconfig, str(bed.kubectl), True
    else:
        kubectl, local = _kubectl_on_path(), False
    api_client = api_client_from_kubeconfig(kubeconfig)
    if not local:
        images.use_cluster(api_client)  # the pause image's digest, as the nodes have it
    try:
        yield Cluster(kubeconfig=kubeconfig, api_client=api_client, kubectl=kubectl, local=local)
    finally:
        api_client.close()
        if started:
            bed.down()


@pytest.fixture
def namespace(kube: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = create_namespace(kube.api_client, unique_name(request.node.name))
    try:
        yield name
    finally:
        delete_namespace(kube.api_client, name)
