"""Fetcher on `requests`: through a proxy, redirects followed hop by hop through the SSRF guard,
connect/read timeouts, a total deadline and a byte cap counted after decompression."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import requests

from scrapersky.domain.html import summarise_html
from scrapersky.domain.outcomes import FetchFailure, FetchResponse
from scrapersky.domain.targets import InvalidTarget, TargetPolicy, guard_resolved
from scrapersky.ports import Fetcher

REDIRECTS = {301, 302, 303, 307, 308}
MAX_HOPS = 10
USER_AGENT = "ScraperSky/0.1 (+https://github.com/scrapersky)"


def resolve(host: str, port: int) -> Iterable[str]:
    return {str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}


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

    def fetch(self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int) -> FetchResponse | FetchFailure:
        start = time.monotonic()
        deadline = start + timeout_s
        proxies = {"http": proxy_url, "https": proxy_url} if proxy_url else None
        current = url
        for hop in range(MAX_HOPS + 1):
            try:
                guard_resolved(current, self.policy, resolve)
            except InvalidTarget as e:
                return FetchFailure("blocked_target", f"refused by the SSRF guard: {e}", permanent=True)
            except (socket.gaierror, UnicodeError) as e:
                return FetchFailure("dns_error", f"cannot resolve host: {e}", permanent=True)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return FetchFailure("timeout", f"no answer within {timeout_s:.1f}s")
            try:
                resp = self.session.get(
                    current,
                    proxies=proxies,
                    allow_redirects=False,
                    stream=True,
                    timeout=(min(self.connect_timeout_s, remaining), min(self.read_timeout_s, remaining)),
                    headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
                )
            except requests.exceptions.ProxyError as e:
                return FetchFailure("proxy_error", f"proxy failed: {_short(e)}", proxy_fault=True)
            except requests.exceptions.ConnectTimeout as e:
                return FetchFailure(
                    "proxy_timeout" if proxy_url else "connect_timeout", _short(e), proxy_fault=bool(proxy_url)
                )
            except requests.exceptions.SSLError as e:
                return FetchFailure("tls_error", _short(e))
            except requests.exceptions.Timeout as e:
                return FetchFailure("timeout", _short(e))
            except requests.exceptions.ConnectionError as e:
                return FetchFailure("connect_error", _short(e), proxy_fault=bool(proxy_url))
            except requests.exceptions.RequestException as e:
                return FetchFailure("fetch_error", _short(e), permanent=True)
            with resp:
                if resp.status_code in REDIRECTS and resp.headers.get("Location"):
                    if hop == MAX_HOPS:
                        return FetchFailure("too_many_redirects", f"more than {MAX_HOPS} redirects", permanent=True)
                    current = urljoin(current, resp.headers["Location"])
                    continue
                return self._read(resp, current, start, deadline, max_bytes, hop)
        return FetchFailure("too_many_redirects", f"more than {MAX_HOPS} redirects", permanent=True)

    def probe(self, proxy_url: str) -> bool:
        parts = urlsplit(proxy_url)
        try:
            with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=self.connect_timeout_s):
                return True
        except OSError:
            return False

    def _read(
        self, resp: requests.Response, final_url: str, start: float, deadline: float, max_bytes: int, hops: int
    ) -> FetchResponse | FetchFailure:
        body = bytearray()
        truncated = False
        try:
            for chunk in resp.iter_content(chunk_size=16_384):  # decoded: the cap holds after decompression
                body.extend(chunk)
                if len(body) >= max_bytes:
                    del body[max_bytes:]
                    truncated = True
                    break
                if time.monotonic() > deadline:
                    return FetchFailure("timeout", "body not received within the deadline")
        except requests.exceptions.RequestException as e:
            return FetchFailure("timeout" if "timed out" in str(e) else "read_error", _short(e))
        ctype = resp.headers.get("Content-Type")
        summary: dict[str, str | None] = {}
        if ctype and ("html" in ctype.lower()):
            summary = summarise_html(bytes(body).decode(resp.encoding or "utf-8", errors="replace"))
        return FetchResponse(
            status_code=resp.status_code,
            final_url=final_url,
            content_type=ctype,
            bytes=len(body),
            elapsed_ms=int((time.monotonic() - start) * 1000),
            summary=summary,
            retry_after=resp.headers.get("Retry-After"),
            truncated=truncated,
            redirects=hops,
        )


def _short(e: Exception) -> str:
    text = str(e)
    return text if len(text) <= 300 else text[:297] + "..."
