"""Pages of a batch's items in seq order across their block partitions (`batch_table`), with exact cursors.

A cursor is a key `{pk, sk}` of an item place: "go on after this seq". It is the last key a page read (a
row returned or filtered out), or the last seq of a block read to its end; either way the next page starts
exactly after it, so paging has no gap and no duplicate. A cursor is checked back against the batch: its sort
key written exactly as `item_sk` writes it, its partition the block of that seq in this batch, its seq within
the batch's blocks; anything else is InvalidCursor (a 400), never a query of someone else's partition.

One page reads at most `max_blocks` blocks: a filtered listing of a million items with few matches would else
read the whole batch in one request (an API call past its timeout). Such a page may hold fewer than `limit`
items, even none, and still a cursor; every caller goes on while there is a cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import de_item, decode_cursor, encode_cursor, query_page

_CURSOR_KEYS = frozenset({"pk", "sk"})
MAX_BLOCKS_PER_PAGE = 64  # at most ~64 MB read for one page (a block is about one 1 MB Query page)


@dataclass(frozen=True)
class ItemPages:
    """Reads pages of one table's items; `block_items` must be the one the items were written with."""

    ddb: Any
    table: str
    block_items: int = bt.ITEM_BLOCK
    max_blocks: int = MAX_BLOCKS_PER_PAGE

    def page(
        self, batch_id: str, status: str | None, limit: int, cursor: str | None, consistent: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` item rows (with this status, if given) after the cursor, and the cursor to go on from
        (None once the batch's last block is read)."""
        blocks = self._blocks(batch_id, consistent)
        block, start = self._resume(batch_id, cursor, blocks)
        found: list[dict[str, Any]] = []
        budget = range(block, min(blocks, block + self.max_blocks))
        while block in budget and len(found) < limit:
            kwargs = bt.query_kwargs(
                self.table,
                "pk = {p} AND begins_with(sk, {i})",
                {"p": bt.block_pk(batch_id, block), "i": bt.ITEM_PREFIX},
                status=status,
            )
            rows, last = query_page(self.ddb, {**kwargs, "ConsistentRead": consistent}, limit - len(found), start)
            found.extend(rows)
            if last is not None:  # the page filled up inside this block
                return found, encode_cursor(last)
            block, start = block + 1, None
        if block >= blocks:
            return found, None
        end = block * self.block_items - 1  # the page filled up, or ran out of blocks, at the end of the one before
        return found, encode_cursor({"pk": bt.item_pk(batch_id, end, self.block_items), "sk": bt.item_sk(end)})

    def _blocks(self, batch_id: str, consistent: bool) -> int:
        """How many blocks the batch's items span (0 for a batch not stored): its seqs are 0..total_items-1."""
        got = self.ddb.get_item(
            TableName=self.table,
            Key=bt.meta_key(batch_id),
            ProjectionExpression="total_items",
            ConsistentRead=consistent,
        )
        total = int((de_item(got.get("Item")) or {}).get("total_items", 0))
        return bt.block_of(total - 1, self.block_items) + 1 if total > 0 else 0

    def _resume(self, batch_id: str, cursor: str | None, blocks: int) -> tuple[int, dict[str, str] | None]:
        """Where a page starts: (block, exclusive start key in it or None for the block's start)."""
        if not cursor:
            return 0, None

        def belongs(k: dict[str, str]) -> bool:
            seq = bt.seq_of(k["sk"])
            return (
                seq is not None
                and bt.block_of(seq, self.block_items) < blocks
                and k["pk"] == bt.item_pk(batch_id, seq, self.block_items)
            )

        start = decode_cursor(cursor, _CURSOR_KEYS, belongs)
        seq = bt.seq_of(start["sk"]) if start else None
        if start is None or seq is None:  # not reached: a cursor was given, so it decoded or raised
            return 0, None
        if (seq + 1) % self.block_items == 0:  # after a block's last seq: the next block, from its start
            return bt.block_of(seq, self.block_items) + 1, None
        return bt.block_of(seq, self.block_items), start
