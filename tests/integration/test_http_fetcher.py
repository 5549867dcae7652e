"""The fetcher against a hostile site on loopback: drips, parser tricks in redirects, cookies, charsets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from scrapersky.adapters.http_fetcher import BadHop, RequestsFetcher, hop_target
from scrapersky.domain.outcomes import FetchFailure, FetchResponse
from scrapersky.domain.targets import TargetPolicy
from urllib3.util import parse_url

LOCAL = TargetPolicy(allow_private=True, any_port=True)
UTF8_PAGE = "<html><head><title>Bücher & Café — 東京</title></head><body><h1>Grüße</h1></body></html>"


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cookies_seen: list[str | None] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        route = getattr(self, "_" + url.path.strip("/").replace("-", "_"), None)
        if route is None:
            self._send(404, b"<title>missing</title>")
            return
        route(parse_qs(url.query))

    def _send(self, status: int, body: bytes, ctype: str = "text/html", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, q: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(200):  # one byte every 0.3 s: each read is quick, the whole never comes
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass

    def _drip_headers(self, q: dict[str, list[str]]) -> None:
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 200:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass

    def _redirect(self, q: dict[str, list[str]]) -> None:
        self.send_response(302)
        self.send_header("Location", q["to"][0])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _set_cookie(self, q: dict[str, list[str]]) -> None:
        self._send(200, b"<title>cookie set</title>", Set_Cookie="sid=tenant-a-secret; Path=/")

    def _echo_cookie(self, q: dict[str, list[str]]) -> None:
        _Hostile.cookies_seen.append(self.headers.get("Cookie"))
        self._send(200, b"<title>echo</title>")

    def _utf8_meta(self, q: dict[str, list[str]]) -> None:
        self._send(200, UTF8_PAGE.replace("<head>", '<head><meta charset="utf-8">').encode())

    def _utf8_bare(self, q: dict[str, list[str]]) -> None:
        self._send(200, UTF8_PAGE.encode())

    def _latin1_declared(self, q: dict[str, list[str]]) -> None:
        self._send(200, "<title>Café</title>".encode("latin-1"), ctype="text/html; charset=ISO-8859-1")


class _Internal(BaseHTTPRequestHandler):
    """A service that must never be reached through a redirect (think Redis on 6379)."""

    hits = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        _Internal.hits += 1
        body = b"<title>INTERNAL SECRET</title>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server, url = _serve(_Hostile)
    yield url
    server.shutdown()


@pytest.fixture(scope="module")
def internal() -> Iterator[str]:
    server, url = _serve(_Internal)
    yield url
    server.shutdown()


@pytest.fixture
def fetcher() -> RequestsFetcher:
    return RequestsFetcher(LOCAL, connect_timeout_s=2, read_timeout_s=5)


def test_a_target_dripping_its_body_is_cut_at_the_total_deadline(fetcher, hostile):
    started = time.monotonic()
    got = fetcher.fetch(f"{hostile}/drip", None, timeout_s=1.5, max_bytes=1_000_000)
    took = time.monotonic() - started
    assert isinstance(got, FetchFailure) and got.code == "timeout"
    assert not got.proxy_fault  # a slow target is not the proxy's fault
    assert took < 1.5 + 2.0  # the deadline, not the 60 s the drip would take (generous bound: busy machine)


def test_a_target_dripping_its_headers_is_cut_at_the_total_deadline(fetcher, hostile):
    started = time.monotonic()
    got = fetcher.fetch(f"{hostile}/drip-headers", None, timeout_s=1.5, max_bytes=1_000_000)
    assert isinstance(got, FetchFailure) and got.code == "timeout"
    assert time.monotonic() - started < 1.5 + 2.0


def test_a_backslash_redirect_never_reaches_the_address_urllib3_would_connect_to(fetcher, hostile, internal):
    port = urlsplit(internal).port
    # urlsplit reads this as attacker.example:80; urllib3 (which connects) reads 127.0.0.1:<port>
    location = f"http://127.0.0.1:{port}\\@attacker.example/"
    assert urlsplit(location).hostname == "attacker.example"
    assert (parse_url(location).host, parse_url(location).port) == ("127.0.0.1", port)
    with pytest.raises(BadHop):
        hop_target(location)
    before = _Internal.hits
    got = fetcher.fetch(f"{hostile}/redirect?to={location}", None, timeout_s=5, max_bytes=100_000)
    assert isinstance(got, FetchFailure) and got.code == "bad_redirect" and got.permanent
    assert _Internal.hits == before


@pytest.mark.parametrize("location", ["http://x:99999/", "http://[::1", "http://x:abc/", "http://user:pw@example.com/"])
def test_a_malformed_or_credentialed_redirect_is_a_recorded_failure_not_a_crash(fetcher, hostile, location):
    got = fetcher.fetch(f"{hostile}/redirect?to={location}", None, timeout_s=5, max_bytes=100_000)
    assert isinstance(got, FetchFailure)
    assert got.code in ("bad_redirect", "blocked_target", "bad_url")
    assert got.permanent


def test_a_page_fetch_keeps_no_cookies_for_the_next_fetch(fetcher, hostile):
    first = fetcher.fetch(f"{hostile}/set-cookie", None, timeout_s=5, max_bytes=100_000)
    assert isinstance(first, FetchResponse) and first.status_code == 200
    fetcher.fetch(f"{hostile}/echo-cookie", None, timeout_s=5, max_bytes=100_000)
    assert _Hostile.cookies_seen[-1] is None
    assert len(fetcher.session.cookies) == 0


@pytest.mark.parametrize("path", ["utf8-meta", "utf8-bare"])
def test_a_utf8_page_without_a_charset_header_keeps_its_title(fetcher, hostile, path):
    got = fetcher.fetch(f"{hostile}/{path}", None, timeout_s=5, max_bytes=100_000)
    assert isinstance(got, FetchResponse)
    assert got.summary["title"] == "Bücher & Café — 東京"
    assert got.summary["h1"] == "Grüße"


def test_a_declared_charset_is_honoured(fetcher, hostile):
    got = fetcher.fetch(f"{hostile}/latin1-declared", None, timeout_s=5, max_bytes=100_000)
    assert isinstance(got, FetchResponse) and got.summary["title"] == "Café"


def test_proxy_failures_never_name_the_proxy_to_the_tenant(fetcher, hostile):
    got = fetcher.fetch(f"{hostile}/utf8-bare", "http://user:secret@127.0.0.1:9", timeout_s=3, max_bytes=100_000)
    assert isinstance(got, FetchFailure) and got.proxy_fault
    assert "127.0.0.1" not in got.message and ":9" not in got.message and "secret" not in got.message
