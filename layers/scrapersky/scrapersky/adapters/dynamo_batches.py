"""BatchStore on one DynamoDB table.

Keys (pk, sk):
  B#<batch>  A          the batch record (GSI by_tenant: gsi1pk=T#<tenant>, gsi1sk=<batch id, time-sortable>)
  B#<batch>  C#<nnn>    counter shard nnn: its share of the total and its counters
  B#<batch>  I#<seq>    one item
  G#<tenant>#<group> L  the group lock (running = batch id)
  K#<tenant>#<token> T  a client token -> batch id
Batches queued behind a busy group carry gwpk/gwsk (sparse GSI group_wait) until they start.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters.ddb import (
    cancellation_codes,
    cancellation_items,
    de_item,
    is_condition_failure,
    raise_if_retryable,
    ser,
    ser_item,
    values,
)
from scrapersky.errors import RetryableStoreError
from scrapersky.ports import Applied, BatchStore, Claim, ClaimRefused, Transition

META_SK = "A"
TERMINAL_ITEM = ("succeeded", "failed", "cancelled")
_TXN_RETRIES = 6


class ShardWouldComplete(Exception):
    """The guarded counter update found this to be the shard's last item."""


def batch_pk(batch_id: str) -> str:
    return f"B#{batch_id}"


def item_sk(seq: int) -> str:
    return f"I#{seq:06d}"


