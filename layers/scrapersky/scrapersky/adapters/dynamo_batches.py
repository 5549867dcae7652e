"""BatchStore on the batches table: batch records, counter shards (read side), group locks, client tokens.

The table layout is in `batch_table`; items and the counter writes that go with them are `DynamoItemStore`'s.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import (
    BATCH_GET_KEYS,
    batch_get,
    cancellation_codes,
    conditional,
    de_item,
    decode_cursor,
    encode_cursor,
    is_condition_failure,
    is_retryable,
    put_new_op,
    query_page,
    raise_translated,
    ser_item,
)
from scrapersky.adapters.expressions import Update
from scrapersky.models import BATCH_ID, BatchStatus
from scrapersky.ports import BatchStore
from scrapersky.records import BatchRecord, ErrorSample, ShardCounts

_BATCH_FIELDS = frozenset(f.name for f in dataclasses.fields(BatchRecord))
_LIST_CURSOR_KEYS = frozenset({"pk", "sk", "gsi1pk", "gsi1sk"})
_MOVE_TRIES = 4


def batch_row(batch: BatchRecord) -> dict[str, Any]:
    row = {
        "pk": bt.batch_pk(batch.batch_id),
        "sk": bt.META_SK,
        "gsi1pk": f"T#{batch.tenant_id}",
        "gsi1sk": batch.batch_id,
        **dataclasses.asdict(batch),
        "status": batch.status.value,
    }
    if not batch.fanout_sent:
        row[bt.UNSENT] = "U"  # until mark_fanout_sent: the sweeper finds batches whose create crashed mid-way
    if batch.status is BatchStatus.QUEUED and batch.auto_start and batch.group:
        # in its group's waiting line (sparse index) until it starts or ends
        row.update(gwpk=bt.waiting_line(batch.tenant_id, batch.group), gwsk=batch.batch_id)
    return row


def batch_from_row(row: dict[str, Any]) -> BatchRecord:
    fields = {k: v for k, v in row.items() if k in _BATCH_FIELDS}
    return BatchRecord(**{**fields, "status": BatchStatus(row["status"])})


def counts_from_row(row: dict[str, Any]) -> ShardCounts:
    errors = {k[len(bt.ERROR_COUNTER) :]: int(v) for k, v in row.items() if k.startswith(bt.ERROR_COUNTER) and int(v)}
    return ShardCounts(
        total=int(row.get("total", 0)),
        succeeded=int(row.get("succeeded", 0)),
        failed=int(row.get("failed", 0)),
        cancelled=int(row.get("cancelled", 0)),
        in_progress=int(row.get("in_progress", 0)),
        retries=int(row.get("retries", 0)),
        detected=int(row.get("detected", 0)),
        errors=errors,
        samples=tuple(ErrorSample(**s) for s in row.get("error_samples", [])),
        updated_at=row.get("updated_at"),
    )


def _token_row(batch: BatchRecord, token: str) -> dict[str, Any]:
    return {
        "pk": bt.token_pk(batch.tenant_id, token),
        "sk": bt.TOKEN_SK,
        "batch_id": batch.batch_id,
        "created_at": batch.created_at,
    }


def _shard_row(batch_id: str, shard: int, total: int) -> dict[str, Any]:
    counters = dict.fromkeys(("succeeded", "failed", "cancelled", "in_progress", "retries", bt.FINISHED), 0)
    return {"pk": bt.shard_pk(batch_id, shard), "sk": bt.shard_sk(shard), "total": total, **counters}


class DynamoBatchStore(BatchStore):
    """Batches, their counter shards, group locks and client tokens in one DynamoDB table.

    `client` is a boto3 DynamoDB client (built once by the composition root); `max_shards` is the most counter
    shards a batch is created with (settings.counter_shards_max): the status read asks for that many."""

    def __init__(
        self, table_name: str, client: Any, retention_s: float = bt.DEFAULT_RETENTION_S, max_shards: int = 16
    ) -> None:
        self.table = table_name
        self.ddb = client
        self.retention_s = retention_s  # every row of a batch expires (table TTL) this long after its creation
        self.max_shards = max(1, min(max_shards, BATCH_GET_KEYS - 1))  # the meta row and the shards: one request

    # ---- create ----------------------------------------------------------------------------------------------
    def create(
        self, batch: BatchRecord, shard_totals: list[int], client_token: str | None, take_group: bool
    ) -> tuple[BatchRecord, bool]:
        if batch.total_items > bt.MAX_STORED_ITEMS:
            raise ValueError(f"a batch holds at most {bt.MAX_STORED_ITEMS} items, not {batch.total_items}")
        batch = dataclasses.replace(batch, shards=len(shard_totals))
        ops, token_at, group_at = self._create_ops(batch, shard_totals, client_token, take_group)
        try:
            self.ddb.transact_write_items(TransactItems=ops)
            return batch, True
        except ClientError as e:
            refused = {i for i, code in enumerate(cancellation_codes(e)) if code == "ConditionalCheckFailed"}
            if client_token and token_at in refused:
                earlier = self._by_token(batch.tenant_id, client_token)
                if earlier:
                    return earlier, False  # a replayed create: the batch the first one stored
            if group_at in refused:
                # the group runs another batch: store this one queued in its line, started when the lock frees
                queued = dataclasses.replace(batch, status=BatchStatus.QUEUED, auto_start=True)
                return self.create(queued, shard_totals, client_token, take_group=False)
            raise_translated(e)
            raise

    def _create_ops(
        self, batch: BatchRecord, shard_totals: list[int], client_token: str | None, take_group: bool
    ) -> tuple[list[dict[str, Any]], int, int]:
        """The writes of a new batch in one transaction, and where its token and group-lock writes are (or -1)."""
        expiry = {bt.EXPIRES_AT: bt.expires_at(batch.created_at, self.retention_s)}
        ops = [self._put_new({**batch_row(batch), **expiry})]
        for i, total in enumerate(shard_totals):
            row = {**_shard_row(batch.batch_id, i, total), **expiry}
            ops.append({"Put": {"TableName": self.table, "Item": ser_item(row)}})
        token_at = group_at = -1
        if client_token:
            token_at = len(ops)
            ops.append(self._put_new({**_token_row(batch, client_token), **expiry}))
        if take_group and batch.group:
            group_at = len(ops)
            ops.append({"Update": self._take_group_update(batch.tenant_id, batch.group, batch.batch_id)})
        return ops, token_at, group_at

    def _put_new(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"Put": put_new_op(self.table, row)}

    def _by_token(self, tenant_id: str, token: str) -> BatchRecord | None:
        got = self.ddb.get_item(TableName=self.table, Key=bt.token_key(tenant_id, token), ConsistentRead=True)
        row = de_item(got.get("Item"))
        return self.get(row["batch_id"]) if row else None

    # ---- read ------------------------------------------------------------------------------------------------
    def get(self, batch_id: str) -> BatchRecord | None:
        got = self.ddb.get_item(TableName=self.table, Key=bt.meta_key(batch_id), ConsistentRead=True)
        row = de_item(got.get("Item"))
        return batch_from_row(row) if row else None

    def get_with_counts(self, batch_id: str) -> tuple[BatchRecord, list[ShardCounts]] | None:
        """One BatchGetItem of the meta row and the keys of shards 0..max_shards-1, whatever the item count."""
        keys = [bt.meta_key(batch_id), *(bt.shard_key(batch_id, s) for s in range(self.max_shards))]
        rows = batch_get(self.ddb, self.table, keys)
        meta = next((r for r in rows if r["sk"] == bt.META_SK), None)
        if meta is None:
            return None
        batch = batch_from_row(meta)
        if batch.shards > self.max_shards:  # created when counter_shards_max was higher: read the rest too
            more = [bt.shard_key(batch_id, s) for s in range(self.max_shards, batch.shards)]
            rows += batch_get(self.ddb, self.table, more)
        shards = sorted((r for r in rows if r["sk"].startswith(bt.SHARD_PREFIX)), key=lambda r: str(r["sk"]))
        return batch, [counts_from_row(r) for r in shards]

    def list(
        self, tenant_id: str, limit: int, cursor: str | None, status: BatchStatus | None, group: str | None
    ) -> tuple[list[tuple[BatchRecord, list[ShardCounts]]], str | None]:
        partition = f"T#{tenant_id}"
        start = decode_cursor(cursor, _LIST_CURSOR_KEYS, lambda k: _list_key(k, partition))
        kwargs = bt.query_kwargs(
            self.table, "gsi1pk = {t}", {"t": partition}, status=status.value if status else None, group=group
        )
        kwargs |= {"IndexName": "by_tenant", "ScanIndexForward": False}  # ids sort by creation time: newest first
        found, last = query_page(self.ddb, kwargs, limit, start)
        # the index holds only keys, status and group: the full record and counts come from the batch itself
        full = [self.get_with_counts(row["gsi1sk"]) for row in found]
        return [f for f in full if f is not None], encode_cursor(last)

    # ---- status ----------------------------------------------------------------------------------------------
    def start(self, batch_id: str, now: float) -> bool:
        u = Update().set(auto_start=False).remove("gwpk", "gwsk")  # out of its group's waiting line
        return self._move(batch_id, BatchStatus.PENDING, (BatchStatus.QUEUED,), now, u)

    def begin_processing(self, batch_id: str, now: float) -> bool:
        return self._move(batch_id, BatchStatus.PROCESSING, (BatchStatus.PENDING,), now, Update().set(started_at=now))

    def end(self, batch_id: str, status: BatchStatus, now: float, from_status: tuple[BatchStatus, ...]) -> bool:
        # a queued batch may end (cancel): it must leave its group's waiting line too
        u = Update().set(completed_at=now).remove("gwpk", "gwsk")
        # with the end, atomically: its after-end messages are pending (a "U" mark stays: its redrive comes first)
        u.set_expr(bt.UNSENT, "if_not_exists(#unsent, :e)", e=bt.AFTER_END)
        return self._move(batch_id, status, from_status, now, u)

    def after_end_sent(self, batch_id: str) -> None:
        u = Update().remove(bt.UNSENT).when("#unsent = :e", e=bt.AFTER_END)
        conditional(self.ddb.update_item, TableName=self.table, Key=bt.meta_key(batch_id), **u.kwargs())

    def _move(
        self, batch_id: str, to: BatchStatus, from_status: tuple[BatchStatus, ...], now: float, u: Update
    ) -> bool:
        """A conditional status change. Retried on throttling and 5xx answers; a retry of a write that was
        applied (its answer lost) finds the record marked with this change and says True, so a batch's end is
        never taken for lost and its group is still handed over."""
        mark = uuid.uuid4().hex
        u.set(status=to.value, updated_at=now, **{bt.CHANGE_MARK: mark}).when("attribute_exists(pk)")
        froms = {f"s{i}": s.value for i, s in enumerate(from_status)}
        u.when(f"#status IN ({', '.join(':' + k for k in froms)})", **froms)
        kwargs = {"TableName": self.table, "Key": bt.meta_key(batch_id), **u.kwargs()}
        for attempt in range(_MOVE_TRIES):
            try:
                self.ddb.update_item(**kwargs, ReturnValuesOnConditionCheckFailure="ALL_OLD")
                return True
            except ClientError as e:
                if is_condition_failure(e):
                    return (de_item(e.response.get("Item")) or {}).get(bt.CHANGE_MARK) == mark
                if attempt == _MOVE_TRIES - 1 or not is_retryable(e):
                    raise_translated(e)
                    raise
                time.sleep(0.05 * 2**attempt)
        return False

    def mark_fanout_sent(self, batch_id: str) -> None:
        u = Update().set(fanout_sent=True).remove(bt.UNSENT).when("attribute_exists(pk)")
        self.ddb.update_item(TableName=self.table, Key=bt.meta_key(batch_id), **u.kwargs())

    def mark_exported(self, batch_id: str, keys: dict[str, str]) -> None:
        u = Update().set(result_keys=keys).when("attribute_exists(pk)")
        self.ddb.update_item(TableName=self.table, Key=bt.meta_key(batch_id), **u.kwargs())

    # ---- groups ----------------------------------------------------------------------------------------------
    def _take_group_update(self, tenant_id: str, group: str, batch_id: str) -> dict[str, Any]:
        # taking a lock one already holds succeeds: a retried start is not refused by itself
        u = Update().set(running=batch_id, tenant_id=tenant_id, group=group, **{bt.GROUPS: "G"})
        u.when("attribute_not_exists(#running) OR #running = :b", b=batch_id)
        return {"TableName": self.table, "Key": bt.group_key(tenant_id, group), **u.kwargs()}

    def take_group(self, tenant_id: str, group: str, batch_id: str) -> bool:
        return conditional(self.ddb.update_item, **self._take_group_update(tenant_id, group, batch_id))

    def release_group(self, tenant_id: str, group: str, batch_id: str) -> bool:
        u = Update().remove("running").when("#running = :b", b=batch_id)
        return conditional(self.ddb.update_item, TableName=self.table, Key=bt.group_key(tenant_id, group), **u.kwargs())

    def next_waiting_in_group(self, tenant_id: str, group: str, after: str | None = None) -> str | None:
        line = {"w": bt.waiting_line(tenant_id, group)}
        condition = "gwpk = {w}"
        if after:
            condition, line = "gwpk = {w} AND gwsk > {a}", {**line, "a": after}
        page = self.ddb.query(
            **bt.query_kwargs(self.table, condition, line),
            IndexName="group_wait",
            ScanIndexForward=True,  # oldest first: batch ids sort by creation time
            Limit=1,
        )
        rows = [de_item(i) or {} for i in page.get("Items", [])]
        return str(rows[0]["gwsk"]) if rows else None


def _list_key(key: dict[str, str], partition: str) -> bool:
    """A start key of the tenant's listing as we give them out: a batch record of that tenant."""
    return (
        key["gsi1pk"] == partition
        and key["sk"] == bt.META_SK
        and BATCH_ID.fullmatch(key["gsi1sk"]) is not None
        and key["pk"] == bt.batch_pk(key["gsi1sk"])
    )
