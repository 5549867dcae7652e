"""The units of a sitemap item: robots.txt, the probes and each document, one work message each.

The item's first message (from the fan-out) claims the item for all its units (a claim no delivery takes over:
its token is the item's own) and stores its progress row and first unit. Each unit is then claimed, deferred,
retried and finished on its own row (ItemDocuments), through the same delivery as a page (services/worker.py).
A unit's end and its counts are one conditional write, so a unit processed twice counts once; the units it
planned were stored (each document once per item) and sent before it ends, so the item's open count never
reaches zero early. The unit that brings it to zero ends the item, with its counts and `sitemaps`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.follow_ports import KeptRobots, robots_host
from scrapersky.kinds.base import KindProcessor, Unit
from scrapersky.models import BatchStatus, WorkMessage
from scrapersky.ports import Claim, ClaimRefused
from scrapersky.records import BatchRecord, ItemEnd, ItemError, ItemRef
from scrapersky.services.claims import Result, record_end, refused_item
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done
from scrapersky.sitemap_ports import (
    CHECKPOINT,
    DOCUMENT,
    PROBE,
    ROBOTS,
    DiscoveredUrl,
    DocRef,
    DocumentEnd,
    DocumentPlan,
    ItemProgress,
    Planned,
)
from scrapersky.sitemaps import (
    NO_SITEMAP,
    DocumentCount,
    Entry,
    Failure,
    SitemapOptions,
    probe_urls,
    robots_url,
    site_host,
    site_root,
)
from scrapersky.sitemaps.tally import MAX_DEPTH, MAX_DOCUMENTS, MAX_SITEMAP_ENTRIES, MAX_URLS, ItemTally, stronger


def item_token(batch_id: str, seq: int) -> str:
    """The claim an item holds while its units run: the item's own, so no delivery takes it over."""
    return f"sitemap:{batch_id}:{seq}"


def _shown(reasons: Iterable[str]) -> str | None:
    """Of every truncation reason met, the one the item shows (the same whatever order documents ended in)."""
    shown: str | None = None
    for reason in reasons:
        shown = stronger(shown, reason)
    return shown


def first_plan(item: str) -> DocumentPlan:
    """A site (domain or root URL) starts with its robots.txt; any other URL is the one document to read."""
    root = site_root(item)
    return DocumentPlan(robots_url(root), 0, ROBOTS) if root else DocumentPlan(item, 1, DOCUMENT)


def options_of(batch: BatchRecord) -> SitemapOptions:
    return SitemapOptions.model_validate(batch.options.get("sitemap") or {})


def keeps_robots(batch: BatchRecord) -> bool:
    """A batch that follows its URLs obeying robots.txt keeps each item's robots.txt for the follow."""
    follow = batch.options.get("follow")
    return follow is not None and follow.get("robots", "obey") == "obey"


def unit_message(msg: WorkMessage, plan: DocumentPlan) -> WorkMessage:
    return msg.model_copy(update={"unit": plan.to_unit(), "deferrals": 0, "waiting_since": None})


def start_item(deps: Deps, msg: WorkMessage, batch: BatchRecord, started: set[str]) -> Result:
    """The item's first message: claims the item for its units, stores its first unit and sends it (no fetch)."""
    ref, now = ItemRef(msg.batch_id, msg.seq, msg.shard), deps.clock.now()
    claim = deps.items.claim(ref, item_token(ref.batch_id, ref.seq), now + deps.settings.retention_s, now)
    if isinstance(claim, ClaimRefused) and claim.terminal:
        return refused_item(deps, ref, claim, now)
    # refused and not terminal: this item was started before (a redelivery), whose steps are all idempotent
    if msg.batch_id not in started and batch.status is BatchStatus.PENDING:
        deps.batches.begin_processing(msg.batch_id, now)
    started.add(msg.batch_id)
    first = first_plan(msg.item)
    deps.documents.begin(msg.batch_id, msg.seq, first, now)
    deps.queue.send_work([unit_message(msg, first)])
    return Result("started")


def complete_item(deps: Deps, batch: BatchRecord, msg: WorkMessage, progress: ItemProgress | None) -> bool:
    """Ends the item when no unit is open: succeeded with its counts when a sitemap was found, else no_sitemap."""
    if progress is None or progress.open > 0:
        return False
    ref = ItemRef(msg.batch_id, msg.seq, msg.shard)
    tally = ItemTally(
        progress.urls_found,
        progress.duplicates,
        progress.skipped_foreign,
        progress.documents_ok,
        progress.documents_failed,
        _shown(progress.truncated),
        deps.documents.summaries(msg.batch_id, msg.seq, MAX_SITEMAP_ENTRIES),
    )
    found = progress.documents > 0
    error = None if found else ItemError(NO_SITEMAP, "robots.txt, /sitemap.xml and /sitemap_index.xml name no sitemap")
    end = ItemEnd(succeeded=found, item=msg.item, error=error, result=tally.result())
    won = record_end(deps, batch, ref, item_token(ref.batch_id, ref.seq), end)
    if not won:
        finish_if_done(deps, ref.batch_id)  # ended by a racing unit, which may have crashed before closing the batch
    return won


