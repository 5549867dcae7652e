"""ItemStore on the batches table: item records, and the counter-shard writes that go with each change.

Every change (`item_changes`) is one TransactWriteItems: the conditional item update and its counter deltas
commit together or not at all, so a redelivered message can never count an item twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters import item_changes as changes
from scrapersky.adapters.ddb import (
    cancellation_codes,
    cancellation_items,
    conditional,
    de_item,
    put_new,
    raise_translated,
)
from scrapersky.adapters.expressions import Update
from scrapersky.adapters.item_changes import ItemChange, item_from_row
from scrapersky.adapters.item_pages import MAX_BLOCKS_PER_PAGE, ItemPages
from scrapersky.errors import RetryableStoreError
from scrapersky.models import ItemStatus
from scrapersky.ports import Applied, Claim, ClaimRefused, ItemStore
from scrapersky.records import BatchRecord, ErrorSample, ItemEnd, ItemError, ItemRecord, ItemRef

_TXN_RETRIES = 6  # transaction conflicts are short-lived: a few quick tries, then the message is retried
_DLQ_TRIES = 8
_CONDITION_FAILED = "ConditionalCheckFailed"


class ShardWouldComplete(Exception):
    """The guarded counter update found this to be the shard's last item."""


class AlsoConflict(Exception):
    """A further part of the change's transaction (ItemChange.also) failed its condition: nothing was written."""


