"""/healthz and /readyz, served from the start, whether this replica leads or follows.

Kopf's own liveness endpoint exists only while Kopf runs, which is only on the leader;
a follower must still answer its probes. `/readyz` is 200 on both, with the role in the
body (`{"leader": false, ...}`): a follower is ready to take over, and a rolling update
must not wait for it to lead, which it never will while the old leader lives. `/healthz`
is 200 while `alive()` says so (the election thread runs).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["serve"]


def serve(
    address: str, port: int, *, alive: Callable[[], bool], role: Callable[[], dict[str, Any]]
) -> ThreadingHTTPServer:
    """Serve both endpoints in a daemon thread; returns the server (to shut it down)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/healthz":
                ok = alive()
                self._answer(200 if ok else 503, {"alive": ok})
            elif path == "/readyz":
                self._answer(200, role())
            else:
                self._answer(404, {"error": "not found"})

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per probe would drown the operator's own log

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="runbook-probes", daemon=True).start()
    return server
