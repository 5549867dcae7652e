"""Big batches on moto: items spread over block partitions list in exact seq order through every page size,
`pending()` pages exactly, counters stay exact, and the status read is one request whatever the item count."""

from __future__ import annotations

import base64
import json

import pytest
from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.dynamo_batches import DynamoBatchStore
from scrapersky.adapters.dynamo_items import DynamoItemStore
from scrapersky.adapters.dynamo_sweeps import DynamoSweeps
from scrapersky.adapters.item_pages import MAX_BLOCKS_PER_PAGE
from scrapersky.errors import InvalidCursor
from scrapersky.models import ItemStatus
from scrapersky.records import BatchRecord, ItemRef

from tests.integration.test_stores import NOW, SUCCESS, TIMEOUT, new_batch

BLOCK = 4  # a small block, so a few dozen items cross many partitions
TOTAL = BLOCK * 5 + 3  # 6 blocks, the last one partial


class Calls:
    """Counts the DynamoDB requests a client really sends (a botocore event hook, not a mock)."""

    def __init__(self, client) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.dynamodb", self._seen)

    def _seen(self, model, **_kwargs) -> None:
        self.names.append(model.name)


def made(ddb, total: int, shards: int = 3, block: int = BLOCK) -> tuple[BatchRecord, DynamoItemStore]:
    batches = DynamoBatchStore("batches", ddb)
    fresh = new_batch(total, shards)
    batch, created = batches.create(fresh, [fresh.shard_share(s) for s in range(shards)], None, False)
    assert created
    return batch, DynamoItemStore("batches", ddb, block_items=block)


def all_pages(read, limit: int) -> tuple[list[int], int]:
    """Every seq a listing gives, page by page, and how many pages it took."""
    seqs: list[int] = []
    cursor, pages = None, 0
    while True:
        rows, cursor = read(limit, cursor)
        pages += 1
        seqs += [r.seq for r in rows]
        assert pages <= 10 * TOTAL, "the listing never ends"
        if cursor is None:
            return seqs, pages


def ref(batch: BatchRecord, seq: int) -> ItemRef:
    return ItemRef(batch.batch_id, seq, batch.shard_of(seq))


