import pytest
from scrapersky.domain.progress import batch_view, decide_final_status, total
from scrapersky.models import BatchStatus
from scrapersky.records import BatchRecord, ShardCounts
from scrapersky.services.batches import chunk_items, shard_totals

META = BatchRecord(
    batch_id="b_x",
    tenant_id="t_x",
    kind="page",
    status=BatchStatus.PROCESSING,
    total_items=100,
    shards=2,
    created_at=1000.0,
    updated_at=1000.0,
    started_at=1000.0,
)


def test_view_counts_always_add_up_to_the_total():
    counts = total(
        [
            ShardCounts(succeeded=30, failed=2, in_progress=3, retries=4, errors={"http_404": 2}, updated_at=1050.0),
            ShardCounts(succeeded=10, cancelled=0, in_progress=2),
        ]
    )
    v = batch_view(META, counts, now=1060.0)
    assert v["succeeded"] + v["failed"] + v["cancelled"] + v["in_progress"] + v["pending"] == 100
    assert v["progress_pct"] == 42.0
    assert v["errors"]["by_code"] == {"http_404": 2}
    assert v["duration_s"] == 60.0
    assert v["throughput_per_min"] == 42.0
    assert v["estimated_completion_time"] is not None


@pytest.mark.parametrize(
    ("succeeded", "failed", "cancelled", "expected"),
    [
        (10, 0, 0, BatchStatus.COMPLETED),
        (0, 10, 0, BatchStatus.FAILED),
        (7, 3, 0, BatchStatus.PARTIAL),
        (5, 0, 5, BatchStatus.COMPLETED),
        (9, 0, 0, None),
    ],
)
def test_final_status_only_when_every_item_finished(succeeded, failed, cancelled, expected):
    assert decide_final_status(ShardCounts(succeeded=succeeded, failed=failed, cancelled=cancelled), 10) == expected


def test_shards_split_the_total_exactly():
    for n in (1, 7, 250, 251, 10_000):
        shares = shard_totals(n, 16)
        assert sum(shares) == n
        assert max(shares) - min(shares) <= 1


def test_chunks_keep_order_and_sequence_numbers():
    items = [f"https://e.example/{i}" for i in range(250)]
    chunks = chunk_items(items, 100)
    assert [first for first, _ in chunks] == [0, 100, 200]
    assert [i for _, c in chunks for i in c] == items


def test_a_small_first_chunk_starts_the_batch_sooner_without_changing_the_rest():
    items = [f"https://e.example/{i}" for i in range(250)]
    chunks = chunk_items(items, 100, first_items=10)
    assert [(first, len(c)) for first, c in chunks] == [(0, 10), (10, 100), (110, 100), (210, 40)]
    assert [i for _, c in chunks for i in c] == items
    assert chunk_items(items[:5], 100, first_items=10) == [(0, items[:5])]
