"""The local stack's front door: serves the API on 127.0.0.1:3000 with API.md's paths (no stage prefix)
by forwarding each request to ministack's API Gateway data plane for the deployed REST API."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "content-encoding",
    "host",
}


class Gateway:
    def __init__(self, upstream_base: str, host: str = "127.0.0.1", port: int = 3000) -> None:
        self.upstream_base = upstream_base.rstrip("/")
        session = requests.Session()
        session.trust_env = False
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    r = session.request(
                        self.command,
                        gateway.upstream_base + self.path,
                        data=body,
                        headers=headers,
                        timeout=120,
                        allow_redirects=False,
                    )
                    status, content, out_headers = r.status_code, r.content, r.headers
                except requests.RequestException as e:
                    status, content, out_headers = (
                        502,
                        b'{"message": "local stack unreachable: %s"}' % str(e).encode()[:200],
                        {"Content-Type": "application/json"},
                    )
                self.send_response(status)
                for k, v in out_headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer carries the headers only
                    self.wfile.write(content)

            # every method goes to the REST API, which answers it as API Gateway does (OPTIONS and HEAD too)
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _forward

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Gateway:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
