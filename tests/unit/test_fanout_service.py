"""The fan-out on the fakes: chunks written part by part, replays, dispatch and cancel sweeps page by page."""

from __future__ import annotations

import pytest
from scrapersky.models import BatchStatus, FanoutMessage, ItemStatus, WorkMessage
from scrapersky.records import ItemRef
from scrapersky.services import fanout

from tests.fakes import FakeDeps, FakeItemStore, FakeQueue, make_deps
from tests.unit.seeding import seed_batch, urls


def chunk(batch_id: str, items: list[str], first_seq: int = 0) -> FanoutMessage:
    return FanoutMessage(type="chunk", batch_id=batch_id, tenant_id="t_acme", first_seq=first_seq, items=items)


def sweep(kind: str, batch_id: str) -> FanoutMessage:
    return FanoutMessage(type=kind, batch_id=batch_id, tenant_id="t_acme")


def drain_fanout(deps: FakeDeps) -> list[str]:
    """Handles fan-out messages until none is left, as the event source mapping would."""
    outcomes = []
    while msgs := deps.queue.pop_fanout():
        outcomes += [fanout.handle(deps, m) for m in msgs]
    return outcomes


class WatchingQueue(FakeQueue):
    """Notes how many item records were stored each time work went out."""

    def __init__(self, items: FakeItemStore) -> None:
        super().__init__()
        self.items = items
        self.stored_at_send: list[int] = []

    def send_work(self, messages: list[WorkMessage], delay_s: int = 0) -> None:
        self.stored_at_send.append(len(self.items.items))
        super().send_work(messages, delay_s)


def test_a_chunk_queues_the_work_of_each_part_before_the_next_part_is_written():
    deps = make_deps()
    deps.queue = WatchingQueue(deps.items)
    batch = seed_batch(deps, urls(60), stored=False)

    assert fanout.handle(deps, chunk(batch.batch_id, urls(60))) == "dispatched"

    assert deps.queue.stored_at_send == [25, 50, 60]
    sent = deps.queue.pop_work()
    assert [m.seq for m in sent] == list(range(60))
    assert (sent[0].item, sent[0].shard, sent[0].max_attempts, sent[0].timeout_s) == ("https://a.test/0", 0, 3, 20.0)
    assert set(deps.items.statuses(batch.batch_id).values()) == {ItemStatus.PENDING}


def test_a_replayed_chunk_resends_only_its_still_pending_items_and_never_duplicates_records():
    deps = make_deps()
    batch = seed_batch(deps, urls(5), stored=False)
    fanout.handle(deps, chunk(batch.batch_id, urls(5)))
    deps.queue.pop_work()
    now = deps.clock.now()
    deps.items.claim(ItemRef(batch.batch_id, 0, 0), "w0", now + 90, now)
    deps.items.cancel(ItemRef(batch.batch_id, 1, 0), now)
    deps.items.claim(ItemRef(batch.batch_id, 2, 0), "w2", now + 90, now)

    assert fanout.handle(deps, chunk(batch.batch_id, urls(5))) == "dispatched"

    assert [m.seq for m in deps.queue.pop_work()] == [3, 4]
    assert len(deps.items.items) == 5
    assert deps.items.statuses(batch.batch_id) == {
        0: ItemStatus.IN_PROGRESS,
        1: ItemStatus.CANCELLED,
        2: ItemStatus.IN_PROGRESS,
        3: ItemStatus.PENDING,
        4: ItemStatus.PENDING,
    }
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.in_progress, totals.cancelled, totals.total) == (2, 1, 5)


def test_a_chunk_whose_work_was_lost_sends_it_when_replayed():
    deps = make_deps()
    batch = seed_batch(deps, urls(5), stored=False)
    deps.queue.fail_next("send_work", RuntimeError("sqs unavailable"))
    with pytest.raises(RuntimeError):
        fanout.handle(deps, chunk(batch.batch_id, urls(5)))
    assert deps.queue.pop_work() == [] and len(deps.items.items) == 5

    fanout.handle(deps, chunk(batch.batch_id, urls(5)))

    assert [m.seq for m in deps.queue.pop_work()] == [0, 1, 2, 3, 4]
    assert len(deps.items.items) == 5


def test_a_later_chunk_numbers_its_items_from_its_first_seq_on_their_shards():
    deps = make_deps()
    batch = seed_batch(deps, urls(6), shards=2, stored=False)
    fanout.handle(deps, chunk(batch.batch_id, urls(6)[4:], first_seq=4))
    assert [(m.seq, m.shard, m.item) for m in deps.queue.pop_work()] == [
        (4, 0, "https://a.test/4"),
        (5, 1, "https://a.test/5"),
    ]


