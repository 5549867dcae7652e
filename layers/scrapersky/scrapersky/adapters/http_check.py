"""The profile kind's fetch (profile_ports.CheckFetcher) on the page fetcher: the same SSRF guard on every hop,
deadline and byte cap, plus a session's cookies. The jar is the call's own (built from the session, handed back
with what the site set): the shared requests session keeps no cookies, so nothing crosses tenants or proxies."""

from __future__ import annotations

from http.cookiejar import CookieJar
from typing import cast

import requests
from requests.cookies import RequestsCookieJar, create_cookie

from scrapersky.adapters.http_fetcher import Answer, RequestsFetcher, collect
from scrapersky.adapters.http_fetcher import _drain as drain
from scrapersky.checks import CheckFetch
from scrapersky.domain.html import decode_html
from scrapersky.domain.outcomes import FetchFailure
from scrapersky.profile_ports import CheckFetched, CheckFetcher, Cookie, Jar


def to_jar(cookies: Jar) -> RequestsCookieJar:
    jar = RequestsCookieJar()
    for c in cookies:
        jar.set_cookie(create_cookie(c.name, c.value, domain=c.domain, path=c.path, secure=c.secure, expires=c.expires))
    return jar


def from_jar(jar: CookieJar) -> Jar:
    return tuple(Cookie(c.name, c.value or "", c.domain, c.path, bool(c.secure), c.expires) for c in jar)


class CheckingFetcher(RequestsFetcher, CheckFetcher):
    """The page fetcher that can also fetch a profile check with a session's cookies."""

    def fetch_check(self, url: str, proxy_url: str, timeout_s: float, max_bytes: int, cookies: Jar) -> CheckFetched:
        jar = to_jar(cookies)
        hops: list[str] = []

        def hop(next_url: str) -> bool:
            hops.append(next_url)
            return True

        def read(resp: requests.Response, final_url: str, start: float, until: float, _hops: int) -> Answer:
            # the page fetcher's reader shape: a check's answer goes through it untouched
            return cast(Answer, _read_check(resp, final_url, until, max_bytes, tuple(hops)))

        got = self._exchange(url, proxy_url, timeout_s, read, hop, jar)
        return CheckFetched(cast(CheckFetch | FetchFailure, got), from_jar(jar))


def _read_check(
    resp: requests.Response, final_url: str, until: float, max_bytes: int, hops: tuple[str, ...]
) -> CheckFetch | FetchFailure:
    body = bytearray()
    drained = drain(resp, until, max_bytes, collect(body)) if 200 <= resp.status_code < 300 else False
    if isinstance(drained, FetchFailure):
        return drained
    return CheckFetch(
        status_code=resp.status_code,
        final_url=final_url,
        redirect_urls=hops,
        content_type=resp.headers.get("Content-Type"),
        body=decode_html(bytes(body[:max_bytes]), None),
        retry_after=resp.headers.get("Retry-After"),
        truncated=bool(drained),
    )
