"""Ports of the sitemap kind: an item's documents (each its own unit of work, counted like a batch's items) and the
URLs they discovered. Adapters: adapters/dynamo_documents.py and adapters/dynamo_urls.py; fakes in tests/fakes.

An item's documents are rows of their own, keyed by document_key (so each is read at most once per item), with a
conditional status each: pending -> in_progress (one delivery's claim) -> done. Beside them one progress row counts
what the finished documents added and how many are still open; the item ends when the last one is done."""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from scrapersky.ports import Claim, ClaimRefused
from scrapersky.records import ItemError
from scrapersky.sitemaps.tally import DocumentCount, document_key

ROBOTS, PROBE, DOCUMENT = "robots", "probe", "document"  # the roles of an item's units
# where a unit's row stands; an alias row marks a redirect hop to a document (read once, never fetched itself)
PENDING, IN_PROGRESS, DONE, ALIAS = "pending", "in_progress", "done", "alias"
CHECKPOINT = "checkpoint"  # a unit's result key: the document stored part of its URLs and goes on from there


def doc_key(url: str) -> str:
    """The key of a document within its item: a hash of document_key (scheme and host case, default port and
    fragment do not make another document)."""
    return hashlib.sha256(document_key(url).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DocRef:
    """Where one unit of a sitemap item lives: the item (batch and seq) and the document's key."""

    batch_id: str
    seq: int
    key: str

    @classmethod
    def of(cls, batch_id: str, seq: int, url: str) -> DocRef:
        return cls(batch_id, seq, doc_key(url))


@dataclass(frozen=True)
class DocumentPlan:
    """A unit of work of a sitemap item: robots.txt, a probe (`/sitemap.xml`, then `/sitemap_index.xml`) or a
    document at its depth. `parent` is the key of the unit that planned it (None for the item's first unit)."""

    url: str
    depth: int = 1
    role: str = DOCUMENT
    probe: int = 0
    parent: str | None = None

    @property
    def key(self) -> str:
        return doc_key(self.url)

    def to_unit(self) -> dict[str, Any]:
        """The work message's `unit`."""
        return {"url": self.url, "depth": self.depth, "role": self.role, "probe": self.probe}

    @classmethod
    def from_unit(cls, unit: dict[str, Any]) -> DocumentPlan:
        return cls(
            str(unit["url"]), int(unit.get("depth", 1)), str(unit.get("role", DOCUMENT)), int(unit.get("probe", 0))
        )


@dataclass(frozen=True)
class DocumentRecord:
    ref: DocRef
    url: str
    depth: int
    role: str
    status: str  # pending | in_progress | done (| alias: a redirect hop of document `parent`)
    parent: str | None = None
    claim: str | None = None
    claim_until: float | None = None
    attempts: int = 0
    deferrals: int = 0
    last_proxy: str | None = None
    got: int = 0  # the URL budget granted to this document so far (kept over a redelivery)
    summary: dict[str, Any] | None = None  # its entry in the item's `sitemaps` (None: it was no document)
    finished_at: float | None = None
    resume: dict[str, Any] | None = None  # a document read in parts: where the next delivery goes on (Checkpoint)


@dataclass(frozen=True)
class ItemProgress:
    """The progress row of one sitemap item: what its finished documents added, and how many are still open."""

    open: int = 0  # units planned and not done
    planned: int = 0  # documents fetched or to be (what max_documents counts)
    granted: int = 0  # URL budget granted to documents (found + what running documents may still find)
    urls_found: int = 0
    duplicates: int = 0
    skipped_foreign: int = 0
    documents_ok: int = 0
    documents_failed: int = 0
    truncated: frozenset[str] = field(default_factory=frozenset)  # every reason met (the item shows one)

    @property
    def documents(self) -> int:
        return self.documents_ok + self.documents_failed


class Planned(StrEnum):
    NEW = "new"  # planned now: send its unit
    OURS = "ours"  # planned by this same parent before (a redelivery): send its unit again, harmlessly
    READ = "read"  # the item already read or queued it: skipped without a word
    FULL = "full"  # max_documents reached: left out


@dataclass(frozen=True)
class DocumentEnd:
    """How a unit ended. `count` None: it was no document (robots.txt, a probe that held no sitemap, a redirect to a
    document already read); `release` gives its reserved document slot back."""

    count: DocumentCount | None
    release: bool = False

    @property
    def summary(self) -> dict[str, Any] | None:
        return None if self.count is None else self.count.summary()


class ItemDocuments(abc.ABC):
    """An item's documents and its progress row. Every change is conditional: a unit processed twice counts once."""

    @abc.abstractmethod
    def begin(self, batch_id: str, seq: int, first: DocumentPlan, now: float) -> None:
        """Stores the progress row (one open unit; a document reserves its slot) and the first unit's row, if they
        do not exist yet (a redelivered first message changes nothing)."""

    @abc.abstractmethod
    def plan(self, batch_id: str, seq: int, doc: DocumentPlan, max_documents: int | None, now: float) -> Planned:
        """Adds a unit to the item (one more open; a document also takes one of max_documents slots, unless
        max_documents is None), unless the item already has that document."""

    @abc.abstractmethod
    def alias(self, ref: DocRef, url: str, now: float) -> bool:
        """A redirect hop of document `ref` to `url`: False when the item already has that other document (then it
        is not fetched)."""

    @abc.abstractmethod
    def truncate(self, batch_id: str, seq: int, reason: str) -> None:
        """Something was left out for `reason` (max_depth, max_documents, max_urls)."""

    @abc.abstractmethod
    def get(self, ref: DocRef) -> DocumentRecord | None: ...

    @abc.abstractmethod
    def progress(self, batch_id: str, seq: int) -> ItemProgress | None: ...

    @abc.abstractmethod
    def claim(self, ref: DocRef, token: str, until: float, now: float) -> Claim | ClaimRefused:
        """pending -> in_progress for this delivery (a lapsed claim is taken over); refused when done or busy."""

    @abc.abstractmethod
    def requeue(
        self, ref: DocRef, token: str, now: float, *, attempt_spent: bool, proxy_id: str | None, error: ItemError | None
    ) -> bool:
        """in_progress -> pending: a retry (attempt_spent) or a rate-limit deferral."""

    @abc.abstractmethod
    def checkpoint(self, ref: DocRef, token: str, resume: dict[str, Any], now: float) -> bool:
        """in_progress (claimed by `token`) -> pending with `resume` kept on the row, spending no attempt: the
        document stored part of its URLs in this delivery and goes on in the next one. False when the claim is
        gone."""

    @abc.abstractmethod
    def grant(self, ref: DocRef, token: str, want: int, max_urls: int) -> int:
        """Reserves up to `want` more of the item's max_urls for this document (0 when none is left)."""

    @abc.abstractmethod
    def finish(self, ref: DocRef, token: str, end: DocumentEnd, now: float) -> ItemProgress | None:
        """in_progress (claimed by `token`) -> done, with its counts added to the progress row and its unused budget
        given back, in one write. The progress after it; None when the change lost (done already, claim gone)."""

    @abc.abstractmethod
    def summaries(self, batch_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        """The `sitemaps` entries of the item's finished documents (depth, then finishing order), at most `limit`."""


@dataclass(frozen=True)
class DiscoveredUrl:
    """One URL an item discovered, with the document that listed it and its place there (`pos`: the entry's index in
    reading order, so a redelivered document recognises its own URLs)."""

    url: str
    sitemap: str
    item: str
    doc: str
    pos: int
    lastmod: str | None = None
    changefreq: str | None = None
    priority: float | None = None

    def view(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "lastmod": self.lastmod,
            "changefreq": self.changefreq,
            "priority": self.priority,
            "sitemap": self.sitemap,
            "item": self.item,
        }


class DiscoveredUrls(abc.ABC):
    """The URLs of a batch's items, unique per item."""

    @abc.abstractmethod
    def add(self, batch_id: str, seq: int, urls: list[DiscoveredUrl]) -> list[bool]:
        """Stores each URL unless the item listed it already: True where it is new to the item, or was stored by
        the same document at the same place (a redelivery counts it again, once)."""

    @abc.abstractmethod
    def listed(self, batch_id: str, seq: int, url: str) -> bool: ...

    @abc.abstractmethod
    def page(
        self, batch_id: str, seqs: range, limit: int, cursor: str | None
    ) -> tuple[list[DiscoveredUrl], str | None]:
        """URLs of the items `seqs`, in a stable order, from the cursor. Raises InvalidCursor for one we did not
        give out. A page may be short (it reads a bounded number of partitions) and still have a next cursor."""