@dataclass
class DocumentClaims:
    """The unit is one document (or robots.txt, or a probe) of a sitemap item: claimed on its own row."""

    deps: Deps
    msg: WorkMessage
    batch: BatchRecord
    processor: KindProcessor
    plan: DocumentPlan = field(init=False)
    ref: DocRef = field(init=False)

    def __post_init__(self) -> None:
        self.plan = DocumentPlan.from_unit(self.msg.unit or {"url": self.msg.item})
        self.ref = DocRef.of(self.msg.batch_id, self.msg.seq, self.plan.url)

    def claim(self, owner: str, until: float, now: float) -> Claim | ClaimRefused:
        return self.deps.documents.claim(self.ref, owner, until, now)

    def refused(self, refused: ClaimRefused, now: float, ended: str) -> Result:
        if refused.terminal:  # done: its end may have crashed before ending the item
            complete_item(
                self.deps, self.batch, self.msg, self.deps.documents.progress(self.msg.batch_id, self.msg.seq)
            )
            return Result(ended)
        return Result("busy_elsewhere", retry_in_s=max(1.0, (refused.busy_until or now) - now + 1.0))

    def bind(self, owner: str, unit: Unit) -> Unit:
        rec = self.deps.documents.get(self.ref)
        job = DocumentJob(self.deps, self.msg, self.plan, owner, options_of(self.batch), rec.got if rec else 0)
        job.keeps_robots = keeps_robots(self.batch)
        job.resume = rec.resume if rec else None
        return Unit(unit.url, unit.timeout_s, unit.max_bytes, job=job)

    def requeue(self, owner: str, o: Outcome, proxy_id: str, attempt_spent: bool) -> None:
        error = ItemError(o.code, o.message or "") if o.code else None
        now = self.deps.clock.now()
        self.deps.documents.requeue(self.ref, owner, now, attempt_spent=attempt_spent, proxy_id=proxy_id, error=error)

    def finish(self, owner: str, o: Outcome, metrics: dict[str, float]) -> Result:
        result = o.result if o.kind is OutcomeKind.SUCCESS else None
        if result is not None and CHECKPOINT in result:
            return self._go_on(owner, result[CHECKPOINT], metrics)
        end = self._failed(owner, o) if result is None else self._answered(result)
        return self._ended(end, self.deps.documents.finish(self.ref, owner, end, self.deps.clock.now()), metrics)

    def _ended(self, end: DocumentEnd, progress: ItemProgress | None, metrics: dict[str, float]) -> Result:
        if progress is None:  # ended already (a lost answer retried, a lapsed claim): the item may still need ending
            complete_item(
                self.deps, self.batch, self.msg, self.deps.documents.progress(self.msg.batch_id, self.msg.seq)
            )
            return Result("duplicate_delivery", metrics=metrics)
        if complete_item(self.deps, self.batch, self.msg, progress):
            metrics["succeeded" if progress.documents else "failed"] = 1
        return Result("document_done" if end.count else "unit_done", metrics=metrics)

    @staticmethod
    def _answered(result: dict[str, Any]) -> DocumentEnd:
        raw = result.get("count")
        return DocumentEnd(None if raw is None else DocumentCount.from_dict(raw), bool(result.get("release")))

    def _go_on(self, owner: str, resume: dict[str, Any], metrics: dict[str, float]) -> Result:
        """The document stored part of its URLs and goes on from `resume` in a message of its own (through its own
        lease): kept on its row first, so whichever delivery claims it next goes on from there."""
        if not self.deps.documents.checkpoint(self.ref, owner, resume, self.deps.clock.now()):
            return Result("duplicate_delivery", metrics=metrics)  # the claim was taken over: that delivery goes on
        self.deps.queue.send_work([unit_message(self.msg, self.plan)])
        return Result("document_checkpoint", metrics=metrics)

    def _failed(self, owner: str, o: Outcome) -> DocumentEnd:
        """A unit that got no answer to read: a failed document; robots.txt or a probe lead to the next step."""
        plan = self.plan
        if plan.role in (ROBOTS, PROBE):
            job = DocumentJob(self.deps, self.msg, plan, owner, options_of(self.batch), 0, keeps_robots(self.batch))
            if plan.role == ROBOTS:
                job.keep_robots(plan.url, None, b"")  # no answer after the retries: RFC 9309 says disallow all
            self.deps.queue.send_work(job.next_probe() if plan.role == PROBE else job.first_documents(()))
            return DocumentEnd(None, release=plan.role == PROBE)
        raw = (o.result or {}).get("count")  # what a fetch cut before its end stored (kinds/sitemap.py)
        count = DocumentCount(plan.url, plan.depth) if raw is None else DocumentCount.from_dict(raw)
        kept_type = count.type
        message = o.message or o.code or "failed"
        count.finish(o.http_status, None, Failure(o.code or "failed", message))
        count.type = kept_type
        return DocumentEnd(count)

    def give_up(self, owner: str, error: ItemError) -> Result:
        now = self.deps.clock.now()
        claim = self.claim(owner, now + self.deps.settings.lease_seconds, now)
        if isinstance(claim, ClaimRefused):
            return self.refused(claim, now, "already_finished")
        return self.finish(owner, Outcome(OutcomeKind.PERMANENT, code=error.code, message=error.message), {})

    def cancel(self, owner: str) -> Result:
        """The batch was cancelled: the item ends cancelled, whichever of its units comes first."""
        ref, now = ItemRef(self.msg.batch_id, self.msg.seq, self.msg.shard), self.deps.clock.now()
        if self.deps.items.cancel(ref, now) or self.deps.items.cancel(
            ref, now, claimed_by=item_token(ref.batch_id, ref.seq)
        ):
            finish_if_done(self.deps, ref.batch_id)
        return Result("cancelled")


