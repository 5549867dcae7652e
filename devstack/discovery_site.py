"""A loopback site for the discovery benchmark (bench/discovery.py): robots.txt names /sitemap_index.xml, an index of
gzip urlsets of `per_doc` URLs each (1,000,000 URLs = 20 urlsets of 50,000); /big/urlset.xml.gz is one urlset of
about 50 MB once inflated (about 1 KB per URL, the protocol's 50,000 URLs in 50 MB) for the worker's memory goal: its
URLs are on another host (BIG_HOST), so a reader with `same_host` streams, parses and counts all of it without storing
a URL (storing is what the urlsets measure); /warm/<n>.xml are small ones to start warm workers. Each client address
(one per proxy) is paced by a token bucket: a request over it gets 429 + Retry-After.

The documents are generated once into a cache dir, keyed by the site's base URL and sizes (the URLs name the host and
port, so the site prefers a fixed port), and served from memory: a second run starts in well under a second."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devstack.site import RateLimiter

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
IMAGE_NS = 'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"'
BIG_BYTES = 50_000_000  # under the 50 MiB a sitemap document may hold after decompression
BIG_HOST = "https://shop.example"  # the big document's URLs: foreign to the site
FORMAT = "2"  # bump when the documents change: the cache key includes it


def url_of(base: str, i: int) -> str:
    return f"{base}/products/{i}"


def expected_urls(base: str, count: int) -> set[str]:
    return {url_of(base, i) for i in range(count)}


def _urlset(base: str, start: int, stop: int) -> bytes:
    rows = [
        f"<url><loc>{url_of(base, i)}</loc><lastmod>2026-11-{1 + i % 28:02d}</lastmod></url>\n"
        for i in range(start, stop)
    ]
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>\n{"".join(rows)}</urlset>\n'.encode()


def _big_urlset(base: str = BIG_HOST) -> bytes:
    """About BIG_BYTES: each URL with an image whose caption pads it to about 1 KB."""
    caption = "c" * 850
    row = (
        "<url><loc>{base}/big/{i}</loc><lastmod>2026-11-05T07:08:09+00:00</lastmod><image:image>"
        "<image:loc>{base}/img/{i}.jpg</image:loc><image:caption>{caption}</image:caption></image:image></url>\n"
    )
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS} {IMAGE_NS}>\n'
    count = (BIG_BYTES - len(head) - 12) // (len(row.format(base=base, i=0, caption=caption)) + 4)
    rows = "".join(row.format(base=base, i=i, caption=caption) for i in range(count))
    return f"{head}{rows}</urlset>\n".encode()


def _index(base: str, parts: int) -> bytes:
    rows = "".join(f"<sitemap><loc>{base}/sitemaps/urlset-{k:03d}.xml.gz</loc></sitemap>\n" for k in range(parts))
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex {NS}>\n{rows}</sitemapindex>\n'.encode()


def generate(base: str, urls: int, per_doc: int, cache: Path) -> dict[str, bytes]:
    """The site's documents by path, from `cache` (written there the first time)."""
    parts = math.ceil(urls / per_doc)
    key = hashlib.sha256(f"{FORMAT} {base} {urls} {per_doc}".encode()).hexdigest()[:16]
    folder = cache / key
    names = [f"urlset-{k:03d}.xml.gz" for k in range(parts)]
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for k, name in enumerate(names):
            body = _urlset(base, k * per_doc, min(urls, (k + 1) * per_doc))
            (folder / name).write_bytes(gzip.compress(body, compresslevel=6, mtime=0))
        (folder / "big.xml.gz").write_bytes(gzip.compress(_big_urlset(), compresslevel=6, mtime=0))
        (folder / "done").touch()
    docs = {f"/sitemaps/{name}": (folder / name).read_bytes() for name in names}
    docs["/big/urlset.xml.gz"] = (folder / "big.xml.gz").read_bytes()
    docs["/robots.txt"] = f"User-agent: *\nSitemap: {base}/sitemap_index.xml\n".encode()
    docs["/sitemap_index.xml"] = _index(base, parts)
    for n in range(16):
        docs[f"/warm/{n}.xml"] = _urlset(f"{base}/warm{n}", 0, 10)
    return docs


def big_document(docs: dict[str, bytes]) -> tuple[int, int]:
    """The big urlset's size once inflated, in bytes, and how many URLs it lists."""
    body = gzip.decompress(docs["/big/urlset.xml.gz"])
    return len(body), body.count(b"<url>")


@dataclass
class Served:
    """What the site answered: (path, status) counts, 429s and requests per client address."""

    answers: Counter = field(default_factory=Counter)
    by_client: Counter = field(default_factory=Counter)
    rejected: int = 0

    def documents(self, prefix: str = "/s") -> int:
        """Distinct sitemap documents (the index and the urlsets) answered 200."""
        return len({p for (p, s) in self.answers if s == 200 and p.startswith(prefix)})


def preferred_port(port: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DiscoverySite:
    """`with DiscoverySite(urls, per_doc, cache, rate) as site:`; `site.reset()` before each system's run."""

    def __init__(self, urls: int, per_doc: int, cache: Path, rate: float, burst: float = 2.0, port: int = 8743) -> None:
        self.rate, self.burst = rate, burst
        self.limiter = RateLimiter(rate, burst)
        self.served = Served()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", preferred_port(port)), self._handler())
        self.server.daemon_threads = True
        self.base_url = f"http://localhost:{self.server.server_address[1]}"  # a name: each proxy its own address
        started = time.time()
        self.docs = generate(self.base_url, urls, per_doc, cache)
        self.generate_s = time.time() - started

    def reset(self) -> None:
        with self._lock:
            self.served = Served()
            self.limiter = RateLimiter(self.rate, self.burst)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, body, headers = site.answer(self.path, self.client_address[0])
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        return Handler

    def answer(self, path: str, client: str) -> tuple[int, bytes, dict[str, str]]:
        retry = self.limiter.admit(client, time.time())
        body = self.docs.get(path)
        status = 429 if retry is not None else 200 if body is not None else 404
        with self._lock:
            self.served.answers[(path, status)] += 1
            self.served.by_client[client] += 1
            self.served.rejected += status == 429
        if retry is not None:
            return 429, b"", {"Retry-After": str(max(1, math.ceil(retry)))}
        if body is None:
            return 404, b"not found", {"Content-Type": "text/plain"}
        kind = "text/plain" if path.endswith(".txt") else "application/gzip" if path.endswith(".gz") else "text/xml"
        return 200, body, {"Content-Type": kind}

    def __enter__(self) -> DiscoverySite:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
