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
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # `support` and `testbed` importable whatever the import mode
    sys.path.insert(0, str(TESTS))

from support.kube import (  # noqa: E402
    Cluster,
    api_client_from_kubeconfig,
    create_namespace,
    delete_namespace,
    unique_name,
)
from testbed.testbed import LocalTestBed, cached_bin_dir  # noqa: E402

E2E_DIR = TESTS / "e2e"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubeconfig",
        default=None,
        help="run the e2e tests against this cluster instead of the local test bed "
        "(default: $KUBECONFIG when set)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


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
    return str(bin_dir / "kubectl") if bin_dir else "kubectl"


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    kubeconfig = _external_kubeconfig(request.config.getoption("--kubeconfig"))
    bed = LocalTestBed()
    started = False
    if kubeconfig is None or kubeconfig == bed.kubeconfig:
        started = bed.up()
        kubeconfig, kubectl, local = bed.kubeconfig, str(bed.kubectl), True
    else:
        kubectl, local = _kubectl_on_path(), False
    api_client = api_client_from_kubeconfig(kubeconfig)
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
