"""Real servers on loopback shared by integration and e2e tests: the target site and proxy.py proxies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.proxies import ProxyServer, start_proxies
from devstack.site import Site


@pytest.fixture(scope="session")
def proxy_servers() -> Iterator[list[ProxyServer]]:
    servers = start_proxies(3)
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture
def site() -> Iterator[Site]:
    with Site(rate=2.0, burst=1.0) as s:
        yield s


class WebhookReceiver:
    """A real HTTP receiver on loopback: answers each POST with the next scripted status (then 200) and keeps
    what it got (raw body and headers), as a tenant's webhook endpoint would see it."""

    def __init__(self, script: list[int] | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.script = list(script or [])
        self.got: list[tuple[bytes, dict[str, str], int]] = []  # (raw body, headers, status answered)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.got.append((raw, dict(self.headers.items()), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
