"""Fetcher on `requests`: through a proxy, redirects followed hop by hop through the SSRF guard, a total
deadline on connect, headers and body (http_deadline), a byte cap counted after decompression, and no cookies.
`fetch_stream` does the same for a body read as a stream (a sitemap document), each redirect hop asked first.

Each hop is read with the parser of the client that connects (urllib3's `parse_url`, which requests uses):
Python's `urlsplit` reads `http://127.0.0.1:6379\\@attacker.example/` as a request to attacker.example while
urllib3 connects to 127.0.0.1:6379, so the guard must see what urllib3 will do. Hops with a backslash or
credentials in them are refused outright: no honest site needs them, and parsers disagree on them."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit

import requests
from requests.cookies import RequestsCookieJar
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from scrapersky.adapters.http_deadline import DeadlineAdapter, deadline
from scrapersky.domain.agent import USER_AGENT
from scrapersky.domain.html import decode_html, summarise_html
from scrapersky.domain.outcomes import FetchFailure, FetchResponse
from scrapersky.domain.targets import DEFAULT_PORT_OF, InvalidTarget, TargetPolicy, guard_hop
from scrapersky.ports import Fetcher, HopCheck, Sink

REDIRECTS = {301, 302, 303, 307, 308}
MAX_HOPS = 10
_HEADERS = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
# A plain-http request through a proxy goes over a kept-alive connection to the proxy that urllib3 shares by proxy,
# not by target; some proxies (proxy.py among them) then forward the next request to the previous target's
# upstream. Such a connection is closed after each request; https targets get a tunnel per host, kept alive.
_HEADERS_HTTP_VIA_PROXY = {**_HEADERS, "Connection": "close"}


def resolve(host: str, port: int) -> Iterable[str]:
    return {str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}


class BadHop(Exception):
    """A redirect target that cannot be fetched safely (unparseable, a backslash, credentials)."""


def hop_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) exactly as urllib3 will connect for this URL. Raises BadHop."""
    if "\\" in url:
        raise BadHop("a backslash in the URL")
    try:
        parsed = parse_url(url)
        port = parsed.port
    except (LocationParseError, ValueError) as e:
        raise BadHop(f"not a valid URL: {e}") from None
    scheme = (parsed.scheme or "").lower()
    if parsed.auth:
        raise BadHop("credentials in the URL")
    if not parsed.host:
        raise BadHop("no host")
    host = parsed.host.strip("[]").lower()
    return scheme, host, port or DEFAULT_PORT_OF.get(scheme, 80)


class RequestsFetcher(Fetcher):
    def __init__(
        self,
        policy: TargetPolicy,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.session = session or requests.Session()
        self.session.trust_env = False  # never pick up a proxy or netrc from the environment
        # A page fetch keeps no cookies: one container serves every tenant (sessions are the profile kind's,
        # bound to one proxy and one tenant).
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = DeadlineAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def fetch(self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int) -> FetchResponse | FetchFailure:
        def read(resp: requests.Response, final_url: str, start: float, until: float, hops: int) -> Answer:
            return self._read(resp, final_url, start, until, max_bytes, hops)

        return self._exchange(url, proxy_url, timeout_s, read, None)

    def fetch_stream(
        self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int, sink: Sink, on_hop: HopCheck
    ) -> FetchResponse | FetchFailure:
        def read(resp: requests.Response, final_url: str, start: float, until: float, hops: int) -> Answer:
            return self._stream(resp, final_url, start, until, max_bytes, hops, sink)

        return self._exchange(url, proxy_url, timeout_s, read, on_hop)

    def _exchange(
        self,
        url: str,
        proxy_url: str | None,
        timeout_s: float,
        read: _Read,
        on_hop: HopCheck | None,
        jar: RequestsCookieJar | None = None,
    ) -> Answer:
        """`jar`: a profile check's session cookies, sent and updated on every hop (a page fetch has none)."""
        start = time.monotonic()
        with deadline(timeout_s):
            got = self._follow(url, proxy_url, start, start + timeout_s, read, on_hop, jar)
        if isinstance(got, FetchFailure) and time.monotonic() >= start + timeout_s:
            return FetchFailure("timeout", f"no complete answer within {timeout_s:.1f}s")
        return got

    def _follow(
        self,
        url: str,
        proxy_url: str | None,
        start: float,
        until: float,
        read: _Read,
        on_hop: HopCheck | None,
        jar: RequestsCookieJar | None,
    ) -> Answer:
        current = url
        for hop in range(MAX_HOPS + 1):
            refused = self._guard(current)
            if refused:
                return refused
            if hop and on_hop is not None and not on_hop(current):
                return FetchFailure("redirect_refused", "a redirect to a URL not to be fetched", permanent=True)
            remaining = until - time.monotonic()
            if remaining <= 0:
                return FetchFailure("timeout", "no answer within the deadline")
            resp = self._get(current, proxy_url, remaining, jar)
            if isinstance(resp, FetchFailure):
                return resp
            with resp:
                location = resp.headers.get("Location") if resp.status_code in REDIRECTS else None
                if not location:
                    return read(resp, current, start, until, hop)
            current = urljoin(current, location)
        return FetchFailure("too_many_redirects", f"more than {MAX_HOPS} redirects", permanent=True)

    def _guard(self, url: str) -> FetchFailure | None:
        try:
            scheme, host, port = hop_target(url)
            guard_hop(scheme, host, port, self.policy, resolve)
        except BadHop as e:
            return FetchFailure("bad_redirect", f"refused a redirect: {e}", permanent=True)
        except InvalidTarget as e:
            return FetchFailure("blocked_target", f"refused by the SSRF guard: {e}", permanent=True)
        except (OSError, UnicodeError) as e:
            return FetchFailure("dns_error", f"cannot resolve host: {type(e).__name__}", permanent=True)
        return None

    def _get(
        self, url: str, proxy_url: str | None, remaining: float, jar: RequestsCookieJar | None = None
    ) -> requests.Response | FetchFailure:
        proxies = {"http": proxy_url, "https": proxy_url} if proxy_url else None
        timeout = (min(self.connect_timeout_s, remaining), min(self.read_timeout_s, remaining))
        try:
            headers = _HEADERS_HTTP_VIA_PROXY if proxy_url and url.startswith("http:") else _HEADERS
            resp = self.session.get(
                url, proxies=proxies, allow_redirects=False, stream=True, timeout=timeout, headers=headers, cookies=jar
            )
        except requests.exceptions.RequestException as e:
            return _failure(e, via_proxy=bool(proxy_url))
        except (ValueError, LocationParseError) as e:  # what a malformed URL raises from deep inside the client
            return FetchFailure("bad_url", f"the URL cannot be fetched: {type(e).__name__}", permanent=True)
        if jar is not None:
            for c in resp.cookies:
                jar.set_cookie(c)  # what this hop set (the client's cookie rules bound it to the host that set it)
        return resp

    def probe(self, proxy_url: str) -> bool:
        parts = urlsplit(proxy_url)
        try:
            with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=self.connect_timeout_s):
                return True
        except (OSError, ValueError):
            return False

    def _read(
        self, resp: requests.Response, final_url: str, start: float, until: float, max_bytes: int, hops: int
    ) -> FetchResponse | FetchFailure:
        body = bytearray()
        drained = _drain(resp, until, max_bytes, collect(body))
        if isinstance(drained, FetchFailure):
            return drained
        del body[max_bytes:]
        ctype = resp.headers.get("Content-Type")
        summary: dict[str, str | None] = {}
        if ctype and "html" in ctype.lower():
            summary = summarise_html(decode_html(bytes(body), _declared_charset(resp)))
        return _response(resp, final_url, start, hops, len(body), drained, summary)

    def _stream(
        self, resp: requests.Response, final_url: str, start: float, until: float, max_bytes: int, hops: int, sink: Sink
    ) -> FetchResponse | FetchFailure:
        """A 2xx body goes to the sink; any other answer's body is not read."""
        if not 200 <= resp.status_code < 300:
            return _response(resp, final_url, start, hops, 0, False)
        got = 0

        def counted(chunk: bytes) -> bool:
            nonlocal got
            got += len(chunk)
            return sink(chunk)

        drained = _drain(resp, until, max_bytes, counted)
        if isinstance(drained, FetchFailure):
            return drained
        return _response(resp, final_url, start, hops, got, drained)


