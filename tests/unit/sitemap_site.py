"""A sitemap site in memory for the fakes' fetcher, and a driver that runs a sitemap batch's work queue to its end
(messages put back are delivered again after their wait, on the fake clock)."""

from __future__ import annotations

import gzip
from collections import Counter
from typing import Any

from scrapersky.models import BatchStatus, WorkMessage
from scrapersky.records import BatchRecord
from scrapersky.services import worker
from scrapersky.services.fanout import work_message

from tests.fakes import FakeDeps, FetchCall, Streamed
from tests.unit.seeding import seed_batch

ROOT = "https://s.test/"


def urlset(*paths: str, host: str = "https://s.test") -> bytes:
    rows = "".join(f"<url><loc>{host}{p}</loc><lastmod>2024-05-01</lastmod></url>" for p in paths)
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</urlset>'.encode()


def index(*paths: str) -> bytes:
    rows = "".join(f"<sitemap><loc>https://s.test{p}</loc></sitemap>" for p in paths)
    return f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</sitemapindex>'.encode()


def robots(*paths: str) -> bytes:
    return "".join(f"Sitemap: https://s.test{p}\n" for p in paths).encode()


def gz(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)


class Site:
    """Paths -> answers; every fetch counted by URL. A path with a list of answers uses them up in order."""

    def __init__(self, deps: FakeDeps, pages: dict[str, Any]) -> None:
        self.pages = {p: list(a) if isinstance(a, list) else a for p, a in pages.items()}
        self.fetched: Counter[str] = Counter()
        deps.fetcher.default = self

    def __call__(self, call: FetchCall) -> Any:
        path = call.url.removeprefix("https://s.test")
        self.fetched[path] += 1
        answer = self.pages.get(path, Streamed(b"not found", 404))
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        return answer


def seed(deps: FakeDeps, items: list[str] | None = None, **sitemap: Any) -> BatchRecord:
    options = {"max_attempts": 2, "timeout_s": 5.0, "sitemap": sitemap or None}
    return seed_batch(deps, items or [ROOT], kind="sitemap", options=options)


def run(deps: FakeDeps, batch: BatchRecord, limit: int = 500) -> list[str]:
    """Delivers the batch's first messages and every message they lead to, until the queue is empty."""
    queue: list[WorkMessage] = [work_message(batch, seq, rec.item) for (b, seq), rec in deps.items.items.items()]
    queue = [m for m in queue if m.batch_id == batch.batch_id]
    outcomes: list[str] = []
    while queue and len(outcomes) < limit:
        msg = queue.pop(0)
        result = worker.process(deps, msg, worker.InvocationCache())
        outcomes.append(result.outcome)
        queue += deps.queue.pop_work()
        if result.retry_in_s is not None:
            deps.clock.sleep(max(result.retry_in_s, 0.01))
            queue.append(msg)
    return outcomes


def result_of(deps: FakeDeps, batch: BatchRecord, seq: int = 0) -> dict[str, Any]:
    rec = deps.items.record(batch.batch_id, seq)
    assert rec.result is not None, rec
    return rec.result


def ended(deps: FakeDeps, batch: BatchRecord) -> BatchStatus:
    return deps.batches.batches[batch.batch_id].status
