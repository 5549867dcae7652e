"""POST /scrape with kind sitemap: one item read synchronously, document after document, within the call's budget.

Each unit (robots.txt, a probe, a document) is what it is in a batch: run through the pool by run_unit (lease ->
slot -> fetch -> release, the same deferrals, retries, SSRF guard and byte caps), read by the same processor
(kinds/sitemap.py: SitemapReader, the counting of kinds/sitemap_count.py), planned by the same rules (discovery,
each document once per item, max_depth, max_documents, max_urls). Only the item's ledgers differ: they live in
this call's memory (sitemaps.DocumentsRead, ListedUrls, ItemTally), and nothing is stored.

Units are read breadth first, so `sitemaps` is in depth order as a batch item's. The walk stops for time when the
budget is spent before a unit, or when a unit could not end within it (no proxy free, a deferral or a retry still
due, a fetch cut by the deadline): the units not read are left out, the one cut adds nothing, and `truncated` is
"time" (it replaces any other reason: what was not read is unknown). An item stopped for time before any sitemap
was found fails with code `timeout` (its result still shows what was read); else it succeeds or fails
`no_sitemap` as a batch item does.

The answer adds `urls`: the URLs found, in reading order, in the shape of GET /batches/{id}/urls (at most
MAX_SHOWN_URLS and MAX_SHOWN_BYTES of them), and `urls_truncated`: true when more were found than shown
(`result.urls_found` always counts them all)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.errors import InvalidInput, NoProxyAvailable
from scrapersky.kinds.base import KindProcessor, Unit
from scrapersky.kinds.sitemap_count import DocumentJob
from scrapersky.models import BatchOptions, WorkMessage
from scrapersky.services.context import Deps
from scrapersky.services.documents import first_plan
from scrapersky.services.scrape_units import End, Tries, run_unit, view
from scrapersky.sitemap_ports import DOCUMENT, PROBE, ROBOTS, DocumentPlan
from scrapersky.sitemaps import (
    NO_SITEMAP,
    DocumentCount,
    DocumentsRead,
    Entry,
    Failure,
    ItemTally,
    ListedUrls,
    SitemapOptions,
    plan_documents,
    probe_urls,
    site_host,
    site_root,
)
from scrapersky.sitemaps.tally import document_key

MAX_SHOWN_URLS = 1000  # URLs in the answer; GET /batches/{id}/urls of a batch of one item pages through them all
MAX_SHOWN_BYTES = 1 << 20  # and at most this much of their text: the answer stays far below Lambda's 6 MB
TIME = "time"  # `truncated` when the call's budget stopped the walk
TIMEOUT = "timeout"  # the item's code when the budget ended before any sitemap was found
_CALL = "scrape"  # the batch id of the work messages this call plans (they are never sent)


def scrape_item(deps: Deps, processor: KindProcessor, item: str, options: BatchOptions, tries: Tries) -> dict[str, Any]:
    """The item's answer, shaped as an entry of /batches/{id}/items plus `urls` and `urls_truncated`. Raises
    NoProxyAvailable (503) when no proxy opens for its first unit within the budget."""
    if options.follow is not None:
        message = "POST /scrape does not follow into a child batch: create a sitemap batch with options.follow"
        raise InvalidInput(message, [{"field": "options.follow", "message": message}])
    walk = _Walk(item, options.sitemap or SitemapOptions(), _base_message(item, options))
    first = first_plan(item)
    walk.read.claim(first.url, reserve=first.role != ROBOTS)  # robots.txt takes no max_documents slot
    walk.queue.append(walk.message(first))
    while walk.queue and not walk.tally.stopped:  # max_urls stops discovery: what is queued is not read
        if deps.clock.now() >= tries.deadline or not _read_unit(deps, processor, walk, tries):
            walk.out_of_time = True
            break
    return _answer(deps, walk, tries)


def _base_message(item: str, options: BatchOptions) -> WorkMessage:
    return WorkMessage(
        batch_id=_CALL,
        tenant_id=_CALL,
        seq=0,
        shard=0,
        kind="sitemap",
        item=item,
        max_attempts=options.max_attempts,
        timeout_s=options.timeout_s,
        max_bytes=options.max_bytes,
    )


@dataclass
class _Walk:
    """The item's ledgers, in memory: the documents read or queued, the URLs listed, the counts, the units to read."""

    item: str
    options: SitemapOptions
    base: WorkMessage
    read: DocumentsRead = field(default_factory=DocumentsRead)
    listed: ListedUrls = field(default_factory=ListedUrls)
    tally: ItemTally = field(default_factory=ItemTally)
    queue: deque[WorkMessage] = field(default_factory=deque)
    aliases: dict[str, str] = field(default_factory=dict)  # redirect hop's document key -> the document's key
    shown: list[dict[str, Any]] = field(default_factory=list)
    shown_bytes: int = 0
    more: bool = False
    out_of_time: bool = False

    @property
    def host(self) -> str:
        return site_host(self.item)

    def message(self, plan: DocumentPlan) -> WorkMessage:
        return self.base.model_copy(update={"unit": plan.to_unit()})

    def show(self, urls: Iterable[dict[str, Any]]) -> None:
        for url in urls:
            size = sum(len(str(v)) for v in url.values())
            if len(self.shown) >= MAX_SHOWN_URLS or self.shown_bytes + size > MAX_SHOWN_BYTES:
                self.more = True
                return
            self.shown.append(url)
            self.shown_bytes += size


