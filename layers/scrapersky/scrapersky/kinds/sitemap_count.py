"""What one sitemap document does to its item, through the ledgers the service binds to the document's claim: its
URLs counted and stored in chunks (transactions of conditional puts, in parallel, the item's max_urls granted as
needed) and the documents an index lists planned. The counting rules are sitemaps.tally's: in reading order, another
host (with `same_host`) -> skipped_foreign, already listed for the item -> duplicates, else urls_found; the first new
URL past max_urls stops the document.

A document read in parts (kinds/sitemap.py checkpoints one too big to store in one delivery) goes on from its
Checkpoint: its entries before `pos` were counted and stored by earlier deliveries, so they are only read again
(for the document's own duplicates), and its counts go on from the checkpoint's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from scrapersky.models import WorkMessage
from scrapersky.sitemap_ports import DocumentPlan
from scrapersky.sitemaps import DocumentCount, Entry, SitemapOptions, site_host
from scrapersky.sitemaps.tally import MAX_URLS

CHUNK = 800  # entries stored in one go: 8 transactions of 100, run at once (settings.url_write_concurrency)


class DocumentJob(Protocol):
    """One document unit's view of its item (services/documents.py binds it to the unit's claim)."""

    plan: DocumentPlan
    options: SitemapOptions
    host: str  # the item's site host, for `same_host`
    granted: int  # budget this document was granted before (a redelivery finds it)
    resume: dict[str, Any] | None  # the checkpoint of a document read in parts (None: from its start)
    resumable: bool  # a document may checkpoint and go on in another delivery

    def hop(self, url: str) -> bool:
        """A redirect hop of this document: False when the item already has that other document."""
        ...

    def store(self, entries: list[tuple[int, Entry]]) -> list[bool]:
        """Stores the entries (with their place in the document); True where new to the item (or ours)."""
        ...

    def listed(self, url: str) -> bool: ...

    def grant(self, want: int) -> int:
        """More of the item's max_urls for this document: up to `want`, 0 when none is left."""
        ...

    def stopped(self) -> bool:
        """max_urls stopped the item's discovery: no further document is fetched."""
        ...

    def children(self, urls: Iterable[str], depth: int) -> list[WorkMessage]:
        """Plans the documents an index lists (each once per item, within max_depth and max_documents): the work
        messages to send for them."""
        ...

    def next_probe(self) -> list[WorkMessage]:
        """The item's next discovery step after robots.txt or a probe that held no sitemap."""
        ...

    def keep_robots(self, url: str, status_code: int | None, body: bytes) -> None:
        """The item's robots.txt as read (status None: no answer), kept when the batch follows its URLs."""
        ...

    def first_documents(self, urls: Iterable[str]) -> list[WorkMessage]:
        """The documents robots.txt names (depth 1), or the first probe when it names none."""
        ...


class UrlCounter:
    """Counts and stores one document's entries, chunk by chunk."""

    def __init__(self, count: DocumentCount, job: DocumentJob, skip: int = 0) -> None:
        """`count` goes on from a checkpoint at entry `skip` (what it counted used that much of the budget)."""
        self.doc = count
        self._job = job
        self._budget = job.granted - count.urls
        self._seen: set[str] = set()  # this document's own URLs: listed twice here is a duplicate, no write
        self._pending: list[tuple[int, Entry]] = []
        self._pos = 0
        self.skip = skip
        self.stopped = False

    @property
    def position(self) -> int:
        """The entries read and counted so far (pending ones included: flush before a checkpoint)."""
        return self._pos

    def add(self, entries: Iterable[Entry]) -> bool:
        """Counts the entries; False once max_urls stopped the document (read no further)."""
        for entry in entries:
            if self._pos < self.skip:
                self._replay(entry)
                continue
            self._pending.append((self._pos, entry))
            self._pos += 1
            if len(self._pending) >= CHUNK:
                self.flush()
            if self.stopped:
                return False
        return True

    def flush(self) -> None:
        """Counts the pending entries in order, storing the new ones in waves (at most the budget granted)."""
        pending, self._pending = self._pending, []
        wave: list[tuple[int, Entry]] = []
        for pos, entry in pending:
            if self.stopped:
                return
            if self._counted_without_write(entry):
                continue
            self._seen.add(entry.url)
            wave.append((pos, entry))
            if len(wave) >= CHUNK:
                self._drain(wave)
                wave = []
        self._drain(wave)

    def _replay(self, entry: Entry) -> None:
        """An entry an earlier part counted: only remembered as this document's own."""
        self._pos += 1
        if not (self._job.options.same_host and site_host(entry.url) != self._job.host):
            self._seen.add(entry.url)

    def _drain(self, wave: list[tuple[int, Entry]]) -> None:
        while wave and not self.stopped:
            wave = self._store(wave)

    def _counted_without_write(self, entry: Entry) -> bool:
        if self._job.options.same_host and site_host(entry.url) != self._job.host:
            self.doc.skipped_foreign += 1
            return True
        if entry.url in self._seen:
            self.doc.duplicates += 1
            return True
        return False

    def _store(self, wave: list[tuple[int, Entry]]) -> list[tuple[int, Entry]]:
        """Stores what the budget allows of the wave; the rest is handed back, to count in order."""
        if not wave:
            return []
        if self._budget < len(wave):
            self._budget += self._job.grant(len(wave) - self._budget)
        if self._budget <= 0:
            self._stop_at(wave[0][1])
            return wave[1:]
        take = wave[: self._budget]
        for new in self._job.store(take):
            if new:
                self.doc.urls += 1
                self._budget -= 1
            else:
                self.doc.duplicates += 1
        return wave[len(take) :]

    def _stop_at(self, entry: Entry) -> None:
        """No budget left: an entry the item listed already is a duplicate, a new one stops the document."""
        if self._job.listed(entry.url):
            self.doc.duplicates += 1
            return
        self.doc.truncated = MAX_URLS
        self.stopped = True
