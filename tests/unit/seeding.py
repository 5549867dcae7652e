"""Batches seeded straight into the fakes, for unit tests of the use cases that start mid-way (worker, fan-out,
dead letters): the batch record with its counter shards and its items stored pending."""

from __future__ import annotations

from typing import Any

from scrapersky.models import BatchStatus, WorkMessage
from scrapersky.records import BatchRecord
from scrapersky.services import fanout, worker
from scrapersky.services.fanout import work_message

from tests.fakes import FakeDeps, batch_record
from tests.fakes.records import shard_totals


def urls(n: int, host: str = "a.test") -> list[str]:
    return [f"https://{host}/{i}" for i in range(n)]


def seed_batch(
    deps: FakeDeps,
    items: list[str] | None = None,
    *,
    n: int = 1,
    shards: int = 1,
    status: BatchStatus = BatchStatus.PENDING,
    stored: bool = True,
    **fields: Any,
) -> BatchRecord:
    """Batch `n` with `items` (default: three a.test URLs) stored pending unless `stored` is False; the fakes'
    call records are cleared, so a test sees only what the code under test did."""
    items = urls(3) if items is None else items
    batch = batch_record(n, total_items=len(items), shards=shards, status=status, created_at=deps.clock.now(), **fields)
    deps.batches.create(batch, shard_totals(len(items), shards), None, take_group=False)
    if stored:
        deps.items.put_pending(batch, 0, items, deps.clock.now())
    for fake in (deps.batches, deps.items, deps.queue, deps.pool, deps.hosts, deps.fetcher, deps.sweeps):
        fake.calls.clear()
    return deps.batches.batches[batch.batch_id]


def work(batch: BatchRecord, seq: int, item: str | None = None, **update: Any) -> WorkMessage:
    """The work message the fan-out sends for item `seq` (its URL as seeded unless given)."""
    msg = work_message(batch, seq, item or f"https://a.test/{seq}")
    return msg.model_copy(update=update) if update else msg


def drain(deps: FakeDeps) -> list[str]:
    """Runs the fan-out and work queues until both are empty, as the event source mappings would (a message put
    back is not redelivered: a test that needs redelivery delivers by hand). Returns the outcomes in order."""
    outcomes: list[str] = []
    while deps.queue.fanout or deps.queue.work:
        outcomes += [fanout.handle(deps, m) for m in deps.queue.pop_fanout()]
        outcomes += [worker.process(deps, m, worker.InvocationCache()).outcome for m in deps.queue.pop_work()]
    return outcomes
