"""The counting rules of one sitemap item (API.md, `kind: "sitemap"`), as plain data that survives between
invocations: one document is one unit of work, so each document's counts are made on their own (DocumentCount) and
merged into the item's (ItemTally); both go to and from dicts. Which URLs the item already listed and which
documents it already read are asked of small ledgers, kept in memory here and in a table by the service."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from scrapersky.sitemaps.entries import Entry
from scrapersky.sitemaps.faults import Failure
from scrapersky.sitemaps.reader import DocumentRead

MAX_URLS, MAX_DEPTH, MAX_DOCUMENTS = "max_urls", "max_depth", "max_documents"
FOUND, DUPLICATE, FOREIGN, STOP = "found", "duplicate", "foreign", "stop"
MAX_SITEMAP_ENTRIES = 1000  # entries in the item's `sitemaps`; the counts stay exact past it
_PRECEDENCE = (MAX_URLS, MAX_DOCUMENTS, MAX_DEPTH)  # one `truncated` word; the same whatever order documents end in
_DEFAULT_PORTS = {"http": 80, "https": 443}


def site_host(url: str) -> str:
    """The host a `same_host` comparison uses: case, a trailing dot and a leading `www.` do not make another host
    (a site at example.com whose robots.txt lists www.example.com's sitemap lists its own pages)."""
    host = (urlsplit(url if "://" in url else f"https://{url}").hostname or "").rstrip(".")
    return host.removeprefix("www.")


def document_key(url: str) -> str:
    """What makes two document URLs the same document: scheme and host in any case, a default port, a fragment."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


class UrlLedger(Protocol):
    """The URLs an item already listed (in a table in the service: a conditional put per URL)."""

    def __contains__(self, url: object) -> bool: ...

    def add(self, url: str) -> bool:
        """Lists the URL; False when it was listed already."""
        ...


class ListedUrls:
    """An in-memory UrlLedger (one synchronous POST /scrape, tests)."""

    def __init__(self, urls: Iterable[str] = ()) -> None:
        self._urls = set(urls)

    def __contains__(self, url: object) -> bool:
        return url in self._urls

    def __len__(self) -> int:
        return len(self._urls)

    def add(self, url: str) -> bool:
        before = len(self._urls)
        self._urls.add(url)
        return len(self._urls) > before


@dataclass
class DocumentCount:
    """What one document added to its item, built while it is read."""

    url: str
    depth: int  # 1 for the item's first documents, d+1 for those a depth-d index lists
    type: str | None = None  # None until read, and for a document that was no sitemap
    status_code: int | None = None
    urls: int = 0  # the URLs this document added (its urls_found)
    duplicates: int = 0
    skipped_foreign: int = 0
    failure: Failure | None = None
    truncated: str | None = None  # MAX_URLS when reading stopped there (the document still counts as ok)

    def finish(self, status_code: int | None, read: DocumentRead | None, failure: Failure | None = None) -> None:
        """Records how the document ended: the reader's result, or `failure` for a fetch that came to nothing."""
        self.status_code = status_code
        self.type = None if read is None else read.type
        self.failure = failure or (None if read is None or self.truncated else read.failure)

    def summary(self) -> dict[str, Any]:
        """The document's entry in the item's `sitemaps`."""
        error = None if self.failure is None else self.failure.to_dict()
        return {"url": self.url, "type": self.type, "status_code": self.status_code, "urls": self.urls, "error": error}

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "failure": None if self.failure is None else self.failure.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentCount:
        failure = data.get("failure")
        return cls(**{**data, "failure": None if failure is None else Failure.from_dict(failure)})


class EntryCounter:
    """Counts one document's entries in reading order: another host (with `same_host`) → skipped_foreign, already
    listed → duplicates, else urls_found while the item's budget (max_urls less what it found) lasts. The first new
    URL past the budget stops the document: STOP, and `truncated` is max_urls."""

    def __init__(self, count: DocumentCount, host: str, same_host: bool, budget: int, listed: UrlLedger) -> None:
        self.doc = count
        self._host = host
        self._same_host = same_host
        self._budget = budget
        self._listed = listed

    def count(self, url: str) -> str:
        if self._same_host and site_host(url) != self._host:
            self.doc.skipped_foreign += 1
            return FOREIGN
        if self._budget <= 0 and url not in self._listed:
            self.doc.truncated = MAX_URLS
            return STOP
        if not self._listed.add(url):
            self.doc.duplicates += 1
            return DUPLICATE
        self.doc.urls += 1
        self._budget -= 1
        return FOUND

    def found(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        """The entries that count as urls_found (those to store), in order, up to max_urls."""
        for entry in entries:
            verdict = self.count(entry.url)
            if verdict == STOP:
                return
            if verdict == FOUND:
                yield entry


def stronger(reason: str | None, other: str | None) -> str | None:
    """Of two truncation reasons, the one the item shows."""
    for word in _PRECEDENCE:
        if word in (reason, other):
            return word
    return None


@dataclass
class ItemTally:
    """The item's counts, merged one document at a time (counts add up, so the merge order does not matter)."""

    urls_found: int = 0
    duplicates: int = 0
    skipped_foreign: int = 0
    documents_ok: int = 0  # read to their end without fault, or stopped by max_urls
    documents_failed: int = 0
    truncated: str | None = None  # max_urls, max_documents or max_depth when something was left out
    sitemaps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def documents(self) -> int:
        return self.documents_ok + self.documents_failed

    @property
    def stopped(self) -> bool:
        """max_urls stopped discovery: no further document is fetched."""
        return self.truncated == MAX_URLS

    def budget(self, max_urls: int) -> int:
        return max(0, max_urls - self.urls_found)

    def truncate(self, reason: str | None) -> None:
        self.truncated = stronger(self.truncated, reason)

    def merge(self, doc: DocumentCount) -> None:
        self.urls_found += doc.urls
        self.duplicates += doc.duplicates
        self.skipped_foreign += doc.skipped_foreign
        if doc.failure is None:
            self.documents_ok += 1
        else:
            self.documents_failed += 1
        self.truncate(doc.truncated)
        if len(self.sitemaps) < MAX_SITEMAP_ENTRIES:
            self.sitemaps.append(doc.summary())

    def result(self) -> dict[str, Any]:
        """The item's result, in API.md's shape."""
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "sitemaps": [dict(entry) for entry in self.sitemaps]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemTally:
        return cls(**{**data, "sitemaps": [dict(entry) for entry in data.get("sitemaps", [])]})
