"""Item changes as the domain speaks of them (claim, finish, requeue, cancel, fail from the DLQ), each turned
into one conditional write on the item and the counter deltas that go with it on its shard.

Pure: no I/O. `DynamoItemStore` writes the two updates in one transaction, so an item is counted once
whatever redeliveries happen; the counter names (`succeeded`, `e_<code>`, `finished`, ...) live only here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.expressions import Update
from scrapersky.domain.progress import iso_at
from scrapersky.models import ItemStatus
from scrapersky.records import ErrorSample, ItemEnd, ItemError, ItemRecord, ItemRef

CLAIM_FIELDS = ("claim", "claim_until")
_MAX_MESSAGE = 500
_MAX_LAST_ERROR = 300


@dataclass(frozen=True)
class ItemChange:
    """One conditional item change: from one of `from_status` to `to`, plus its counter deltas."""

    ref: ItemRef
    to: ItemStatus
    from_status: tuple[ItemStatus, ...]
    now: float
    token: str | None = None  # the change is ours only while the item still carries this claim
    sets: dict[str, Any] = field(default_factory=dict)
    adds: dict[str, int] = field(default_factory=dict)
    removes: tuple[str, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)
    create: dict[str, Any] | None = None  # the item's fields, when it may never have been stored
    sample: ErrorSample | None = None
    first_start: bool = False
    # index of the shard's last item: the counter write is guarded by `finished < shard_last`, so the store
    # can tell (by the guard failing) that this change finishes the shard
    shard_last: int | None = None
    # marks the item with this change: a retry of a write that was applied but whose answer was lost (a
    # timeout, a 500) fails its condition, and the item's mark tells the change was ours after all
    change_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # further parts of the same transaction (a profile target's record, written with its item's end)
    also: tuple[dict[str, Any], ...] = ()

    def item_update(self) -> Update:
        u = Update().set(status=self.to.value, updated_at=self.now, **{bt.CHANGE_MARK: self.change_id}, **self.sets)
        if self.first_start:
            u.set_expr("started_at", "if_not_exists(#started_at, :now)", now=self.now)
        for name, v in (self.create or {}).items():
            u.set_expr(name, f"if_not_exists(#{name}, :v)", v=v)  # a record created meanwhile keeps its fields
        if self.adds:
            u.add(**self.adds)
        if self.removes:
            u.remove(*self.removes)
        froms = {f"s{i}": s.value for i, s in enumerate(self.from_status)}
        in_from = f"#status IN ({', '.join(':' + k for k in froms)})"
        if self.create is not None:
            u.when(f"attribute_not_exists(pk) OR ({in_from})", **froms)
        else:
            u.when("attribute_exists(pk)").when(in_from, **froms)
        if self.token is not None:
            u.when("#claim = :t", t=self.token)
        return u

    def counter_update(self) -> Update:
        # every terminal change also counts in `finished`: what the shard_last guard compares
        counters = {**self.counters, bt.FINISHED: 1} if self.to.terminal else self.counters
        u = Update().set(updated_at=self.now).add(**counters).when("attribute_exists(pk)")
        if self.shard_last is not None:
            u.when(f"#{bt.FINISHED} < :last", last=self.shard_last)
        return u


def new_item_fields(ref: ItemRef, item: str, now: float, retention_s: float) -> dict[str, Any]:
    fields = {"seq": ref.seq, "item": item, "shard": ref.shard, "attempts": 0, "deferrals": 0, "created_at": now}
    return {**fields, bt.EXPIRES_AT: bt.expires_at(now, retention_s)}


def pending_row(
    ref: ItemRef, item: str, now: float, retention_s: float, block_items: int = bt.ITEM_BLOCK
) -> dict[str, Any]:
    key = {"pk": bt.item_pk(ref.batch_id, ref.seq, block_items), "sk": bt.item_sk(ref.seq)}
    return {**key, **new_item_fields(ref, item, now, retention_s), "status": ItemStatus.PENDING.value}


def claim(ref: ItemRef, token: str, until: float, now: float) -> ItemChange:
    return ItemChange(
        ref,
        ItemStatus.IN_PROGRESS,
        (ItemStatus.PENDING,),
        now,
        sets={"claim": token, "claim_until": until},
        counters={"in_progress": 1},
        first_start=True,
    )


def ending(
    ref: ItemRef,
    end: ItemEnd,
    now: float,
    from_status: ItemStatus,
    token: str | None,
    create: dict[str, Any] | None = None,
    shard_last: int | None = None,
) -> ItemChange:
    """The item ends succeeded or failed (with its error counted by code and sampled on its shard)."""
    sets: dict[str, Any] = {"finished_at": now, "http_status": end.http_status, "result": end.result}
    sets = {k: v for k, v in sets.items() if v is not None}
    counters = {"succeeded": 1} if end.succeeded else {}
    sample = None
    if not end.succeeded:
        error = end.error or ItemError("failed", "")
        message = (error.message or error.code)[:_MAX_MESSAGE]
        sets |= {"error_code": error.code, "error_message": message}
        counters = {"failed": 1, bt.ERROR_COUNTER + error.code: 1}
        sample = ErrorSample(end.item, error.code, message, iso_at(now))
    if from_status is ItemStatus.IN_PROGRESS:
        counters["in_progress"] = -1
    return ItemChange(
        ref,
        ItemStatus.SUCCEEDED if end.succeeded else ItemStatus.FAILED,
        (from_status,),
        now,
        token=token,
        sets=sets,
        adds={"attempts": 1} if end.attempt_spent else {},
        removes=CLAIM_FIELDS,
        counters=counters,
        create=create,
        sample=sample,
        shard_last=shard_last,
    )


def requeue(
    ref: ItemRef, token: str, now: float, attempt_spent: bool, proxy_id: str | None, error: ItemError | None
) -> ItemChange:
    """Back to pending: a retry spends an attempt, a rate-limit deferral does not (both count as retries)."""
    sets: dict[str, Any] = {}
    if proxy_id:
        sets["last_proxy"] = proxy_id  # the retry prefers another proxy
    if error:
        sets["last_error"] = f"{error.code}: {error.message or ''}"[:_MAX_LAST_ERROR]
    return ItemChange(
        ref,
        ItemStatus.PENDING,
        (ItemStatus.IN_PROGRESS,),
        now,
        token=token,
        sets=sets,
        adds={"attempts" if attempt_spent else "deferrals": 1},
        removes=CLAIM_FIELDS,
        counters={"in_progress": -1, "retries": 1},
    )


def cancel(ref: ItemRef, now: float, claimed_by: str | None) -> ItemChange:
    if claimed_by is None:
        return ItemChange(
            ref, ItemStatus.CANCELLED, (ItemStatus.PENDING,), now, sets={"finished_at": now}, counters={"cancelled": 1}
        )
    return ItemChange(
        ref,
        ItemStatus.CANCELLED,
        (ItemStatus.IN_PROGRESS,),
        now,
        token=claimed_by,
        sets={"finished_at": now},
        removes=CLAIM_FIELDS,
        counters={"cancelled": 1, "in_progress": -1},
    )


def item_from_row(row: dict[str, Any]) -> ItemRecord:
    code = row.get("error_code")
    return ItemRecord(
        batch_id=bt.batch_id_of(str(row["pk"])),
        seq=int(row["seq"]),
        shard=int(row["shard"]),
        item=str(row["item"]),
        status=ItemStatus(row["status"]),
        attempts=int(row.get("attempts", 0)),
        deferrals=int(row.get("deferrals", 0)),
        claim=row.get("claim"),
        claim_until=row.get("claim_until"),
        last_proxy=row.get("last_proxy"),
        error=ItemError(code, row.get("error_message") or code) if code else None,
        http_status=row.get("http_status"),
        result=row.get("result"),
        created_at=row.get("created_at"),
        started_at=row.get("started_at"),
        finished_at=row.get("finished_at"),
    )
