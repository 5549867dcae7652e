"""Which documents an item reads, and at what depth: each document at most once per item (loops, diamonds and
redirects back to a parent are followed once), none deeper than max_depth, at most max_documents. Plain data, so
the service can keep it between invocations (or as one conditional put per document key)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scrapersky.sitemaps.options import SitemapOptions
from scrapersky.sitemaps.tally import MAX_DEPTH, MAX_DOCUMENTS, document_key


@dataclass
class DocumentsRead:
    """The documents an item read or queued (by document_key), and how many fetches that reserved."""

    keys: dict[str, None] = field(default_factory=dict)
    reserved: int = 0

    def __contains__(self, url: object) -> bool:
        return isinstance(url, str) and document_key(url) in self.keys

    def claim(self, url: str, reserve: bool = True) -> bool:
        """Marks a document as read; False when it was already (then it is not fetched). A redirect hop is claimed
        with `reserve=False`: it is the same fetch, not another document."""
        key = document_key(url)
        if key in self.keys:
            return False
        self.keys[key] = None
        self.reserved += int(reserve)
        return True

    def release(self) -> None:
        """A reserved fetch that turned out to be no document (a redirect to a document already read)."""
        self.reserved = max(0, self.reserved - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "reserved": self.reserved}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentsRead:
        return cls(dict.fromkeys(data["keys"]), data["reserved"])


@dataclass(frozen=True)
class Plan:
    """The documents to fetch, with their depth, and what was left out (`max_depth`, `max_documents` or None)."""

    fetch: tuple[tuple[str, int], ...]
    truncated: str | None


def plan_documents(urls: Iterable[str], depth: int, options: SitemapOptions, read: DocumentsRead) -> Plan:
    """Claims the documents to fetch at `depth` (1 for an item's first documents, d+1 for those a depth-d index
    lists). One already read is skipped without a word; one too deep or past max_documents is left out and says so."""
    fetch: list[tuple[str, int]] = []
    truncated: str | None = None
    for url in urls:
        if url in read:
            continue
        if depth > options.max_depth:
            truncated = MAX_DEPTH
        elif read.reserved >= options.max_documents:
            truncated = truncated or MAX_DOCUMENTS
        elif read.claim(url):
            fetch.append((url, depth))
    return Plan(tuple(fetch), truncated)
