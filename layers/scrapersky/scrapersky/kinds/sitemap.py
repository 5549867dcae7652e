"""`sitemap`: discover the URLs a site publishes. One document, one unit of work: robots.txt, each probe and each
document is a work message of its own, fetched through its own lease (services/documents.py claims and counts
them); this processor reads one of them, streamed into SitemapReader, and plans what it leads to."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from scrapersky.domain.outcomes import FetchFailure, FetchResponse, Outcome, OutcomeKind, classify
from scrapersky.domain.targets import NormalisedItems, TargetPolicy, normalise_each, normalise_page
from scrapersky.kinds.base import KindProcessor, Processed, Unit
from scrapersky.kinds.sitemap_count import DocumentJob, UrlCounter
from scrapersky.models import BatchOptions, WorkMessage
from scrapersky.ports import Fetcher
from scrapersky.sitemap_ports import PROBE, ROBOTS, DocumentPlan
from scrapersky.sitemaps import (
    INDEX,
    MAX_DOCUMENT_BYTES,
    DocumentCount,
    Entry,
    RobotsFile,
    SitemapReader,
    holds_sitemap,
)
from scrapersky.sitemaps.discovery import MAX_ROBOTS_BYTES

REDIRECT_REFUSED = "redirect_refused"


def no_document(release: bool, status: int | None = None, follow_up: Iterable[WorkMessage] = ()) -> Processed:
    """A unit that was no document: robots.txt, a probe holding no sitemap, a redirect to a document already read."""
    result = {"count": None, "release": release}
    return Processed(Outcome(OutcomeKind.SUCCESS, http_status=status, result=result), tuple(follow_up))


def document(count: DocumentCount, follow_up: Iterable[WorkMessage] = ()) -> Processed:
    result = {"count": count.to_dict(), "release": False}
    return Processed(Outcome(OutcomeKind.SUCCESS, http_status=count.status_code, result=result), tuple(follow_up))


class SitemapProcessor(KindProcessor):
    kind = "sitemap"
    sub_units = True

    def normalise(self, raw_items: Iterable[str], options: BatchOptions, policy: TargetPolicy) -> NormalisedItems:
        return normalise_each(raw_items, lambda raw: normalise_page(raw, policy))

    def unit_of(self, msg: WorkMessage) -> Unit:
        plan = DocumentPlan.from_unit(msg.unit) if msg.unit else DocumentPlan(msg.item)
        cap = MAX_ROBOTS_BYTES if plan.role == ROBOTS else MAX_DOCUMENT_BYTES + 1  # the reader says too_large
        return Unit(plan.url, msg.timeout_s, cap)

    def process(self, unit: Unit, fetcher: Fetcher, proxy_url: str, now: Callable[[], float]) -> Processed:
        job: DocumentJob = unit.job
        if job.plan.role == ROBOTS:
            return self._robots(unit, job, fetcher, proxy_url, now)
        if job.stopped():
            return no_document(release=True)
        return _Read(unit, job).run(fetcher, proxy_url, now)

    def _robots(
        self, unit: Unit, job: DocumentJob, fetcher: Fetcher, proxy_url: str, now: Callable[[], float]
    ) -> Processed:
        body = bytearray()

        def sink(chunk: bytes) -> bool:
            body.extend(chunk)
            return True

        fetched = fetcher.fetch_stream(unit.url, proxy_url, unit.timeout_s, unit.max_bytes, sink, lambda _u: True)
        o = classify(fetched, now())
        if o.kind in (OutcomeKind.RATE_LIMITED, OutcomeKind.TRANSIENT):
            return Processed(o)  # deferred or retried; past max_attempts services/documents.py goes on to the probes
        status = fetched.status_code if isinstance(fetched, FetchResponse) else None
        robots = RobotsFile.from_response(unit.url, status, bytes(body))
        job.keep_robots(unit.url, status, bytes(body))
        first = no_document(release=False, status=status, follow_up=job.first_documents(robots.sitemaps))
        return replace(first, crawl_delay=robots.learnt_delay())  # the host's pace across the pool: services/leasing

    def render(self, result: dict[str, Any] | None) -> dict[str, Any] | None:
        return result


class _Read:
    """One probe or document, streamed from the fetcher into the reader, its entries counted as they come."""

    def __init__(self, unit: Unit, job: DocumentJob) -> None:
        self.unit, self.job = unit, job
        self.count = DocumentCount(unit.url, job.plan.depth)
        self.reader = SitemapReader(unit.url)
        self.counter = UrlCounter(self.count, job)
        self.children: dict[str, None] = {}  # what an index lists, in order, once

    def run(self, fetcher: Fetcher, proxy_url: str, now: Callable[[], float]) -> Processed:
        u = self.unit
        fetched = fetcher.fetch_stream(u.url, proxy_url, u.timeout_s, u.max_bytes, self._sink, self.job.hop)
        if isinstance(fetched, FetchFailure) and fetched.code == REDIRECT_REFUSED:
            return no_document(release=True)  # the redirecting URL is not a document
        o = classify(fetched, now())
        probe = self.job.plan.role == PROBE
        if o.kind is not OutcomeKind.SUCCESS or not isinstance(fetched, FetchResponse):
            return Processed(self._partial(o))  # deferred, retried, or failed: services/documents.py records it
        if fetched.status_code >= 300:  # a redirect without Location: an answer, but no document
            return Processed(
                Outcome(OutcomeKind.PERMANENT, code=f"http_{fetched.status_code}", http_status=o.http_status)
            )
        self._close()
        read = self.reader.result()
        if probe and not holds_sitemap(fetched.status_code, read):
            return no_document(release=True, status=fetched.status_code, follow_up=self.job.next_probe())
        self.count.url = fetched.final_url
        self.count.finish(fetched.status_code, read)
        follow_up = self.job.children(self.children, self.count.depth + 1) if read.type == INDEX else []
        return document(self.count, follow_up)

    def _partial(self, o: Outcome) -> Outcome:
        """A fetch cut before its end (its deadline, a reset) keeps what its URLs stored so far: if it is the last
        try, the failed document counts them, so what `/urls` lists is what the item counts."""
        self.count.type = self.reader.type
        return replace(o, result={"count": self.count.to_dict(), "release": False})

    def _sink(self, chunk: bytes) -> bool:
        return self._take(self.reader.feed(chunk))

    def _close(self) -> None:
        self._take(self.reader.close())
        self.counter.flush()

    def _take(self, parsed: Iterable[Entry]) -> bool:
        entries = list(parsed)  # the reader knows the document's type once it parsed this chunk
        if self.reader.type == INDEX:
            for entry in entries:
                self.children.setdefault(entry.url, None)
            return True
        return self.counter.add(entries)
