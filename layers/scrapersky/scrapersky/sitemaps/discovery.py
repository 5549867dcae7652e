"""Where an item's sitemaps are: the `Sitemap:` lines of the site's robots.txt, else `/sitemap.xml`, else
`/sitemap_index.xml` (API.md, `kind: "sitemap"`). The same robots.txt answers the follow-robots rule and gives the
`Crawl-delay`. protego parses; what it leaves to us (a UTF-8 BOM hiding the first line, relative and repeated
`Sitemap:` values) is done here."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from scrapersky.domain.agent import USER_AGENT
from scrapersky.domain.host_limits import CrawlDelay
from scrapersky.sitemaps.entries import http_url
from scrapersky.sitemaps.markup import TEXT
from scrapersky.sitemaps.reader import DocumentRead

if TYPE_CHECKING:
    from protego import Protego

MAX_ROBOTS_BYTES = 512_000  # RFC 9309: a crawler must read at least 500 KiB; what is past it is not parsed
PROBE_PATHS = ("/sitemap.xml", "/sitemap_index.xml")


def site_root(item_url: str) -> str | None:
    """`https://host[:port]/` when the item is a site (no path but `/`, no query): discovery. None when the item is
    the URL of one sitemap document, read directly. A bare domain is a site (https)."""
    parts = urlsplit(item_url if "://" in item_url else f"https://{item_url}")
    if parts.path not in ("", "/") or parts.query:
        return None
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


def robots_url(root: str) -> str:
    return urljoin(root, "/robots.txt")


def probe_urls(root: str) -> tuple[str, ...]:
    """The URLs to try, in order, when robots.txt names no sitemap; the first that holds a sitemap is the item's
    first document and the next one is not tried."""
    return tuple(urljoin(root, path) for path in PROBE_PATHS)


def holds_sitemap(status_code: int | None, read: DocumentRead | None) -> bool:
    """Whether a probe found a sitemap (then it is a document, its entries counted) or not (then it is no document
    at all): a non-2xx answer, an empty body, HTML, an XML root that is no sitemap, XML broken before its root, or
    text without one URL line hold none. A sitemap that fails later (cut at the cap, broken XML, a DTD naming a
    sitemap root) is a failed document, not an absent one."""
    if status_code is None or not 200 <= status_code < 300 or read is None or read.type is None:
        return False
    return read.type != TEXT or read.entries > 0


def _unique_http(values: Iterable[str], base: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        url = http_url(value, base)
        if url is not None:
            seen.setdefault(url, None)
    return tuple(seen)


@dataclass(frozen=True)
class RobotsFile:
    """A site's robots.txt as read once: its sitemaps and the rules for a user agent. `parser` None means no rules:
    everything allowed (a 4xx, as RFC 9309 says) or, with `disallow_all`, nothing (unreachable: 5xx or no answer)."""

    url: str
    parser: Protego | None = None
    disallow_all: bool = False
    sitemaps: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, url: str, body: bytes) -> RobotsFile:
        text = body[:MAX_ROBOTS_BYTES].decode("utf-8-sig", errors="replace")
        from protego import Protego  # loaded by the sitemap kind only

        parser = Protego.parse(text)
        return cls(url, parser, sitemaps=_unique_http(parser.sitemaps, url))

    @classmethod
    def from_response(cls, url: str, status_code: int | None, body: bytes = b"") -> RobotsFile:
        """After redirects: 2xx parsed, 4xx allows everything and names no sitemap, anything else (5xx, no answer
        after the retries) disallows everything and names no sitemap."""
        if status_code is not None and 200 <= status_code < 300:
            return cls.parse(url, body)
        return cls(url, disallow_all=status_code is None or not 400 <= status_code < 500)

    def allowed(self, url: str, user_agent: str) -> bool:
        if self.parser is None:
            return not self.disallow_all
        return bool(self.parser.can_fetch(url, user_agent))

    def learnt_delay(self) -> CrawlDelay | None:
        """What this read teaches of the host's pace for our user agent: its Crawl-delay (CrawlDelay(None): it
        asks none, so a delay learnt before goes); None when the robots.txt could not be read (nothing learnt)."""
        if self.parser is None and self.disallow_all:
            return None
        return CrawlDelay.of(self.crawl_delay(USER_AGENT))

    def crawl_delay(self, user_agent: str) -> float | None:
        """Seconds between two requests to the host for this user agent; None when absent or nonsense."""
        if self.parser is None:
            return None
        try:
            delay = self.parser.crawl_delay(user_agent)
        except (TypeError, ValueError):
            return None
        if delay is None or not math.isfinite(float(delay)) or float(delay) < 0:
            return None
        return float(delay)
