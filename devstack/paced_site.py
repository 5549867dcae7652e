"""A loopback site that records when each request reached it (and from which client address), to check a limit
across the whole pool: pages, a robots.txt (optionally with a Crawl-delay) and one urlset listing the pages."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from devstack.serving import get_server


@dataclass
class Seen:
    at: float
    client: str
    path: str


@dataclass
class PacedSite:
    """`crawl_delay_s`: what robots.txt asks (None: no Crawl-delay line). `pages`: how many /page/<n> the urlset
    /sitemap.xml lists. The site itself never refuses: it only watches."""

    host: str = "127.0.0.1"
    crawl_delay_s: float | None = None
    pages: int = 5
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        site = self
        self.lock = threading.Lock()

        self.server, self.thread = get_server(site.handle, self.host, 0)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    def __enter__(self) -> PacedSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def times(self, prefix: str = "/") -> list[float]:
        """When the requests whose path starts with `prefix` arrived, in order."""
        with self.lock:
            return sorted(s.at for s in self.seen if s.path.startswith(prefix))

    def clients(self) -> set[str]:
        with self.lock:
            return {s.client for s in self.seen}

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        with self.lock:
            self.seen.append(Seen(time.time(), req.client_address[0], path))
        if path == "/robots.txt":
            delay = "" if self.crawl_delay_s is None else f"Crawl-delay: {self.crawl_delay_s:g}\n"
            self._send(req, 200, f"User-agent: *\n{delay}Sitemap: {self.base_url}/sitemap.xml\n", "text/plain")
        elif path == "/sitemap.xml":
            urls = "".join(f"<url><loc>{self.base_url}/page/{i}</loc></url>" for i in range(self.pages))
            xmlns = "http://www.sitemaps.org/schemas/sitemap/0.9"
            self._send(req, 200, f'<?xml version="1.0"?><urlset xmlns="{xmlns}">{urls}</urlset>', "application/xml")
        elif path.startswith("/page/"):
            n = path.rsplit("/", 1)[-1]
            self._send(req, 200, f"<!doctype html><title>Paced page {n}</title><h1>{n}</h1>", "text/html")
        else:
            self._send(req, 404, "<h1>Not found</h1>", "text/html")

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: str, ctype: str) -> None:
        data = body.encode()
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)