class DynamoItemStore(ItemStore):
    """Items of every batch, in the block partitions of their batch (`B#<batch>#I<block>`, `I#<seq>`).

    `client` is a boto3 DynamoDB client; `put_concurrency` bounds the parallel conditional puts of a chunk;
    `block_items` (items per partition key) is the layout's, smaller only in tests that cross many blocks;
    `max_blocks_per_page` bounds the blocks one page reads (see item_pages)."""

    def __init__(
        self,
        table_name: str,
        client: Any,
        put_concurrency: int = 16,
        retention_s: float = bt.DEFAULT_RETENTION_S,
        block_items: int = bt.ITEM_BLOCK,
        max_blocks_per_page: int = MAX_BLOCKS_PER_PAGE,
    ) -> None:
        self.table = table_name
        self.ddb = client
        self.put_concurrency = put_concurrency
        self.retention_s = retention_s  # an item expires (table TTL) this long after it was stored
        self.block_items = block_items
        self.pages = ItemPages(client, table_name, block_items, max_blocks_per_page)

    # ---- writing and reading items ---------------------------------------------------------------------------
    def put_pending(self, batch: BatchRecord, first_seq: int, items: list[str], now: float) -> list[tuple[int, str]]:
        def put(seq_item: tuple[int, str]) -> tuple[int, str] | None:
            seq, item = seq_item
            ref = ItemRef(batch.batch_id, seq, batch.shard_of(seq))
            return seq_item if self._put_if_new(ref, item, now) else None

        if first_seq < 0 or first_seq + len(items) > bt.MAX_STORED_ITEMS:
            raise ValueError(f"seqs {first_seq}..{first_seq + len(items) - 1} are outside what the store holds")
        pairs = list(enumerate(items, start=first_seq))
        with ThreadPoolExecutor(max_workers=min(self.put_concurrency, max(1, len(pairs)))) as pool:
            return [r for r in pool.map(put, pairs) if r is not None]

    def _put_if_new(self, ref: ItemRef, item: str, now: float) -> bool:
        """True when the item is pending after the put: new, or stored earlier and not started yet (never
        overwritten: it may be running or done)."""
        old = put_new(self.ddb, self.table, changes.pending_row(ref, item, now, self.retention_s, self.block_items))
        if old is None:
            return True
        rec = item_from_row(old) if old else self.get(ref.batch_id, ref.seq)
        return rec is not None and rec.status is ItemStatus.PENDING

    def pending(self, batch_id: str, cursor: str | None, limit: int) -> tuple[list[ItemRecord], str | None]:
        return self._query(batch_id, ItemStatus.PENDING, limit, cursor, consistent=True)

    def query(
        self, batch_id: str, status: ItemStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[ItemRecord], str | None]:
        return self._query(batch_id, status, limit, cursor, consistent=False)

    def _query(
        self, batch_id: str, status: ItemStatus | None, limit: int, cursor: str | None, consistent: bool
    ) -> tuple[list[ItemRecord], str | None]:
        rows, nxt = self.pages.page(batch_id, status.value if status else None, limit, cursor, consistent)
        return [item_from_row(r) for r in rows], nxt

    def _key(self, ref: ItemRef) -> dict[str, Any]:
        return bt.item_key(ref.batch_id, ref.seq, self.block_items)

    def get(self, batch_id: str, seq: int) -> ItemRecord | None:
        key = bt.item_key(batch_id, seq, self.block_items)
        got = self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        row = de_item(got.get("Item"))
        return item_from_row(row) if row else None

    # ---- claiming --------------------------------------------------------------------------------------------
    def claim(self, ref: ItemRef, token: str, until: float, now: float) -> Claim | ClaimRefused:
        change = changes.claim(ref, token, until, now)
        for _ in range(_TXN_RETRIES):
            won, old = self._transact(change)
            if won:
                # the transaction returns nothing: read the item back for its attempts and last proxy
                got = self.get(ref.batch_id, ref.seq)
                return Claim(token, got.attempts, got.deferrals, got.last_proxy) if got else Claim(token, 0, 0, None)
            answer = self._claimed_already(old, ref, token, until, now)
            if answer is not None:
                return answer
        return ClaimRefused(terminal=False, busy_until=now + 5)

    def _claimed_already(
        self, old: ItemRecord | None, ref: ItemRef, token: str, until: float, now: float
    ) -> Claim | ClaimRefused | None:
        """The claim lost: refuse it, take a lapsed claim over, or None to try again (pending again, a race)."""
        if old is None or old.status.terminal:
            return ClaimRefused(terminal=True)
        if old.status is not ItemStatus.IN_PROGRESS:
            return None
        if old.claim_until is not None and old.claim_until >= now:
            return ClaimRefused(terminal=False, busy_until=old.claim_until)
        # The claim of a crashed delivery lapsed: take it over without touching the counters (still in progress).
        if self._take_over(ref, old.claim or "", token, until, now):
            return Claim(token, old.attempts, old.deferrals, old.last_proxy)
        return None

    def _take_over(self, ref: ItemRef, old_token: str, token: str, until: float, now: float) -> bool:
        u = Update().set(claim=token, claim_until=until, updated_at=now)
        u.when(
            "#status = :ip AND #claim = :old AND #claim_until < :n",
            ip=ItemStatus.IN_PROGRESS.value,
            old=old_token,
            n=now,
        )
        return conditional(self.ddb.update_item, TableName=self.table, Key=self._key(ref), **u.kwargs())

    # ---- changes ---------------------------------------------------------------------------------------------
    def finish(self, ref: ItemRef, token: str, end: ItemEnd, now: float, shard_last: int | None = None) -> Applied:
        """Without `shard_last`, a won finish answers shard_done=True: it may have been the last, look."""
        return self._apply(changes.ending(ref, end, now, ItemStatus.IN_PROGRESS, token, shard_last=shard_last))

    def finish_with(
        self, ref: ItemRef, token: str, end: ItemEnd, now: float, shard_last: int | None,
        also: tuple[dict[str, Any], ...], counters: dict[str, int],
    ) -> Applied:  # fmt: skip
        """finish, with further parts in the same transaction and further counters on the shard. Raises
        AlsoConflict when one of those parts failed its condition (read again and retry)."""
        change = changes.ending(ref, end, now, ItemStatus.IN_PROGRESS, token, shard_last=shard_last)
        return self._apply(dataclasses.replace(change, also=also, counters={**change.counters, **counters}))

    def requeue(
        self, ref: ItemRef, token: str, now: float, *,
        attempt_spent: bool, proxy_id: str | None, error: ItemError | None,
    ) -> Applied:  # fmt: skip
        return self._apply(changes.requeue(ref, token, now, attempt_spent, proxy_id, error))

    def cancel(self, ref: ItemRef, now: float, claimed_by: str | None = None) -> Applied:
        return self._apply(changes.cancel(ref, now, claimed_by))

    def fail_from_dead_letter(self, ref: ItemRef, item: str, error: ItemError, now: float) -> Applied:
        end = ItemEnd(succeeded=False, item=item, error=error, attempt_spent=False)
        # Read, then change from the state read; a race (another delivery moved it) just reads again.
        for _ in range(_DLQ_TRIES):
            rec = self.get(ref.batch_id, ref.seq)
            if rec is not None and rec.status.terminal:
                return Applied(False)
            if rec is None:  # a dead-lettered chunk: the item was never stored
                change = changes.ending(
                    ref,
                    end,
                    now,
                    ItemStatus.PENDING,
                    None,
                    create=changes.new_item_fields(ref, item, now, self.retention_s),
                )
            else:
                claim = rec.claim if rec.status is ItemStatus.IN_PROGRESS else None
                change = changes.ending(ref, end, now, rec.status, claim)
            applied = self._apply(change)
            if applied:
                return applied
        return Applied(False)

    def _apply(self, change: ItemChange) -> Applied:
        shard_done = change.to.terminal and change.shard_last is None  # unguarded: it may have been the last
        for _ in range(_TXN_RETRIES):
            try:
                won, _old = self._transact(change)
            except ShardWouldComplete:
                # this change finishes the shard's last item: apply it without the guard, and say so
                change, shard_done = dataclasses.replace(change, shard_last=None), True
                continue
            except RetryableStoreError:
                time.sleep(0.05)
                continue
            if won and change.sample:
                self._add_sample(change.ref, change.sample)
            return Applied(won, shard_done=won and shard_done)
        raise RetryableStoreError(f"change of {change.ref.batch_id}/{change.ref.seq} kept conflicting")

    def _transact(self, change: ItemChange) -> tuple[bool, ItemRecord | None]:
        """Writes the item change and its counter deltas atomically: (won, the item as it was when it lost)."""
        ref = change.ref
        item_op = {"TableName": self.table, "Key": self._key(ref), **change.item_update().kwargs()}
        shard_op = {
            "TableName": self.table,
            "Key": bt.shard_key(ref.batch_id, ref.shard),
            **change.counter_update().kwargs(),
        }
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {"Update": {**item_op, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                    {"Update": shard_op},
                    *change.also,
                ]
            )
            return True, None
        except ClientError as e:
            return self._refused(change, e)

    def _refused(self, change: ItemChange, e: ClientError) -> tuple[bool, ItemRecord | None]:
        """What a cancelled transaction means: the item's condition lost, or a part to try again."""
        ref = change.ref
        codes = cancellation_codes(e)
        if codes and codes[0] == _CONDITION_FAILED:
            old = cancellation_items(e)[0]
            if old and old.get(bt.CHANGE_MARK) == change.change_id:
                return True, None  # a retry of our own write that was applied: ours after all
            return False, item_from_row(old) if old else self.get(ref.batch_id, ref.seq)
        if len(codes) > 1 and codes[1] == _CONDITION_FAILED and change.shard_last is not None:
            raise ShardWouldComplete() from e
        if _CONDITION_FAILED in codes[2:]:
            raise AlsoConflict() from e
        raise_translated(e)
        raise e

    def _add_sample(self, ref: ItemRef, sample: ErrorSample) -> None:
        # best effort: a sample is a convenience, the counters already hold the truth
        u = Update().set_expr(
            "error_samples",
            "list_append(if_not_exists(#error_samples, :empty), :one)",
            empty=[],
            one=[dataclasses.asdict(sample)],
        )
        u.when("attribute_not_exists(#error_samples) OR size(#error_samples) < :max", max=bt.MAX_SAMPLES_PER_SHARD)
        with contextlib.suppress(ClientError):
            self.ddb.update_item(TableName=self.table, Key=bt.shard_key(ref.batch_id, ref.shard), **u.kwargs())
