"""The batches table's key layout (pure): a batch of the largest size the store supports spreads its items and
its counter shards over many partition keys, and item sort keys sort as their seqs."""

from __future__ import annotations

from collections import Counter

from scrapersky.adapters import batch_table as bt

BATCH = "b_0123456789ab0123456789ab"


def test_no_partition_key_holds_more_than_a_thousandth_of_a_million_items():
    per_key = Counter(bt.item_key(BATCH, seq)["pk"]["S"] for seq in range(bt.MAX_STORED_ITEMS))
    assert bt.MAX_STORED_ITEMS == 1_000_000
    assert len(per_key) == 1_000
    assert max(per_key.values()) <= bt.MAX_STORED_ITEMS // 1_000  # 0.1% of the batch at most
    assert bt.meta_key(BATCH)["pk"]["S"] not in per_key  # the batch record's key takes no item writes


def test_every_counter_shard_has_its_own_partition_key_apart_from_the_items():
    shard_keys = {bt.shard_key(BATCH, s)["pk"]["S"] for s in range(16)}
    item_keys = {bt.item_key(BATCH, s)["pk"]["S"] for s in range(0, bt.MAX_STORED_ITEMS, bt.ITEM_BLOCK)}
    assert len(shard_keys) == 16 and not shard_keys & item_keys
    assert bt.meta_key(BATCH)["pk"]["S"] not in shard_keys


def test_item_and_chunk_sort_keys_sort_as_their_seqs_past_a_million():
    seqs = [0, 9, 999_998, 999_999, 1_000_000, 1_000_002, 9_999_999]
    assert sorted(seqs, key=bt.item_sk) == seqs
    assert sorted(seqs, key=bt.chunk_sk) == seqs
    assert [bt.seq_of(bt.item_sk(s)) for s in seqs] == seqs
    assert bt.seq_of("I#000001") is None and bt.seq_of("I#\u0661" * 1) is None


def test_every_row_names_its_batch():
    for pk in (bt.batch_pk(BATCH), bt.item_key(BATCH, 999_999)["pk"]["S"], bt.shard_key(BATCH, 15)["pk"]["S"]):
        assert bt.batch_id_of(pk) == BATCH


def test_a_million_items_fan_out_chunks_spread_evenly_over_the_chunk_partitions():
    chunk_items = 100  # settings.chunk_items' default
    firsts = range(0, bt.MAX_STORED_ITEMS, chunk_items)
    per_key = Counter(bt.chunk_pk(BATCH, bt.chunk_part(first)) for first in firsts)
    assert len(per_key) == bt.CHUNK_PARTITIONS == 16
    one_block = bt.ITEM_BLOCK // chunk_items
    assert max(per_key.values()) <= len(firsts) // bt.CHUNK_PARTITIONS + one_block  # about 1/16 each