def shard_sk(shard: int) -> str:
    return f"C#{shard:03d}"


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None, keys: frozenset[str], prefix: tuple[str, str]) -> dict[str, Any] | None:
    """A cursor is a start key we gave out: exactly these string keys, and `prefix[0]` starting with prefix[1]."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as e:
        raise ValueError("cursor is not valid") from e
    if (
        not isinstance(key, dict)
        or set(key) != keys
        or not all(isinstance(v, str) and 0 < len(v) <= 1024 for v in key.values())
        or not key[prefix[0]].startswith(prefix[1])
    ):
        raise ValueError("cursor is not valid")
    return key


class DynamoBatchStore(BatchStore):
    """Batches, items, counter shards, group locks and client tokens in one DynamoDB table."""

    def __init__(self, table_name: str, client: Any, put_concurrency: int = 16) -> None:
        self.table = table_name
        self.ddb = client
        self.put_concurrency = put_concurrency

    # ---- batches -----------------------------------------------------------------------------------------
    def create_batch(
        self, meta: dict[str, Any], shard_totals: list[int], client_token: str | None, take_group: bool
    ) -> tuple[dict[str, Any], bool]:
        bid, tenant = meta["batch_id"], meta["tenant_id"]
        record = {
            "pk": batch_pk(bid),
            "sk": META_SK,
            "gsi1pk": f"T#{tenant}",
            "gsi1sk": bid,
            **meta,
            "shards": len(shard_totals),
        }
        ops: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": ser_item(record),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        for i, total in enumerate(shard_totals):
            ops.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": ser_item(
                            {
                                "pk": batch_pk(bid),
                                "sk": shard_sk(i),
                                "total": total,
                                "succeeded": 0,
                                "failed": 0,
                                "cancelled": 0,
                                "in_progress": 0,
                                "retries": 0,
                                "finished": 0,
                            }
                        ),
                    }
                }
            )
        token_index = None
        if client_token:
            token_index = len(ops)
            ops.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": ser_item(
                            {
                                "pk": f"K#{tenant}#{client_token}",
                                "sk": "T",
                                "batch_id": bid,
                                "created_at": meta["created_at"],
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        group_index = None
        if take_group and meta.get("group"):
            group_index = len(ops)
            ops.append(self._take_group_op(tenant, meta["group"], bid))
        try:
            self.ddb.transact_write_items(TransactItems=ops)
            return record, True
        except ClientError as e:
            raise_if_retryable(e)
            codes = cancellation_codes(e)
            if not codes:
                raise
            if token_index is not None and codes[token_index] == "ConditionalCheckFailed":
                existing = self._by_token(tenant, client_token or "")
                if existing:
                    return existing, False
            if group_index is not None and codes[group_index] == "ConditionalCheckFailed":
                queued = {
                    **meta,
                    "status": "queued",
                    "auto_start": True,
                    "gwpk": f"W#{tenant}#{meta['group']}",
                    "gwsk": bid,
                }
                return self.create_batch(queued, shard_totals, client_token, take_group=False)
            if "TransactionConflict" in codes:
                raise RetryableStoreError("transaction conflict creating batch") from e
            raise

    def _by_token(self, tenant: str, token: str) -> dict[str, Any] | None:
        rec = de_item(
            self.ddb.get_item(
                TableName=self.table, Key={"pk": ser(f"K#{tenant}#{token}"), "sk": ser("T")}, ConsistentRead=True
            ).get("Item")
        )
        return self.get_meta(rec["batch_id"]) if rec else None

    def get_meta(self, batch_id: str) -> dict[str, Any] | None:
        return de_item(
            self.ddb.get_item(
                TableName=self.table, Key={"pk": ser(batch_pk(batch_id)), "sk": ser(META_SK)}, ConsistentRead=True
            ).get("Item")
        )

    def get_batch(self, batch_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        rows: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p AND sk < :d",
            "ExpressionAttributeValues": values(p=batch_pk(batch_id), d="D"),
            "ConsistentRead": True,
        }
        while True:
            page = self.ddb.query(**kwargs)
            rows.extend(de_item(i) or {} for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        meta = next((r for r in rows if r["sk"] == META_SK), None)
        if meta is None:
            return None
        return meta, [r for r in rows if r["sk"].startswith("C#")]

    def list_batches(
        self, tenant_id: str, limit: int, cursor: str | None, status: str | None, group: str | None
    ) -> tuple[list[tuple[dict[str, Any], list[dict[str, Any]]]], str | None]:
        filters, names, vals = [], {}, {"t": f"T#{tenant_id}"}
        if status:
            filters.append("#s = :s")
            names["#s"] = "status"
            vals["s"] = status
        if group:
            filters.append("#g = :g")
            names["#g"] = "group"
            vals["g"] = group
        start = decode_cursor(cursor, frozenset({"pk", "sk", "gsi1pk", "gsi1sk"}), ("gsi1pk", f"T#{tenant_id}"))
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": "by_tenant",
                "KeyConditionExpression": "gsi1pk = :t",
                "ExpressionAttributeValues": values(**vals),
                "ScanIndexForward": False,
                "Limit": limit - len(found),
            }
            if filters:
                kwargs["FilterExpression"] = " AND ".join(filters)
                kwargs["ExpressionAttributeNames"] = names
            if start:
                kwargs["ExclusiveStartKey"] = {k: ser(v) for k, v in start.items()}
            page = self.ddb.query(**kwargs)
            found.extend(de_item(i) or {} for i in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            start = de_item(last) if last else None
            if not start:
                break
        results = []
        for meta in found[:limit]:
            full = self.get_batch(meta["gsi1sk"])
            if full:
                results.append(full)
        return results, _encode_cursor(start)

    def update_status(
        self,
        batch_id: str,
        to_status: str,
        from_status: tuple[str, ...],
        now: float,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        sets = ["#s = :to", "updated_at = :now"]
        vals: dict[str, Any] = {"to": to_status, "now": now}
        names = {"#s": "status"}
        for i, (k, v) in enumerate((extra or {}).items()):
            names[f"#x{i}"] = k
            vals[f"x{i}"] = v
            sets.append(f"#x{i} = :x{i}")
        froms = []
        for i, s in enumerate(from_status):
            vals[f"f{i}"] = s
            froms.append(f":f{i}")
        update = "SET " + ", ".join(sets)
        if to_status != "queued":
            update += " REMOVE gwpk, gwsk"
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": ser(batch_pk(batch_id)), "sk": ser(META_SK)},
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(pk) AND #s IN ({', '.join(froms)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values(**vals),
            )
            return True
        except ClientError as e:
            if is_condition_failure(e):
                return False
            raise_if_retryable(e)
            raise

    def mark(self, batch_id: str, fields: dict[str, Any]) -> None:
        names = {f"#m{i}": k for i, k in enumerate(fields)}
        vals = {f"m{i}": v for i, v in enumerate(fields.values())}
        self.ddb.update_item(
            TableName=self.table,
            Key={"pk": ser(batch_pk(batch_id)), "sk": ser(META_SK)},
            UpdateExpression="SET " + ", ".join(f"#m{i} = :m{i}" for i in range(len(fields))),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values(**vals),
        )

    # ---- groups ------------------------------------------------------------------------------------------
    def _take_group_op(self, tenant: str, group: str, batch_id: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": ser(f"G#{tenant}#{group}"), "sk": ser("L")},
                "UpdateExpression": "SET running = :b",
                "ConditionExpression": "attribute_not_exists(running) OR running = :b",
                "ExpressionAttributeValues": values(b=batch_id),
            }
        }

    def take_group(self, tenant_id: str, group: str, batch_id: str) -> bool:
        op = self._take_group_op(tenant_id, group, batch_id)["Update"]
        try:
            self.ddb.update_item(**op)
            return True
        except ClientError as e:
            if is_condition_failure(e):
                return False
            raise

    def release_group(self, tenant_id: str, group: str, batch_id: str) -> bool:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": ser(f"G#{tenant_id}#{group}"), "sk": ser("L")},
                UpdateExpression="REMOVE running",
                ConditionExpression="running = :b",
                ExpressionAttributeValues=values(b=batch_id),
            )
            return True
        except ClientError as e:
            if is_condition_failure(e):
                return False
            raise

    def next_waiting_in_group(self, tenant_id: str, group: str) -> str | None:
        page = self.ddb.query(
            TableName=self.table,
            IndexName="group_wait",
            KeyConditionExpression="gwpk = :w",
            ExpressionAttributeValues=values(w=f"W#{tenant_id}#{group}"),
            ScanIndexForward=True,
            Limit=1,
        )
        items = [de_item(i) or {} for i in page.get("Items", [])]
        return items[0]["gwsk"] if items else None

    # ---- items -------------------------------------------------------------------------------------------
    def put_items(
        self, batch_id: str, tenant_id: str, shards: int, first_seq: int, items: list[str], now: float
    ) -> list[tuple[int, str]]:
        def put(seq_item: tuple[int, str]) -> tuple[int, str] | None:
            seq, item = seq_item
            record = {
                "pk": batch_pk(batch_id),
                "sk": item_sk(seq),
                "seq": seq,
                "item": item,
                "status": "pending",
                "shard": seq % shards,
                "attempts": 0,
                "deferrals": 0,
                "created_at": now,
            }
            try:
                self.ddb.put_item(
                    TableName=self.table,
                    Item=ser_item(record),
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return seq_item
            except ClientError as e:
                if is_condition_failure(e):
                    old = de_item(e.response.get("Item")) or self.get_item(batch_id, seq) or {}
                    return seq_item if old.get("status") == "pending" else None
                raise

        pairs = list(enumerate(items, start=first_seq))
        with ThreadPoolExecutor(max_workers=min(self.put_concurrency, max(1, len(pairs)))) as pool:
            return [r for r in pool.map(put, pairs) if r is not None]

    def pending_items(self, batch_id: str, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        return self.query_items(batch_id, "pending", limit, cursor, consistent=True)

    def query_items(
        self, batch_id: str, status: str | None, limit: int, cursor: str | None, consistent: bool = False
    ) -> tuple[list[dict[str, Any]], str | None]:
        start = decode_cursor(cursor, frozenset({"pk", "sk"}), ("pk", batch_pk(batch_id)))
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :p AND begins_with(sk, :i)",
                "ExpressionAttributeValues": values(p=batch_pk(batch_id), i="I#", **({"s": status} if status else {})),
                "Limit": limit - len(found),
                "ConsistentRead": consistent,
            }
            if status:
                kwargs["FilterExpression"] = "#s = :s"
                kwargs["ExpressionAttributeNames"] = {"#s": "status"}
            if start:
                kwargs["ExclusiveStartKey"] = {k: ser(v) for k, v in start.items()}
            page = self.ddb.query(**kwargs)
            found.extend(de_item(i) or {} for i in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            start = de_item(last) if last else None
            if not start:
                break
        return found, _encode_cursor(start)

    def get_item(self, batch_id: str, seq: int) -> dict[str, Any] | None:
        return de_item(
            self.ddb.get_item(
                TableName=self.table, Key={"pk": ser(batch_pk(batch_id)), "sk": ser(item_sk(seq))}, ConsistentRead=True
            ).get("Item")
        )

    def claim_item(
        self, batch_id: str, seq: int, shard: int, token: str, until: float, now: float
    ) -> Claim | ClaimRefused:
        t = Transition(
            batch_id,
            seq,
            shard,
            "in_progress",
            ("pending",),
            None,
            set_fields={"claim": token, "claim_until": until},
            counters={"in_progress": 1},
            now=now,
        )
        for _ in range(_TXN_RETRIES):
            won, old = self._transact(t, first_start=True)
            if won:
                got = self.get_item(batch_id, seq) or {}
                return Claim(token, int(got.get("attempts", 0)), int(got.get("deferrals", 0)), got.get("last_proxy"))
            if old is None:
                return ClaimRefused(terminal=True)
            status = old.get("status")
            if status in TERMINAL_ITEM:
                return ClaimRefused(terminal=True)
            if status == "in_progress":
                if float(old.get("claim_until", 0)) >= now:
                    return ClaimRefused(terminal=False, busy_until=float(old["claim_until"]))
                # The claim of a crashed delivery lapsed: take it over without touching the counters.
                if self._take_over(batch_id, seq, str(old.get("claim", "")), token, until, now):
                    return Claim(
                        token, int(old.get("attempts", 0)), int(old.get("deferrals", 0)), old.get("last_proxy")
                    )
            # pending again (or a lost race): try once more
        return ClaimRefused(terminal=False, busy_until=now + 5)

    def _take_over(self, batch_id: str, seq: int, old_token: str, token: str, until: float, now: float) -> bool:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": ser(batch_pk(batch_id)), "sk": ser(item_sk(seq))},
                UpdateExpression="SET claim = :t, claim_until = :u, updated_at = :n",
                ConditionExpression="#s = :ip AND claim = :old AND claim_until < :n",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(t=token, u=until, n=now, ip="in_progress", old=old_token),
            )
            return True
        except ClientError as e:
            if is_condition_failure(e):
                return False
            raise

    def transition(self, t: Transition) -> Applied:
        current, shard_done = t, t.shard_last is None
        for _ in range(_TXN_RETRIES):
            try:
                won, _old = self._transact(current)
            except ShardWouldComplete:
                # this transition finishes the shard's last item: apply it without the guard and say so
                current, shard_done = replace(t, shard_last=None), True
                continue
            except RetryableStoreError:
                time.sleep(0.05)
                continue
            if won and t.error_sample:
                self._add_sample(t.batch_id, t.shard, t.error_sample)
            return Applied(won, shard_done=won and shard_done)
        raise RetryableStoreError(f"transition of {t.batch_id}/{t.seq} kept conflicting")

    def _transact(self, t: Transition, first_start: bool = False) -> tuple[bool, dict[str, Any] | None]:
        names = {"#s": "status"}
        vals: dict[str, Any] = {"to": t.to_status, "now": t.now}
        sets = ["#s = :to", "updated_at = :now"]
        if first_start:
            sets.append("started_at = if_not_exists(started_at, :now)")
        fields = dict(t.set_fields)
        if t.create_if_missing:
            fields = {**{k: v for k, v in t.create_if_missing.items() if k not in ("pk", "sk", "status")}, **fields}
        for i, (k, v) in enumerate(fields.items()):
            names[f"#f{i}"] = k
            vals[f"f{i}"] = v
            sets.append(f"#f{i} = :f{i}")
        update = "SET " + ", ".join(sets)
        adds = []
        for i, (k, v) in enumerate(t.add_fields.items()):
            names[f"#a{i}"] = k
            vals[f"a{i}"] = v
            adds.append(f"#a{i} :a{i}")
        if adds:
            update += " ADD " + ", ".join(adds)
        if t.remove_fields:
            update += " REMOVE " + ", ".join(t.remove_fields)
        froms = []
        for i, s in enumerate(t.from_status):
            vals[f"s{i}"] = s
            froms.append(f":s{i}")
        cond = f"#s IN ({', '.join(froms)})"
        if t.claim_token is not None:
            cond += " AND claim = :claim"
            vals["claim"] = t.claim_token
        cond = f"attribute_not_exists(pk) OR ({cond})" if t.create_if_missing else f"attribute_exists(pk) AND {cond}"
        item_op = {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": ser(batch_pk(t.batch_id)), "sk": ser(item_sk(t.seq))},
                "UpdateExpression": update,
                "ConditionExpression": cond,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values(**vals),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        ops = [item_op]
        counters = dict(t.counters)
        if t.to_status in TERMINAL_ITEM:
            counters["finished"] = 1  # every terminal transition counts, so `finished` tells the shard's last item
        if counters:
            cnames, cvals, cadds = {}, {"now": t.now}, []
            shard_cond = "attribute_exists(pk)"
            if t.shard_last is not None:
                shard_cond += " AND finished < :last"
                cvals["last"] = t.shard_last
            for i, (k, v) in enumerate(counters.items()):
                cnames[f"#c{i}"] = k
                cvals[f"c{i}"] = v
                cadds.append(f"#c{i} :c{i}")
            ops.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": ser(batch_pk(t.batch_id)), "sk": ser(shard_sk(t.shard))},
                        "UpdateExpression": "SET updated_at = :now ADD " + ", ".join(cadds),
                        "ConditionExpression": shard_cond,
                        "ExpressionAttributeNames": cnames,
                        "ExpressionAttributeValues": values(**cvals),
                    }
                }
            )
        try:
            if len(ops) == 1:
                op = dict(ops[0]["Update"])
                self.ddb.update_item(**op)
            else:
                self.ddb.transact_write_items(TransactItems=ops)
            return True, None
        except ClientError as e:
            raise_if_retryable(e)
            if is_condition_failure(e):
                return False, de_item(e.response.get("Item"))
            codes = cancellation_codes(e)
            if not codes:
                raise
            if codes[0] == "ConditionalCheckFailed":
                old = cancellation_items(e)[0]
                if old is None:
                    old = self.get_item(t.batch_id, t.seq)
                return False, old
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed" and t.shard_last is not None:
                raise ShardWouldComplete() from e
            if "TransactionConflict" in codes:
                raise RetryableStoreError("transaction conflict") from e
            raise

    def _add_sample(self, batch_id: str, shard: int, sample: dict[str, Any]) -> None:
        # best effort: the sample is a convenience, the counters already hold the truth
        with contextlib.suppress(ClientError):
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": ser(batch_pk(batch_id)), "sk": ser(shard_sk(shard))},
                UpdateExpression="SET error_samples = list_append(if_not_exists(error_samples, :empty), :one)",
                ConditionExpression="attribute_not_exists(error_samples) OR size(error_samples) < :max",
                ExpressionAttributeValues=values(empty=[], one=[sample], max=3),
            )
