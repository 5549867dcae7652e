"""Fakes of the sitemap kind's ports: an item's documents with their progress row, and the discovered URLs. Every
change is conditional as in DynamoDB (under the fake's lock), so redeliveries count once here as there."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from scrapersky.ports import Claim, ClaimRefused
from scrapersky.records import ItemError
from scrapersky.sitemap_ports import (
    ALIAS,
    DOCUMENT,
    DONE,
    IN_PROGRESS,
    PENDING,
    ROBOTS,
    DiscoveredUrl,
    DiscoveredUrls,
    DocRef,
    DocumentEnd,
    DocumentPlan,
    DocumentRecord,
    ItemDocuments,
    ItemProgress,
    Planned,
    doc_key,
)

from tests.fakes.paging import Cursors
from tests.fakes.recording import Recorder, recorded


class FakeItemDocuments(Recorder, ItemDocuments):
    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[tuple[str, int, str], DocumentRecord] = {}
        self.items: dict[tuple[str, int], ItemProgress] = {}
        self.errors: dict[tuple[str, int, str], ItemError | None] = {}

    def _new(self, batch_id: str, seq: int, doc: DocumentPlan, now: float) -> DocumentRecord:
        ref = DocRef(batch_id, seq, doc.key)
        return DocumentRecord(ref, doc.url, doc.depth, doc.role, PENDING, parent=doc.parent)

    @recorded
    def begin(self, batch_id: str, seq: int, first: DocumentPlan, now: float) -> None:
        if (batch_id, seq) in self.items:
            return
        self.items[(batch_id, seq)] = ItemProgress(open=1, planned=int(first.role != ROBOTS))
        self.docs[(batch_id, seq, first.key)] = self._new(batch_id, seq, first, now)

    @recorded
    def plan(self, batch_id: str, seq: int, doc: DocumentPlan, max_documents: int | None, now: float) -> Planned:
        old = self.docs.get((batch_id, seq, doc.key))
        if old is not None:
            return Planned.OURS if old.parent == doc.parent and old.status != ALIAS else Planned.READ
        progress = self.items[(batch_id, seq)]
        if max_documents is not None and progress.planned >= max_documents:
            return Planned.FULL
        self.items[(batch_id, seq)] = replace(
            progress, open=progress.open + 1, planned=progress.planned + int(max_documents is not None)
        )
        self.docs[(batch_id, seq, doc.key)] = self._new(batch_id, seq, doc, now)
        return Planned.NEW

    @recorded
    def alias(self, ref: DocRef, url: str, now: float) -> bool:
        key = (ref.batch_id, ref.seq, doc_key(url))
        old = self.docs.get(key)
        if old is not None:
            return old.status == ALIAS and old.parent == ref.key
        self.docs[key] = DocumentRecord(DocRef(ref.batch_id, ref.seq, key[2]), url, 0, DOCUMENT, ALIAS, parent=ref.key)
        return True

    @recorded
    def truncate(self, batch_id: str, seq: int, reason: str) -> None:
        p = self.items[(batch_id, seq)]
        self.items[(batch_id, seq)] = replace(p, truncated=p.truncated | {reason})

    @recorded
    def get(self, ref: DocRef) -> DocumentRecord | None:
        return self.docs.get((ref.batch_id, ref.seq, ref.key))

    @recorded
    def progress(self, batch_id: str, seq: int) -> ItemProgress | None:
        return self.items.get((batch_id, seq))

    @recorded
    def claim(self, ref: DocRef, token: str, until: float, now: float) -> Claim | ClaimRefused:
        rec = self.docs.get((ref.batch_id, ref.seq, ref.key))
        if rec is None or rec.status in (DONE, ALIAS):
            return ClaimRefused(terminal=True)
        if rec.status == IN_PROGRESS and rec.claim_until is not None and rec.claim_until >= now:
            return ClaimRefused(terminal=False, busy_until=rec.claim_until)
        self._put(replace(rec, status=IN_PROGRESS, claim=token, claim_until=until))
        return Claim(token, rec.attempts, rec.deferrals, rec.last_proxy)

    def _put(self, rec: DocumentRecord) -> None:
        self.docs[(rec.ref.batch_id, rec.ref.seq, rec.ref.key)] = rec

    def _held(self, ref: DocRef, token: str) -> DocumentRecord | None:
        rec = self.docs.get((ref.batch_id, ref.seq, ref.key))
        return rec if rec is not None and rec.status == IN_PROGRESS and rec.claim == token else None

    @recorded
    def requeue(
        self, ref: DocRef, token: str, now: float, *, attempt_spent: bool, proxy_id: str | None, error: ItemError | None
    ) -> bool:
        rec = self._held(ref, token)
        if rec is None:
            return False
        spent, deferred = (1, 0) if attempt_spent else (0, 1)
        self._put(
            replace(
                rec,
                status=PENDING,
                claim=None,
                claim_until=None,
                attempts=rec.attempts + spent,
                deferrals=rec.deferrals + deferred,
                last_proxy=proxy_id,
            )
        )
        self.errors[(ref.batch_id, ref.seq, ref.key)] = error
        return True

    @recorded
    def checkpoint(self, ref: DocRef, token: str, resume: dict[str, Any], now: float) -> bool:
        rec = self._held(ref, token)
        if rec is None:
            return False
        self._put(replace(rec, status=PENDING, claim=None, claim_until=None, resume=resume))
        return True

    @recorded
    def grant(self, ref: DocRef, token: str, want: int, max_urls: int) -> int:
        rec = self._held(ref, token)
        p = self.items[(ref.batch_id, ref.seq)]
        got = max(0, min(want, max_urls - p.granted))
        if rec is None or got == 0:
            return 0
        self.items[(ref.batch_id, ref.seq)] = replace(p, granted=p.granted + got)
        self._put(replace(rec, got=rec.got + got))
        return got

    @recorded
    def finish(self, ref: DocRef, token: str, end: DocumentEnd, now: float) -> ItemProgress | None:
        rec = self._held(ref, token)
        if rec is None:
            return None
        p = self.items[(ref.batch_id, ref.seq)]
        c = end.count
        urls = 0 if c is None else c.urls
        p = replace(
            p,
            open=p.open - 1,
            planned=p.planned - int(end.release),
            granted=p.granted - (rec.got - urls),
            urls_found=p.urls_found + urls,
            duplicates=p.duplicates + (c.duplicates if c else 0),
            skipped_foreign=p.skipped_foreign + (c.skipped_foreign if c else 0),
            documents_ok=p.documents_ok + int(c is not None and c.failure is None),
            documents_failed=p.documents_failed + int(c is not None and c.failure is not None),
            truncated=p.truncated | ({c.truncated} if c and c.truncated else set()),
        )
        self.items[(ref.batch_id, ref.seq)] = p
        self._put(replace(rec, status=DONE, claim=None, summary=end.summary, finished_at=now))
        return p

    @recorded
    def summaries(self, batch_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        done = [
            r
            for (b, s, _k), r in self.docs.items()
            if (b, s) == (batch_id, seq) and r.status == DONE and r.summary is not None
        ]
        done.sort(key=lambda r: (r.depth, r.finished_at or 0.0))
        return [dict(r.summary or {}) for r in done[:limit]]

    # ---- for tests ---------------------------------------------------------------------------------------------
    def of_item(self, batch_id: str, seq: int) -> list[DocumentRecord]:
        return [r for (b, s, _k), r in self.docs.items() if (b, s) == (batch_id, seq)]


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


class FakeDiscoveredUrls(Recorder, DiscoveredUrls):
    def __init__(self) -> None:
        super().__init__()
        self.urls: dict[tuple[str, int, str], DiscoveredUrl] = {}
        self._cursors = Cursors()
        self.clock: Any = None  # with a clock, each add takes takes_s on it (a slow store)
        self.takes_s = 0.0

    @recorded
    def add(self, batch_id: str, seq: int, urls: list[DiscoveredUrl]) -> list[bool]:
        if self.clock is not None:
            self.clock.sleep(self.takes_s)
        out = []
        for u in urls:
            old = self.urls.setdefault((batch_id, seq, u.url), u)
            out.append(old is u or (old.doc, old.pos) == (u.doc, u.pos))
        return out

    @recorded
    def listed(self, batch_id: str, seq: int, url: str) -> bool:
        return (batch_id, seq, url) in self.urls

    @recorded
    def page(
        self, batch_id: str, seqs: range, limit: int, cursor: str | None
    ) -> tuple[list[DiscoveredUrl], str | None]:
        rows = sorted(((s, url_key(u)), v) for (b, s, u), v in self.urls.items() if b == batch_id and s in seqs)
        page, nxt = self._cursors.page(f"{batch_id}:{seqs}", rows, lambda r: f"{r[0][0]:07d}:{r[0][1]}", limit, cursor)
        return [v for _k, v in page], nxt

    # ---- for tests ---------------------------------------------------------------------------------------------
    def of_item(self, batch_id: str, seq: int) -> set[str]:
        return {u for (b, s, u) in self.urls if (b, s) == (batch_id, seq)}
