"""TargetHistory on the batches table: one row per (tenant, check, target) under `TGT#<tenant>#<check>` (sort key:
the target, so a check's targets list in order). A record changes only in the transaction that ends its item
(DynamoItemStore.finish_with), guarded by the record's version: a concurrent change of the same target makes the
transaction fail as a whole, and it is read and applied again. An item already ended (a redelivery) fails the
item's condition: the record is left alone."""

from __future__ import annotations

import dataclasses
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import (
    conditional,
    de_item,
    decode_cursor,
    encode_cursor,
    query_page,
    raise_translated,
    ser,
    ser_item,
)
from scrapersky.adapters.dynamo_items import AlsoConflict, DynamoItemStore
from scrapersky.checks import FinishedCheck, TargetEvent, TargetRecord, apply_check
from scrapersky.errors import RetryableStoreError
from scrapersky.profile_ports import HistoryEnd, TargetHistory, TargetKey
from scrapersky.records import ItemEnd, ItemRef

PREFIX = "TGT#"
DETECTED = "detected"  # the shard counter of items that ended present
_TRIES = 8
_RECORD = {f.name for f in dataclasses.fields(TargetRecord)}


def target_pk(tenant_id: str, check: str) -> str:
    return f"{PREFIX}{tenant_id}#{check}"


def _key(key: TargetKey) -> dict[str, Any]:
    return {"pk": ser(target_pk(key.tenant_id, key.check)), "sk": ser(key.target)}


def _record(row: dict[str, Any]) -> TargetRecord:
    return TargetRecord.from_dict({k: v for k, v in row.items() if k in _RECORD})


class DynamoTargetHistory(TargetHistory):
    """`client` is a boto3 DynamoDB client; `items` the item store whose end the record is written with."""

    def __init__(
        self, table_name: str, client: Any, items: DynamoItemStore, retention_s: float = bt.DEFAULT_RETENTION_S
    ) -> None:
        self.table = table_name
        self.ddb = client
        self.items = items
        self.retention_s = retention_s

    def finish(
        self, ref: ItemRef, token: str, end: ItemEnd, now: float, shard_last: int | None, key: TargetKey,
        finished: FinishedCheck, detected: bool,
    ) -> HistoryEnd:  # fmt: skip
        counters = {DETECTED: 1} if detected else {}
        for _ in range(_TRIES):
            row = self._row(key)
            version = int(row.get("version", 0)) if row else 0
            applied = apply_check(_record(row) if row else TargetRecord(key.target, key.check), finished)
            put = self._put(key, applied.record, version, now)
            try:
                won = self.items.finish_with(ref, token, end, now, shard_last, (put,), counters)
            except AlsoConflict:
                continue  # another item of this target changed it first: apply to what it wrote
            return HistoryEnd(won, applied.event if won else None)
        raise RetryableStoreError(f"the record of target {key.target} kept changing")

    def record(self, key: TargetKey, finished: FinishedCheck, now: float) -> TargetEvent | None:
        for _ in range(_TRIES):
            row = self._row(key)
            version = int(row.get("version", 0)) if row else 0
            applied = apply_check(_record(row) if row else TargetRecord(key.target, key.check), finished)
            if conditional(self.ddb.put_item, **self._put(key, applied.record, version, now)["Put"]):
                return applied.event
        raise RetryableStoreError(f"the record of target {key.target} kept changing")

    def _row(self, key: TargetKey) -> dict[str, Any] | None:
        try:
            got = self.ddb.get_item(TableName=self.table, Key=_key(key), ConsistentRead=True)
        except ClientError as e:
            raise_translated(e)
            raise
        return de_item(got.get("Item"))

    def _put(self, key: TargetKey, record: TargetRecord, version: int, now: float) -> dict[str, Any]:
        row = {
            **record.to_dict(),
            "pk": target_pk(key.tenant_id, key.check),
            "sk": key.target,
            "version": version + 1,
            "updated_at": now,
            bt.EXPIRES_AT: bt.expires_at(now, self.retention_s),
        }
        condition = "attribute_not_exists(pk)" if version == 0 else "version = :v"
        put: dict[str, Any] = {"TableName": self.table, "Item": ser_item(row), "ConditionExpression": condition}
        if version:
            put["ExpressionAttributeValues"] = {":v": ser(version)}
        return {"Put": put}

    def get(self, key: TargetKey) -> TargetRecord | None:
        row = self._row(key)
        return _record(row) if row else None

    def list(
        self, tenant_id: str, check: str, active: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[TargetRecord], str | None]:
        pk = target_pk(tenant_id, check)
        start = decode_cursor(cursor, frozenset({"pk", "sk"}), lambda k: k["pk"] == pk)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": ser(pk)},
        }
        if active is not None:
            kwargs["FilterExpression"] = "#active = :a"
            kwargs["ExpressionAttributeNames"] = {"#active": "active"}
            kwargs["ExpressionAttributeValues"][":a"] = ser(active)
        rows, last = query_page(self.ddb, kwargs, limit, start)
        return [_record(r) for r in rows], encode_cursor(last)

    def known_check(self, tenant_id: str, check: str) -> bool:
        rows, _ = query_page(
            self.ddb,
            {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": ser(target_pk(tenant_id, check))},
            },
            1,
            None,
        )
        return bool(rows)
