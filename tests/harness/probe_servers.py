"""Run only by tests/e2e/test_harness.py, in a pytest of its own that it then interrupts.

It starts the real servers the suite uses, says so in a file, and waits to be
interrupted; the harness test then checks that none of them outlived the session.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from support.alertmanager import Alertmanager, alertmanager  # noqa: F401  (the fixture)
from support.postgres import PostgresServer, postgres  # noqa: F401  (the fixture)


def test_wait_to_be_interrupted(
    postgres: PostgresServer,  # noqa: F811
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    Path(os.environ["PROBE_READY"]).write_text(f"{postgres.port} {alertmanager.port}\n")
    time.sleep(600)
