"""One entry of a sitemap document and the normalising of its fields, as API.md words them: `lastmod` ISO 8601 (a
date stays a date, a datetime keeps its instant and offset, `YYYY` and `YYYY-MM` stay as written, anything else is
null), `changefreq` one of the seven values or null, `priority` 0..1 or null. A bad field never drops the URL."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

CHANGEFREQS = frozenset({"always", "hourly", "daily", "weekly", "monthly", "yearly", "never"})
MAX_URL_LENGTH = 8192  # far past the protocol's 2,048; longer values are dropped rather than stored

_PARTIAL_DATE = re.compile(r"\d{4}(-(0[1-9]|1[0-2]))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?")
_HTTP = frozenset({"http", "https"})


@dataclass(frozen=True)
class Entry:
    """A URL a document lists (for an index: a child sitemap), its fields already normalised."""

    url: str
    lastmod: str | None = None  # ISO 8601, or as written for YYYY and YYYY-MM
    changefreq: str | None = None  # one of CHANGEFREQS
    priority: float | None = None  # 0..1


def http_url(text: str, base: str | None = None) -> str | None:
    """The trimmed value when it is an absolute http(s) URL with a host (a relative one only with `base`), else
    None: entries of other schemes are ignored, as API.md says."""
    value = text.strip()
    if not value or len(value) > MAX_URL_LENGTH:
        return None
    if base is not None:
        value = urljoin(base, value)
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # a bad port or IPv6 literal
        return None
    return value if parts.scheme.lower() in _HTTP and host else None


def normalise_lastmod(text: str | None) -> str | None:
    """W3C datetime as ISO 8601; a partial date (`2024`, `2024-05`) as written, never completed."""
    value = (text or "").strip()
    try:
        if _PARTIAL_DATE.fullmatch(value):
            return value
        if _DATE.fullmatch(value):
            return date.fromisoformat(value).isoformat()
        if _DATETIME.fullmatch(value):
            return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).isoformat()
    except ValueError:  # 2024-02-30, 25:00
        return None
    return None


def normalise_rfc822(text: str | None) -> str | None:
    """An RSS `pubDate` (RFC 822) as an ISO 8601 datetime, or None."""
    try:
        return parsedate_to_datetime((text or "").strip()).isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def normalise_changefreq(text: str | None) -> str | None:
    value = (text or "").strip().lower()
    return value if value in CHANGEFREQS else None


def normalise_priority(text: str | None) -> float | None:
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None