Answer = FetchResponse | FetchFailure
_Read = Callable[[requests.Response, str, float, float, int], Answer]


def collect(body: bytearray) -> Sink:
    """A sink that keeps the whole body."""

    def sink(chunk: bytes) -> bool:
        body.extend(chunk)
        return True

    return sink


def _drain(resp: requests.Response, until: float, max_bytes: int, sink: Sink) -> bool | FetchFailure:
    """Hands the body to the sink until its end, the sink's stop or `max_bytes` (then True: truncated)."""
    got = 0
    try:
        for chunk in resp.iter_content(chunk_size=16_384):  # decoded: the cap holds after decompression
            keep = chunk[: max(0, max_bytes - got)]
            got += len(chunk)
            if not sink(keep) or got >= max_bytes:
                return got >= max_bytes
            if time.monotonic() > until:
                return FetchFailure("timeout", "body not received within the deadline")
    except (requests.exceptions.RequestException, OSError) as e:
        return FetchFailure("timeout" if "timed out" in str(e) else "read_error", _kind(e))
    return False


def _response(
    resp: requests.Response,
    final_url: str,
    start: float,
    hops: int,
    size: int,
    truncated: bool,
    summary: dict[str, str | None] | None = None,
) -> FetchResponse:
    return FetchResponse(
        status_code=resp.status_code,
        final_url=final_url,
        content_type=resp.headers.get("Content-Type"),
        bytes=size,
        elapsed_ms=int((time.monotonic() - start) * 1000),
        summary=summary or {},
        retry_after=resp.headers.get("Retry-After"),
        truncated=truncated,
        redirects=hops,
    )


def _declared_charset(resp: requests.Response) -> str | None:
    """The charset the Content-Type names, if any (requests falls back to ISO-8859-1 for text/*: not ours)."""
    ctype = resp.headers.get("Content-Type") or ""
    for part in ctype.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value.strip(" \"'"):
            return value.strip(" \"'")
    return None


def _failure(e: requests.exceptions.RequestException, via_proxy: bool) -> FetchFailure:
    """What went wrong, in words a tenant may read: never the proxy's address or credentials."""
    if isinstance(e, requests.exceptions.ProxyError):
        return FetchFailure("proxy_error", "the proxy failed the request", proxy_fault=True)
    if isinstance(e, requests.exceptions.ConnectTimeout):
        code = "proxy_timeout" if via_proxy else "connect_timeout"
        return FetchFailure(code, "no connection within the connect timeout", proxy_fault=via_proxy)
    if isinstance(e, requests.exceptions.SSLError):
        return FetchFailure("tls_error", "the TLS handshake with the target failed")
    if isinstance(e, requests.exceptions.Timeout):
        return FetchFailure("timeout", "the target did not answer in time")
    if isinstance(e, requests.exceptions.ConnectionError):
        return FetchFailure("connect_error", "the connection failed or was cut", proxy_fault=via_proxy)
    return FetchFailure("fetch_error", f"the request failed: {_kind(e)}", permanent=True)


def _kind(e: Exception) -> str:
    return type(e).__name__
