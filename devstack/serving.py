"""The loopback HTTP server the demo sites share: HTTP/1.1, quiet, one thread per request, GETs to `handle`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def get_server(
    handle: Callable[[BaseHTTPRequestHandler], None], host: str, port: int
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A server (not started) whose GETs go to `handle`, and the daemon thread that will serve it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            handle(self)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server, threading.Thread(target=server.serve_forever, daemon=True)
