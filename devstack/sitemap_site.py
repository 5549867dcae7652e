"""A loopback site publishing a sitemap family for the sitemap kind's tests: an index three levels deep, gzip both
ways (magic bytes, Content-Encoding), a loop, a diamond, a bomb, a DTD, truncated XML, no namespace, text, RSS and
Atom, 404/500/429 children and a redirect back to a document already read; the pages they list are served too, and
robots.txt disallows one of them for our user agent (options.follow). Every GET is counted by path, so a test
can assert that each document was fetched once. Small documents: the e2e stays fast."""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
INDEX_CHILDREN = (
    "/a.xml",
    "/b.xml.gz",
    "/deep1.xml",
    "/gone.xml",
    "/err.xml",
    "/slow.xml",
    "/index.xml",  # a loop back to itself
    "/text.txt",
    "/feed.rss",
    "/atom.xml",
    "/bomb.xml",
    "/dtd.xml",
    "/cut.xml",
    "/nons.xml",
    "/moved.xml",  # a redirect to /a.xml, read already
)


def urlset(base: str, *paths: str, ns: bool = True) -> bytes:
    rows = "".join(f"<url><loc>{base}{p}</loc><changefreq>daily</changefreq></url>" for p in paths)
    return f'<?xml version="1.0"?><urlset {NS if ns else ""}>{rows}</urlset>'.encode()


def index(base: str, *paths: str) -> bytes:
    rows = "".join(f"<sitemap><loc>{base}{p}</loc></sitemap>" for p in paths)
    return f"<sitemapindex {NS}>{rows}</sitemapindex>".encode()


def _documents(base: str) -> dict[str, tuple[int, bytes, dict[str, str]]]:
    rss = f'<rss version="2.0"><channel><link>{base}/</link><item><link>{base}/r/1</link></item></channel></rss>'
    atom = (
        f'<feed xmlns="http://www.w3.org/2005/Atom"><link href="{base}/"/>'
        f'<entry><link rel="alternate" href="{base}/f/1"/></entry></feed>'
    )
    dtd = (
        f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "x">]><urlset {NS}><url><loc>{base}/x</loc></url></urlset>'
    )
    ok: dict[str, str] = {}
    gz = {"Content-Encoding": "gzip"}
    return {
        "/robots.txt": (200, ROBOTS.format(base=base).encode(), ok),
        "/index.xml": (200, index(base, *INDEX_CHILDREN), ok),
        "/deep1.xml": (200, index(base, "/deep2.xml", "/a.xml"), ok),  # a diamond: a.xml twice
        "/deep2.xml": (200, gzip.compress(index(base, "/deep3.xml.gz"), mtime=0), gz),  # Content-Encoding
        "/deep3.xml.gz": (200, gzip.compress(urlset(base, "/d/1"), mtime=0), ok),  # gzip by its magic bytes
        "/a.xml": (200, urlset(base, "/a/1", "/a/2"), ok),
        "/b.xml.gz": (200, gzip.compress(urlset(base, "/b/1", "/a/1"), mtime=0), ok),
        "/gone.xml": (404, b"gone", ok),
        "/err.xml": (500, b"oops", ok),
        "/text.txt": (200, f"{base}/t/1\n{base}/t/2\nnot a url\n".encode(), ok),
        "/feed.rss": (200, rss.encode(), ok),
        "/atom.xml": (200, atom.encode(), ok),
        "/bomb.xml": (200, gzip.compress(b"<urlset>" + b" " * 60_000_000, compresslevel=9, mtime=0), ok),
        "/dtd.xml": (200, dtd.encode(), ok),
        "/cut.xml": (200, urlset(base, "/c/1", "/c/2")[:-60], ok),  # cut inside the second <loc>
        "/nons.xml": (200, urlset(base, "/n/1", ns=False), ok),
        "/moved.xml": (302, b"", {"Location": f"{base}/a.xml"}),
    }


# Any other crawler may read nothing; ours (the configured user agent) all but /c/: a follow of the discovered URLs
# that obeys robots.txt skips /c/1, and one that read the `*` group would skip everything
ROBOTS = "User-agent: *\nDisallow: /\n\nUser-agent: ScraperSky\nDisallow: /c/\n\nSitemap: {base}/index.xml\n"
DISALLOWED_PATHS = ("/c/1",)


# What discovery of this site finds (the URL set), and its counts
EXPECTED_FAILURES = {  # document -> the code it fails with
    "/gone.xml": "http_404",
    "/err.xml": "http_500",
    "/bomb.xml": "too_large",
    "/dtd.xml": "xml_dtd_forbidden",
    "/cut.xml": "malformed_xml",
}
EXPECTED_PATHS = ("/a/1", "/a/2", "/b/1", "/d/1", "/s/1", "/t/1", "/t/2", "/r/1", "/f/1", "/c/1", "/n/1")


class SitemapSite:
    """`with SitemapSite() as s:` serves on 127.0.0.1; `s.fetched` counts GETs by path; /slow.xml answers 429
    (Retry-After: 1) the first time."""

    def __init__(self) -> None:
        self.fetched: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._docs = _documents(self.base_url)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, headers = site.answer(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        return Handler

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            self.fetched[path] += 1
            first = self.fetched[path] == 1
        if path == "/slow.xml":
            return (429, b"", {"Retry-After": "1"}) if first else (200, urlset(self.base_url, "/s/1"), {})
        if path in EXPECTED_PATHS:  # the pages the sitemaps list: what a follow into a page batch fetches
            html = f"<html><head><title>Page {path}</title></head><body><h1>{path}</h1></body></html>"
            return 200, html.encode(), {"Content-Type": "text/html; charset=utf-8"}
        return self._docs.get(path, (404, b"not found", {}))

    def __enter__(self) -> SitemapSite:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
