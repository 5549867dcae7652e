"""Real servers on loopback shared by integration and e2e tests: the target site and proxy.py proxies."""

from __future__ import annotations

import json
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
    what it got (raw body and headers), as a tenant's webhook endpoint would see it. With `fail_first_of_each`,
    the first delivery of each event (by the body's event_id) is answered that status instead, later ones 200."""

    def __init__(self, script: list[int] | None = None, fail_first_of_each: int | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.script = list(script or [])
        self.fail_first_of_each = fail_first_of_each
        self.seen_ids: set[str] = set()
        self.got: list[tuple[bytes, dict[str, str], int]] = []  # (raw body, headers, status answered)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = receiver.next_status(raw)
                    receiver.got.append((raw, dict(self.headers.items()), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def next_status(self, raw: bytes) -> int:
        """The status for this delivery (called under the lock)."""
        if self.fail_first_of_each is not None:
            event_id = str(json.loads(raw).get("event_id"))
            first = event_id not in self.seen_ids
            self.seen_ids.add(event_id)
            return self.fail_first_of_each if first else 200
        return self.script.pop(0) if self.script else 200

    def events(self) -> list[tuple[dict, bytes, dict[str, str], int]]:
        """What it got, parsed: (body, raw body, headers, status answered), in arrival order."""
        with self.lock:
            return [(json.loads(raw), raw, headers, status) for raw, headers, status in self.got]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class StrictProxy:
    """A minimal forward proxy on loopback for plain-http targets that holds clients to `Connection: close`
    (RFC 9112 §9.6): after answering a request that asked to close, it keeps the connection open a moment and
    drops, unanswered, any further request sent on it (as proxy.py does when its close arrives late). `dropped`
    counts those requests: a client that honours its own `Connection: close` never causes one."""

    def __init__(self, linger_s: float = 0.5) -> None:
        import socketserver
        import threading

        self.linger_s = linger_s
        self.dropped = 0
        self.connections = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with proxy.lock:
                    proxy.connections += 1
                closing = proxy.forward(self.rfile, self.wfile)
                if closing:
                    self.request.settimeout(proxy.linger_s)
                    try:
                        more = self.rfile.readline()
                    except OSError:
                        more = b""
                    if more:
                        with proxy.lock:
                            proxy.dropped += 1

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def forward(rfile, wfile) -> bool:  # type: ignore[no-untyped-def]
        """Relays one request to its absolute URL's host; True when the client asked to close."""
        import http.client
        from urllib.parse import urlsplit

        method, url, _ = rfile.readline().decode("latin-1").split(" ", 2)
        headers = http.client.parse_headers(rfile)
        target = urlsplit(url)
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
        path = target.path + ("?" + target.query if target.query else "")
        keep = {k: v for k, v in headers.items() if k.lower() not in ("proxy-authorization", "connection")}
        upstream.request(method, path or "/", headers=keep)
        resp = upstream.getresponse()
        body = resp.read()
        upstream.close()
        lines = [f"HTTP/1.1 {resp.status} {resp.reason}"]
        lines += [f"{k}: {v}" for k, v in resp.getheaders() if k.lower() not in ("connection", "transfer-encoding")]
        lines += [f"Content-Length: {len(body)}"] if resp.getheader("Content-Length") is None else []
        wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        wfile.flush()
        return (headers.get("Connection") or "").lower() == "close"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StrictProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