def _read_unit(deps: Deps, processor: KindProcessor, walk: _Walk, tries: Tries) -> bool:
    """Reads the next unit through the pool and applies how it ended; False when it could not end within the
    budget (the walk stops for time)."""
    msg = walk.queue.popleft()
    plan = DocumentPlan.from_unit(msg.unit or {})
    jobs: list[_Job] = []

    def bind(unit: Unit) -> Unit:  # every try reads the document afresh: a retry must not see the last one's URLs
        job = _Job(walk, plan)
        jobs.append(job)
        checked: DocumentJob = job  # mypy holds it to the processor's protocol
        return replace(unit, job=checked)

    try:
        tried = run_unit(deps, processor, processor.unit_of(msg), msg.max_attempts, tries, bind)
    except NoProxyAvailable:
        if tries.attempts + tries.deferrals == 0:
            raise  # nothing was read at all: 503, as for a page
        return False
    o = tried.run.outcome
    if tried.end is not End.FINAL or (o.kind is OutcomeKind.TRANSIENT and deps.clock.now() >= tries.deadline):
        return False
    job = jobs[-1]
    if o.kind is OutcomeKind.SUCCESS:
        walk.queue.extend(tried.run.processed.follow_up)
        job.ended(o.result or {})
    else:
        job.failed(o)
    return True


