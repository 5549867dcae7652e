"""`sitemap`: discover the URLs a site publishes. One document, one unit of work: robots.txt, each probe and each
document is a work message of its own, fetched through its own lease (services/documents.py claims and counts
them); this processor reads one of them, streamed into SitemapReader, and plans what it leads to.

Storing a document's URLs is our time, not the site's: a urlset whose storing outlasts the delivery's time (its
timeout_s, less CHECKPOINT_MARGIN_S) stops reading there and checkpoints (the entries read, the counts so far: see
kinds/sitemap_count.py); services/documents.py keeps the checkpoint on the document's row and sends the document
again, to go on from there. Only a document that made progress checkpoints, only while the site's own time (the
time the fetch took, less ours) stayed within the deadline, and at most MAX_PARTS times: a slow or dripping site
still fails for its timeout, and every document ends."""

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
from scrapersky.sitemap_ports import CHECKPOINT, PROBE, ROBOTS, DocumentPlan
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
CHECKPOINT_MARGIN_S = 5.0  # kept of a delivery's timeout_s to record a checkpoint (at most a quarter of it)
MAX_PARTS = 40  # deliveries one document may be read in


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
        if job.stopped() and not job.resume:  # (a document read in part goes on: its counts so far must end it)
            return no_document(release=True)
        return _Read(unit, job, now).run(fetcher, proxy_url)

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

    def __init__(self, unit: Unit, job: DocumentJob, now: Callable[[], float]) -> None:
        self.unit, self.job, self.now = unit, job, now
        resume = job.resume or {}
        self.count = DocumentCount.from_dict(resume["count"]) if resume else DocumentCount(unit.url, job.plan.depth)
        self.reader = SitemapReader(unit.url)
        self.counter = UrlCounter(self.count, job, skip=int(resume.get("pos", 0)))
        self.parts = int(resume.get("parts", 0))
        self.children: dict[str, None] = {}  # what an index lists, in order, once
        self.started = now()
        self.own_s = 0.0  # time spent storing: ours, not the site's
        self.paused = False

    def run(self, fetcher: Fetcher, proxy_url: str) -> Processed:
        u = self.unit
        fetched = fetcher.fetch_stream(u.url, proxy_url, u.timeout_s, u.max_bytes, self._sink, self.job.hop)
        if isinstance(fetched, FetchFailure) and fetched.code == REDIRECT_REFUSED:
            return no_document(release=True)  # the redirecting URL is not a document
        if self.paused or (isinstance(fetched, FetchFailure) and self._cut_by_our_time(fetched)):
            return self._checkpoint()
        o = classify(fetched, self.now())
        if o.kind is not OutcomeKind.SUCCESS or not isinstance(fetched, FetchResponse):
            return Processed(self._partial(o))  # deferred, retried, or failed: services/documents.py records it
        return self._answered(fetched, o)

    def _answered(self, fetched: FetchResponse, o: Outcome) -> Processed:
        probe = self.job.plan.role == PROBE
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

    def _may_pause(self) -> bool:
        """A urlset that stored URLs in this delivery may go on in the next one, while the site alone kept within
        the deadline and the document within MAX_PARTS (otherwise the fetch's own end stands)."""
        if not self.job.resumable or self.reader.type in (None, INDEX) or self.counter.stopped:
            return False
        if self.parts + 1 >= MAX_PARTS:
            return False
        self.counter.flush()  # what was read is counted and stored before the checkpoint says so
        site_s = self.now() - self.started - self.own_s
        return self.counter.position > self.counter.skip and site_s < self.unit.timeout_s - self._margin()

    def _cut_by_our_time(self, failure: FetchFailure) -> bool:
        """The fetch's deadline cut it while waiting for the site, but our storing took more than the margin of it."""
        return failure.code == "timeout" and self.own_s > self._margin() and self._may_pause()

    def _margin(self) -> float:
        return min(CHECKPOINT_MARGIN_S, self.unit.timeout_s / 4)

    def _checkpoint(self) -> Processed:
        self.count.type = self.reader.type
        resume = {"pos": self.counter.position, "parts": self.parts + 1, "count": self.count.to_dict()}
        return Processed(Outcome(OutcomeKind.SUCCESS, result={CHECKPOINT: resume}))

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
        began = self.now()
        going = self.counter.add(entries)
        self.own_s += self.now() - began
        out_of_time = self.now() - self.started >= self.unit.timeout_s - self._margin()
        if going and out_of_time and self._may_pause():
            self.paused = True  # read no further: the next delivery goes on from here
            return False
        return going
