"""A health endpoint on loopback whose answer a test sets: the service an operation checks.

def test_x(health: tuple[str, type[Health]]) -> None:
    url, handler = health
    handler.code = 503   # the service is down from now on
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["Health", "health"]


class Health(http.server.BaseHTTPRequestHandler):
    code = 200

    def do_GET(self) -> None:
        self.send_response(self.code)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health() -> Iterator[tuple[str, type[Health]]]:
    handler = type("Handler", (Health,), {"code": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", handler
    finally:
        server.shutdown()
        server.server_close()