@dataclass
class _Job:
    """kinds.sitemap_count.DocumentJob over the walk's ledgers, for one try of one unit: the URLs it stores are its
    own until it ends as a document (a try cut short adds nothing)."""

    walk: _Walk
    plan: DocumentPlan
    granted: int = 0
    resume: dict[str, Any] | None = None  # a call reads each document whole, within its budget
    resumable: bool = False
    found: set[str] = field(default_factory=set)  # the URLs new to the item (a big item: only strings held)
    views: list[dict[str, Any]] = field(default_factory=list)  # /urls entries of the first ones, to show
    options: SitemapOptions = field(init=False)
    host: str = field(init=False)

    def __post_init__(self) -> None:
        self.options, self.host = self.walk.options, self.walk.host

    def hop(self, url: str) -> bool:
        key, mine = document_key(url), document_key(self.plan.url)
        if self.walk.read.claim(url, reserve=False):
            self.walk.aliases[key] = mine
            return True
        return self.walk.aliases.get(key) == mine  # hopped there by an earlier try of this document

    def store(self, entries: list[tuple[int, Entry]]) -> list[bool]:
        new = []
        for _pos, e in entries:
            fresh = e.url not in self.walk.listed and e.url not in self.found
            if fresh:
                self.found.add(e.url)
                if len(self.walk.shown) + len(self.views) <= MAX_SHOWN_URLS:  # one past: the answer says "more"
                    self.views.append(self._view(e))
            new.append(fresh)
        return new

    def _view(self, e: Entry) -> dict[str, Any]:
        return {
            "url": e.url,
            "lastmod": e.lastmod,
            "changefreq": e.changefreq,
            "priority": e.priority,
            "sitemap": self.plan.url,
            "item": self.walk.item,
        }

    def listed(self, url: str) -> bool:
        return url in self.walk.listed or url in self.found

    def grant(self, want: int) -> int:
        """Sequential units: what is left of max_urls is what the item listed and this try holds, less the rest."""
        got = max(0, min(want, self.options.max_urls - len(self.walk.listed) - self.granted))
        self.granted += got
        return got

    def stopped(self) -> bool:
        return self.walk.tally.stopped

    def children(self, urls: Iterable[str], depth: int) -> list[WorkMessage]:
        return self._plan(urls, depth, DOCUMENT)

    def keep_robots(self, url: str, status_code: int | None, body: bytes) -> None:
        """A single item follows nothing: its robots.txt is not kept."""

    def first_documents(self, urls: Iterable[str]) -> list[WorkMessage]:
        found = list(urls)
        return self._plan(found, 1, DOCUMENT) if found else self._probe(0)

    def next_probe(self) -> list[WorkMessage]:
        return self._probe(self.plan.probe + 1)

    def _probe(self, index: int) -> list[WorkMessage]:
        probes = probe_urls(site_root(self.walk.item) or self.walk.item)
        return self._plan(probes[index : index + 1], 1, PROBE, index)

    def _plan(self, urls: Iterable[str], depth: int, role: str, probe: int = 0) -> list[WorkMessage]:
        planned = plan_documents(urls, depth, self.options, self.walk.read)
        self.walk.tally.truncate(planned.truncated)
        plans = [DocumentPlan(url, d, role, probe, parent=self.plan.key) for url, d in planned.fetch]
        return [self.walk.message(p) for p in plans]

    def ended(self, result: dict[str, Any]) -> None:
        """The unit ended with an answer: a document (its counts and URLs join the item's) or none."""
        raw = result.get("count")
        if raw is None:
            if result.get("release"):
                self.walk.read.release()  # no document after all: its max_documents slot is free again
            return
        for url in self.found:
            self.walk.listed.add(url)
        self.walk.show(self.views)
        self.walk.more = self.walk.more or len(self.views) < len(self.found)
        self.walk.tally.merge(DocumentCount.from_dict(raw))

    def failed(self, o: Outcome) -> None:
        """No answer to read after the retries: robots.txt and a probe lead to the next step, a document failed."""
        if self.plan.role == ROBOTS:
            self.walk.queue.extend(self.first_documents(()))
            return
        if self.plan.role == PROBE:
            self.walk.read.release()
            self.walk.queue.extend(self.next_probe())
            return
        count = DocumentCount(self.plan.url, self.plan.depth)
        count.finish(o.http_status, None, Failure(o.code or "failed", o.message or o.code or "failed"))
        self.walk.tally.merge(count)


def _answer(deps: Deps, walk: _Walk, tries: Tries) -> dict[str, Any]:
    tally = walk.tally
    if walk.out_of_time:
        tally.truncated = TIME
    if tally.documents:
        o = Outcome(OutcomeKind.SUCCESS)
    elif walk.out_of_time:
        budget = tries.deadline - tries.started
        o = Outcome(OutcomeKind.PERMANENT, code=TIMEOUT, message=f"no sitemap found within the call's {budget:.0f} s")
    else:
        message = "robots.txt, /sitemap.xml and /sitemap_index.xml name no sitemap"
        o = Outcome(OutcomeKind.PERMANENT, code=NO_SITEMAP, message=message)
    answer = view(walk.item, tries, deps.clock.now(), o, tally.result())
    return {**answer, "urls": walk.shown, "urls_truncated": walk.more}