@dataclass
class DocumentJob:
    """kinds.sitemap_count.DocumentJob on the item's tables, for one claimed unit."""

    deps: Deps
    msg: WorkMessage
    plan: DocumentPlan
    owner: str
    options: SitemapOptions
    granted: int
    keeps_robots: bool = False
    resume: dict[str, Any] | None = None
    resumable: bool = True

    @property
    def host(self) -> str:
        return site_host(self.msg.item)

    @property
    def ref(self) -> DocRef:
        return DocRef(self.msg.batch_id, self.msg.seq, self.plan.key)

    def hop(self, url: str) -> bool:
        return self.deps.documents.alias(self.ref, url, self.deps.clock.now())

    def store(self, entries: list[tuple[int, Entry]]) -> list[bool]:
        rows = [
            DiscoveredUrl(e.url, self.plan.url, self.msg.item, self.plan.key, pos, e.lastmod, e.changefreq, e.priority)
            for pos, e in entries
        ]
        return self.deps.urls.add(self.msg.batch_id, self.msg.seq, rows)

    def keep_robots(self, url: str, status_code: int | None, body: bytes) -> None:
        if self.keeps_robots:
            kept = KeptRobots.of(url, status_code, body)
            self.deps.follow.keep_robots(self.msg.batch_id, robots_host(url), kept, self.deps.clock.now())

    def listed(self, url: str) -> bool:
        return self.deps.urls.listed(self.msg.batch_id, self.msg.seq, url)

    def grant(self, want: int) -> int:
        got = self.deps.documents.grant(self.ref, self.owner, want, self.options.max_urls)
        if got == 0:
            self.deps.documents.truncate(self.msg.batch_id, self.msg.seq, MAX_URLS)
        return got

    def stopped(self) -> bool:
        progress = self.deps.documents.progress(self.msg.batch_id, self.msg.seq)
        return progress is not None and MAX_URLS in progress.truncated

    def children(self, urls: Iterable[str], depth: int) -> list[WorkMessage]:
        return self._plan([DocumentPlan(u, depth, DOCUMENT, parent=self.plan.key) for u in urls])

    def first_documents(self, urls: Iterable[str]) -> list[WorkMessage]:
        plans = [DocumentPlan(u, 1, DOCUMENT, parent=self.plan.key) for u in urls]
        return self._plan(plans) if plans else self._probe(0)

    def next_probe(self) -> list[WorkMessage]:
        return self._probe(self.plan.probe + 1)

    def _probe(self, index: int) -> list[WorkMessage]:
        probes = probe_urls(site_root(self.msg.item) or self.msg.item)
        if index >= len(probes):
            return []
        return self._plan([DocumentPlan(probes[index], 1, PROBE, index, parent=self.plan.key)])

    def _plan(self, plans: list[DocumentPlan]) -> list[WorkMessage]:
        batch_id, seq, now = self.msg.batch_id, self.msg.seq, self.deps.clock.now()
        out: list[WorkMessage] = []
        for plan in plans:
            too_deep = plan.depth > self.options.max_depth
            answer = (
                Planned.READ
                if too_deep
                else self.deps.documents.plan(batch_id, seq, plan, self.options.max_documents, now)
            )
            if too_deep and self.deps.documents.get(DocRef(batch_id, seq, plan.key)) is None:
                self.deps.documents.truncate(batch_id, seq, MAX_DEPTH)
            elif answer is Planned.FULL:
                self.deps.documents.truncate(batch_id, seq, MAX_DOCUMENTS)
            elif answer in (Planned.NEW, Planned.OURS):
                out.append(unit_message(self.msg, plan))
        return out