def test_a_chunk_of_a_queued_batch_is_stored_without_sending_work_until_the_batch_starts():
    deps = make_deps()
    batch = seed_batch(deps, urls(3), status=BatchStatus.QUEUED, stored=False)

    assert fanout.handle(deps, chunk(batch.batch_id, urls(3))) == "stored"

    assert deps.queue.pop_work() == []
    assert set(deps.items.statuses(batch.batch_id).values()) == {ItemStatus.PENDING}
    deps.batches.start(batch.batch_id, deps.clock.now())
    assert fanout.handle(deps, sweep("dispatch", batch.batch_id)) == "dispatch"
    assert [m.seq for m in deps.queue.pop_work()] == [0, 1, 2]


def test_a_chunk_of_a_cancelled_batch_ends_its_items_cancelled():
    deps = make_deps()
    batch = seed_batch(deps, urls(3), status=BatchStatus.CANCELLED, stored=False)

    assert fanout.handle(deps, chunk(batch.batch_id, urls(3))) == "cancelled"

    assert deps.queue.pop_work() == []
    assert set(deps.items.statuses(batch.batch_id).values()) == {ItemStatus.CANCELLED}
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.cancelled, totals.finished) == (3, 3)


def test_a_dispatch_sends_every_pending_item_once_page_by_page_and_skips_started_ones():
    deps = make_deps()
    batch = seed_batch(deps, urls(fanout.PAGE + 2))
    now = deps.clock.now()
    deps.items.claim(ItemRef(batch.batch_id, 3, 0), "w", now + 90, now)

    assert fanout.handle(deps, sweep("dispatch", batch.batch_id)) == "dispatch"
    first_page = deps.queue.pop_work()
    (more,) = deps.queue.fanout
    assert len(first_page) == fanout.PAGE and more.type == "dispatch" and more.cursor

    assert drain_fanout(deps) == ["dispatch"]
    seqs = [m.seq for m in first_page + deps.queue.pop_work()]
    assert sorted(seqs) == [s for s in range(fanout.PAGE + 2) if s != 3]
    assert deps.queue.pop_fanout() == []


def test_a_dispatch_of_a_batch_that_ended_sends_no_work():
    deps = make_deps()
    batch = seed_batch(deps, urls(3), status=BatchStatus.CANCELLED)
    assert fanout.handle(deps, sweep("dispatch", batch.batch_id)) == "dispatch"
    assert deps.queue.pop_work() == []


def test_the_last_dispatch_page_closes_a_batch_whose_items_all_ended_already():
    deps = make_deps()
    batch = seed_batch(deps, urls(2))
    for seq in (0, 1):
        deps.items.cancel(ItemRef(batch.batch_id, seq, 0), deps.clock.now())
    fanout.handle(deps, sweep("dispatch", batch.batch_id))
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.CANCELLED


def test_a_cancel_sweep_ends_every_pending_item_page_by_page_and_leaves_started_ones():
    deps = make_deps()
    batch = seed_batch(deps, urls(fanout.PAGE + 2), status=BatchStatus.CANCELLED)
    now = deps.clock.now()
    deps.items.claim(ItemRef(batch.batch_id, 7, 0), "w", now + 90, now)

    assert fanout.handle(deps, sweep("cancel", batch.batch_id)) == "cancel"
    assert [m.type for m in deps.queue.fanout] == ["cancel"]
    assert fanout.handle(deps, deps.queue.pop_fanout()[0]) == "cancel"
    assert [m.type for m in deps.queue.pop_fanout()] == ["export"]  # once the sweep ends, the results

    statuses = deps.items.statuses(batch.batch_id)
    assert statuses.pop(7) is ItemStatus.IN_PROGRESS  # its worker ends it (cancelled) when it sees the batch
    assert set(statuses.values()) == {ItemStatus.CANCELLED}
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.cancelled, totals.in_progress) == (fanout.PAGE + 1, 1)
    assert deps.queue.pop_work() == []


def test_a_message_for_an_unknown_batch_changes_nothing():
    deps = make_deps()
    assert fanout.handle(deps, chunk("b_" + "9" * 20, urls(2))) == "unknown_batch"
    assert deps.items.items == {} and deps.queue.work == []


class CancelledAsThePartIsWritten(FakeItemStore):
    """The batch is cancelled (and its sweep has run) while the chunk's first part is being written."""

    def put_pending(self, batch, first_seq, items, now):
        pending = super().put_pending(batch, first_seq, items, now)
        self.batches.end(batch.batch_id, BatchStatus.CANCELLED, now, (BatchStatus.PENDING,))
        return pending


def test_a_cancel_racing_a_chunk_is_seen_after_the_write_so_its_items_end_cancelled_not_sent():
    deps = make_deps()
    deps.items = CancelledAsThePartIsWritten(deps.batches)
    batch = seed_batch(deps, urls(3), stored=False)

    assert fanout.handle(deps, chunk(batch.batch_id, urls(3))) == "cancelled"

    assert deps.queue.pop_work() == []
    assert set(deps.items.statuses(batch.batch_id).values()) == {ItemStatus.CANCELLED}
