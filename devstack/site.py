"""A small target site on loopback: pages with titles and metadata, 404s, redirects, and pages that
rate-limit each client address with a token bucket (429 + Retry-After), optionally escalating.

Each proxy of the local stack connects from its own loopback address (127.0.0.N), so "per client
address" is "per proxy", as a real site sees it.
"""

from __future__ import annotations

import argparse
import html
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from devstack.serving import get_server


@dataclass
class Bucket:
    tokens: float
    updated: float
    blocked_until: float = 0.0
    penalty_s: float = 0.0


@dataclass
class SiteStats:
    served: Counter = field(default_factory=Counter)  # path kind -> count
    rejected: int = 0
    rejections: list[tuple[float, str]] = field(default_factory=list)
    by_client: Counter = field(default_factory=Counter)
    first_ok: dict[str, float] = field(default_factory=dict)
    ok_times: list[float] = field(default_factory=list)
    admissions: list[tuple[float, str]] = field(default_factory=list)  # (when, client) of each 200 on /limited


class RateLimiter:
    """Token bucket per client address. With `escalate`, knocking during a Retry-After window doubles it."""

    def __init__(self, rate: float, burst: float, escalate: bool = False, max_penalty_s: float = 60.0) -> None:
        self.rate = rate
        self.burst = burst
        self.escalate = escalate
        self.max_penalty_s = max_penalty_s
        self.buckets: dict[str, Bucket] = {}
        self.lock = threading.Lock()

    def admit(self, client: str, now: float) -> float | None:
        """None when admitted, else the Retry-After in seconds."""
        with self.lock:
            b = self.buckets.setdefault(client, Bucket(tokens=self.burst, updated=now))
            if now < b.blocked_until:
                if self.escalate:
                    b.penalty_s = min(self.max_penalty_s, max(1.0, b.penalty_s * 2))
                    b.blocked_until = now + b.penalty_s
                return b.blocked_until - now
            b.tokens = min(self.burst, b.tokens + (now - b.updated) * self.rate)
            b.updated = now
            if b.tokens >= 1:
                b.tokens -= 1
                if self.escalate:
                    b.penalty_s = max(0.0, b.penalty_s / 2)
                return None
            wait = (1 - b.tokens) / self.rate
            if self.escalate:
                b.penalty_s = max(b.penalty_s, wait)
                b.blocked_until = now + b.penalty_s
            return wait


class Site:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float = 2.0,
        burst: float = 1.0,
        escalate: bool = False,
        think_s: float = 0.0,
    ) -> None:
        self.limiter = RateLimiter(rate, burst, escalate)
        self.think_s = think_s  # how long an admitted page takes to answer (after the rate limiter saw it)
        self.stats = SiteStats()
        site = self

        self.server, self.thread = get_server(site.handle, host, port)

    @property
    def base_url(self) -> str:
        port = self.server.server_address[1]
        return f"http://localhost:{port}"  # a name, so each proxy can connect from its own address

    def start(self) -> Site:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Site:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        kind = parts[0] if parts else "index"
        client = req.client_address[0]
        now = time.time()
        if kind == "limited":
            retry = self.limiter.admit(client, now)
            if retry is not None:
                self.stats.rejected += 1
                self.stats.rejections.append((now, client))
                self._send(req, 429, "<h1>Too many requests</h1>", {"Retry-After": str(max(1, math.ceil(retry)))})
                return
        self.stats.by_client[client] += 1
        if self.think_s and kind == "limited":
            time.sleep(self.think_s)
        if kind == "limited" and len(parts) > 1 and parts[1].startswith("missing"):
            # a page the site does not have: it still counts against the client's budget, as every request does
            self._record_admission(path, now, client)
            self._send(req, 404, "<html><head><title>Not found</title></head><body>nope</body></html>")
        elif kind in ("page", "limited", "index"):
            n = html.escape(parts[1] if len(parts) > 1 else "0")
            body = (
                f"<!doctype html><html><head><title>Demo page {n}</title>"
                f'<meta name="description" content="Description of page {n}">'
                f'<link rel="canonical" href="/page/{n}"></head>'
                f"<body><h1>Heading {n}</h1><p>{'lorem ipsum ' * 20}</p></body></html>"
            )
            self.stats.served[kind] += 1
            if kind == "limited":
                self._record_admission(path, now, client)
            else:
                self.stats.ok_times.append(now)
                self.stats.first_ok.setdefault(path, now)
            self._send(req, 200, body)
        elif kind == "redirect":
            self._send(req, 302, "", {"Location": f"/page/{parts[1] if len(parts) > 1 else 0}"})
        elif kind == "error":
            self._send(req, 500, "<h1>boom</h1>")
        elif kind == "plain":
            self._send(req, 200, "just text", {"Content-Type": "text/plain"})
        else:
            self._send(req, 404, "<html><head><title>Not found</title></head><body>nope</body></html>")

    def _record_admission(self, path: str, now: float, client: str) -> None:
        """A request on /limited the limiter let through: answered (a page, or a 404 for a missing one)."""
        self.stats.ok_times.append(now)
        self.stats.admissions.append((now, client))
        self.stats.first_ok.setdefault(path, now)

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        req.send_response(status)
        hdrs = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
        for k, v in hdrs.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


def main() -> None:
    ap = argparse.ArgumentParser(description="ScraperSky demo target site")
    ap.add_argument("--port", type=int, default=8701)
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--escalate", action="store_true")
    args = ap.parse_args()
    with Site(port=args.port, rate=args.rate, escalate=args.escalate) as site:
        print(site.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