def test_items_over_many_blocks_list_in_seq_order_through_every_page_size(ddb):
    batch, items = made(ddb, TOTAL)
    items.put_pending(batch, 0, [f"https://example.com/{i}" for i in range(TOTAL)], NOW)
    partitions = {r["pk"]["S"] for r in ddb.scan(TableName="batches")["Items"] if "#I" in r["pk"]["S"]}
    assert len(partitions) == 6

    for limit in range(1, TOTAL + 2):
        seqs, pages = all_pages(lambda n, c: items.query(batch.batch_id, None, n, c), limit)
        assert seqs == list(range(TOTAL)), limit  # no gap, no duplicate, in seq order
        assert pages == -(-TOTAL // limit), limit  # no empty page at the end


def test_filtered_listings_and_pending_pages_are_exact_across_blocks(ddb):
    batch, items = made(ddb, TOTAL)
    items.put_pending(batch, 0, [f"https://example.com/{i}" for i in range(TOTAL)], NOW)
    cancelled = [s for s in range(TOTAL) if s % 3 == 0 or s // BLOCK == 2]  # a whole block, and some of each
    for s in cancelled:
        assert items.cancel(ref(batch, s), NOW + 1)
    pending = [s for s in range(TOTAL) if s not in cancelled]

    for limit in (1, 2, 3, BLOCK, BLOCK + 1, TOTAL):
        got, _ = all_pages(lambda n, c: items.query(batch.batch_id, ItemStatus.CANCELLED, n, c), limit)
        assert got == cancelled, limit
        got, _ = all_pages(lambda n, c: items.pending(batch.batch_id, c, n), limit)
        assert got == pending, limit


def test_a_block_never_stored_is_skipped_and_the_listing_goes_on(ddb):
    batch, items = made(ddb, TOTAL)
    for first in (0, BLOCK * 3, BLOCK * 5):  # blocks 1, 2 and 4 were never stored (dead-lettered chunks)
        last = min(first + BLOCK, TOTAL)
        items.put_pending(batch, first, [f"https://example.com/{i}" for i in range(first, last)], NOW)
    stored = [*range(BLOCK), *range(BLOCK * 3, BLOCK * 4), *range(BLOCK * 5, TOTAL)]
    for limit in (1, 3, BLOCK, TOTAL):
        got, _ = all_pages(lambda n, c: items.query(batch.batch_id, None, n, c), limit)
        assert got == stored, limit


def test_a_page_reads_a_bounded_number_of_blocks_and_the_cursor_goes_on_exactly(ddb):
    batch, _ = made(ddb, TOTAL)
    items = DynamoItemStore("batches", ddb, block_items=BLOCK, max_blocks_per_page=2)
    items.put_pending(batch, 0, [f"https://example.com/{i}" for i in range(TOTAL)], NOW)
    for s in (1, 2, 22):  # matches only in the first and the last block
        assert items.cancel(ref(batch, s), NOW + 1)
    calls = Calls(ddb)
    rows, cursor = items.query(batch.batch_id, ItemStatus.CANCELLED, 10, None)
    assert [r.seq for r in rows] == [1, 2] and cursor  # a short page: two blocks read, four more to go
    assert calls.names.count("Query") == 2
    got, pages = all_pages(lambda n, c: items.query(batch.batch_id, ItemStatus.CANCELLED, n, c), 10)
    assert got == [1, 2, 22] and pages == 3


def test_counters_stay_exact_when_items_of_many_blocks_change(ddb):
    batch, items = made(ddb, TOTAL)
    items.put_pending(batch, 0, [f"https://example.com/{i}" for i in range(TOTAL)], NOW)
    for s in range(TOTAL):
        assert items.claim(ref(batch, s), f"w{s}", NOW + 30, NOW)
    for s in range(TOTAL):
        end = SUCCESS if s % 2 else TIMEOUT
        assert items.finish(ref(batch, s), f"w{s}", end, NOW + 1)
        assert not items.finish(ref(batch, s), f"w{s}", end, NOW + 2)  # a redelivery counts nothing
    got = DynamoBatchStore("batches", ddb).get_with_counts(batch.batch_id)
    assert got is not None
    shards = got[1]
    assert [s.total for s in shards] == [batch.shard_share(i) for i in range(3)]
    assert sum(s.succeeded for s in shards) == TOTAL // 2
    assert sum(s.failed for s in shards) == TOTAL - TOTAL // 2
    assert sum(s.errors.get("timeout", 0) for s in shards) == TOTAL - TOTAL // 2
    assert sum(s.in_progress for s in shards) == 0


@pytest.mark.parametrize(("total", "shards"), [(1, 1), (1_500, 16)])
def test_the_status_read_is_one_request_whatever_the_item_count(ddb, total, shards):
    batch, items = made(ddb, total, shards, block=bt.ITEM_BLOCK)
    items.put_pending(batch, 0, [f"https://example.com/{i}" for i in range(total)], NOW)
    for s in (0, total - 1):
        assert items.claim(ref(batch, s), "w", NOW + 30, NOW)
    batches = DynamoBatchStore("batches", ddb)
    calls = Calls(ddb)

    got = batches.get_with_counts(batch.batch_id)

    assert calls.names == ["BatchGetItem"]
    assert got is not None and got[0] == batch
    assert len(got[1]) == shards and sum(s.total for s in got[1]) == total
    assert sum(s.in_progress for s in got[1]) == (1 if total == 1 else 2)


def test_shards_beyond_what_the_store_asks_for_first_are_still_read(ddb):
    batch, _ = made(ddb, 100, shards=5)
    got = DynamoBatchStore("batches", ddb, max_shards=2).get_with_counts(batch.batch_id)
    assert got is not None and [s.total for s in got[1]] == [batch.shard_share(i) for i in range(5)]


def test_the_last_items_of_a_million_list_in_order_after_the_first(ddb):
    batch, items = made(ddb, bt.MAX_STORED_ITEMS, shards=16, block=bt.ITEM_BLOCK)
    last = list(range(999_995, 1_000_000))
    items.put_pending(batch, 0, ["https://example.com/0", "https://example.com/1"], NOW)
    items.put_pending(batch, last[0], [f"https://example.com/{i}" for i in last], NOW)
    # through 998 blocks never stored, at most MAX_BLOCKS_PER_PAGE of them a page
    seqs, pages = all_pages(lambda n, c: items.query(batch.batch_id, None, n, c), 3)
    assert seqs == [0, 1, *last]
    assert pages == -(-1_000 // MAX_BLOCKS_PER_PAGE) + 1  # the last block's 5 items take two pages of 3
    assert items.get(batch.batch_id, 999_999) is not None
    with pytest.raises(ValueError):
        items.put_pending(batch, 999_999, ["https://example.com/a", "https://example.com/b"], NOW)


def b64(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def test_a_forged_item_cursor_is_refused_whatever_block_it_names(ddb):
    batch, items = made(ddb, TOTAL)
    other, _ = made(ddb, TOTAL)
    items.put_pending(batch, 0, [f"https://example.com/{i}" for i in range(TOTAL)], NOW)
    b, o = batch.batch_id, other.batch_id
    _, ours = items.query(b, None, 5, None)
    assert ours and items.query(b, None, 1, ours)[0][0].seq == 5  # a real cursor goes on
    forged = [
        {"pk": f"B#{b}#I0001", "sk": "I#0000001"},  # a block that is not the seq's
        {"pk": f"B#{b}#I0006", "sk": "I#0000024"},  # past the batch's last block
        {"pk": f"B#{b}#I0000", "sk": "I#000001"},  # six digits
        {"pk": f"B#{b}#I0000", "sk": "I#\u0661\u0661\u0661\u0661\u0661\u0661\u0661"},  # digits, not ASCII ones
        {"pk": f"B#{b}#I0000", "sk": "I#"},
        {"pk": f"B#{b}#C000", "sk": "C#000"},
        {"pk": f"B#{b}", "sk": "A"},
        {"pk": f"B#{o}#I0000", "sk": "I#0000001"},
    ]
    for key in forged:
        with pytest.raises(InvalidCursor):
            items.query(b, None, 2, b64(key))
        with pytest.raises(InvalidCursor):
            items.pending(b, b64(key), 2)


def test_fan_out_chunks_past_seq_999_999_come_back_in_order_from_several_partitions(ddb):
    sweeps = DynamoSweeps("batches", ddb)
    firsts = [0, 100, 1_000, 15_900, 16_000, 500_000, 999_900, 999_999, 1_000_000]
    chunks = [(first, [f"https://example.com/{first}"]) for first in firsts]
    sweeps.save_chunks("b_000000000001000000000000", list(reversed(chunks)), NOW)
    assert sweeps.chunks("b_000000000001000000000000") == chunks
    partitions = {r["pk"]["S"] for r in ddb.scan(TableName="batches")["Items"]}
    assert len(partitions) > 1
