"""Use cases of the batches and status API: create, start, cancel, read."""

from __future__ import annotations

import json
import math
import secrets
from typing import Any

from scrapersky.domain.callbacks import normalise_callback
from scrapersky.domain.progress import batch_view, iso, total
from scrapersky.domain.targets import InvalidTarget, NormalisedItems
from scrapersky.errors import Conflict, InvalidCursor, InvalidInput, NotFound
from scrapersky.models import BATCH_ID, BatchStatus, CreateBatchRequest, FanoutMessage, ItemStatus, ItemView
from scrapersky.records import BatchRecord, ItemRecord
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import after_end, dispatch, start_next_in_group

MAX_LISTED_REJECTIONS = 100
CHUNK_BYTES = 200_000  # a chunk message's items, as JSON bytes: well under SQS's message limit
CANCELLABLE = (BatchStatus.QUEUED, BatchStatus.PENDING, BatchStatus.PROCESSING)


def new_batch_id(now: float) -> str:
    # time-sortable: newest-first listing is a plain reverse range read
    return f"b_{int(now * 1000):012x}{secrets.token_hex(6)}"


def shard_totals(total: int, max_shards: int, per_shard: int = 250) -> list[int]:
    n = max(1, min(max_shards, math.ceil(total / per_shard)))
    return [len(range(s, total, n)) for s in range(n)]


def chunk_items(items: list[str], max_items: int, first_items: int | None = None) -> list[tuple[int, list[str]]]:
    """Fan-out chunks in order. The first one may be smaller (`first_items`): its items are written and
    dispatched in a few milliseconds, so workers start while the rest of the batch is still being stored."""
    chunks: list[tuple[int, list[str]]] = []
    cur: list[str] = []
    size = 0
    first = 0
    for i, item in enumerate(items):
        limit = first_items if first_items and not chunks else max_items
        n = len(json.dumps(item).encode()) + 2  # as the message body holds it: quoted, escaped, UTF-8
        if cur and (len(cur) >= limit or size + n > CHUNK_BYTES):
            chunks.append((first, cur))
            cur, size, first = [], 0, i
        cur.append(item)
        size += n
    if cur:
        chunks.append((first, cur))
    return chunks


def normalised(deps: Deps, req: CreateBatchRequest) -> NormalisedItems:
    """The request's items as its kind reads them; no valid item is a 422 and nothing is created."""
    norm = deps.kinds.get(req.kind).normalise(req.items, req.options, deps.policy)
    if not norm.accepted:
        raise InvalidInput(
            "no valid item in the batch",
            [{"item": r.item, "reason": r.reason} for r in norm.rejected[:100]]
            or [{"field": "items", "message": "all items were duplicates"}],
        )
    return norm


def callback_of(deps: Deps, req: CreateBatchRequest) -> str | None:
    """The batch's callback URL under the SSRF rules of a target; an invalid one is a 422 and nothing is created."""
    if req.callback_url is None:
        return None
    try:
        return normalise_callback(req.callback_url, deps.policy)
    except InvalidTarget as e:
        raise InvalidInput(f"callback_url: {e}", [{"field": "callback_url", "message": str(e)}]) from e


def create_batch(deps: Deps, tenant_id: str, req: CreateBatchRequest) -> dict[str, Any]:
    callback_url = callback_of(deps, req)
    norm = normalised(deps, req)
    now = deps.clock.now()
    total = len(norm.accepted)
    totals = shard_totals(total, deps.settings.counter_shards_max, deps.settings.counter_shard_items)
    new = BatchRecord(
        batch_id=new_batch_id(now),
        tenant_id=tenant_id,
        kind=req.kind,
        status=BatchStatus.PENDING if req.start else BatchStatus.QUEUED,
        total_items=total,
        shards=len(totals),
        created_at=now,
        updated_at=now,
        options=req.options.model_dump(),
        group=req.group,
        rejected_count=len(norm.rejected),
        duplicate_items=norm.duplicates,
        callback_url=callback_url,
    )
    s = deps.settings
    chunks = chunk_items(norm.accepted, s.chunk_items, s.first_chunk_items)
    # kept before the batch is: a create that crashes before its chunks are sent is re-sent by the sweeper
    deps.sweeps.save_chunks(new.batch_id, chunks, now)
    batch, created = deps.batches.create(new, totals, req.client_token, take_group=req.start and bool(req.group))
    if created or not batch.fanout_sent:
        send_chunks(deps, batch, chunks)
    status = (deps.batches.get(batch.batch_id) or batch).status if created else batch.status
    return {
        "batch_id": batch.batch_id,
        "status": status.value,
        "status_url": f"/batches/{batch.batch_id}",
        "total_items": batch.total_items,
        # the first 100, and how many in all: a 201 listing thousands could pass Lambda's 6 MB answer limit
        "rejected_items": [r.model_dump() for r in norm.rejected[:MAX_LISTED_REJECTIONS]],
        "rejected_count": len(norm.rejected),
        "duplicate_items": norm.duplicates,
        "created_at": iso(batch.created_at),
        "estimated_completion_time": iso(now + total / deps.settings.items_per_minute_estimate * 60),
    }


def send_chunks(deps: Deps, batch: BatchRecord, chunks: list[tuple[int, list[str]]]) -> None:
    """Sends a batch's fan-out chunks (a new batch's, a replayed create's, or what the sweeper re-drives) and
    marks them sent; a batch queued behind its group's lock may find the group free by now."""
    messages = [
        FanoutMessage(type="chunk", batch_id=batch.batch_id, tenant_id=batch.tenant_id, first_seq=first, items=chunk)
        for first, chunk in chunks
    ]
    deps.queue.send_fanout(messages)
    deps.batches.mark_fanout_sent(batch.batch_id)
    if batch.status is BatchStatus.QUEUED and batch.auto_start and batch.group:
        # the running batch may have ended between our lock attempt and our write
        start_next_in_group(deps, batch.tenant_id, batch.group)


def owned_batch(deps: Deps, tenant_id: str, batch_id: str) -> BatchRecord:
    """The tenant's batch; another tenant's or a missing one is a 404."""
    batch = deps.batches.get(batch_id) if BATCH_ID.fullmatch(batch_id) else None
    if batch is None or batch.tenant_id != tenant_id:
        raise NotFound(f"batch {batch_id} not found")
    return batch


def start_batch(deps: Deps, tenant_id: str, batch_id: str) -> dict[str, Any]:
    batch = owned_batch(deps, tenant_id, batch_id)
    if batch.status is not BatchStatus.QUEUED:
        raise Conflict(f"batch {batch_id} is {batch.status.value}, not queued")
    group = batch.group
    if group and not deps.batches.take_group(tenant_id, group, batch_id):
        raise Conflict(f"another batch of group '{group}' is running")
    if not deps.batches.start(batch_id, deps.clock.now()):
        if group:
            deps.batches.release_group(tenant_id, group, batch_id)
        raise Conflict(f"batch {batch_id} is no longer queued")
    dispatch(deps, batch_id, tenant_id)
    return {"batch_id": batch_id, "status": BatchStatus.PENDING.value}


def cancel_batch(deps: Deps, tenant_id: str, batch_id: str) -> dict[str, Any]:
    batch = owned_batch(deps, tenant_id, batch_id)
    if not deps.batches.end(batch_id, BatchStatus.CANCELLED, deps.clock.now(), CANCELLABLE):
        current = deps.batches.get(batch_id) or batch
        raise Conflict(f"batch {batch_id} already ended ({current.status.value})")
    after_end(deps, batch, cancel=True)
    return {"batch_id": batch_id, "status": BatchStatus.CANCELLED.value}


def get_batch(deps: Deps, tenant_id: str, batch_id: str) -> dict[str, Any]:
    full = deps.batches.get_with_counts(batch_id) if BATCH_ID.fullmatch(batch_id) else None
    if full is None or full[0].tenant_id != tenant_id:
        raise NotFound(f"batch {batch_id} not found")
    batch, shards = full
    return _with_results(deps, batch, batch_view(batch, total(shards), deps.clock.now()))


def _with_results(deps: Deps, batch: BatchRecord, view: dict[str, Any]) -> dict[str, Any]:
    """The results URLs of an exported batch: presigned here (local computation, no call), null before."""
    keys, ttl = batch.result_keys, deps.settings.results_url_ttl_s
    for name, fmt in (("results_url", "jsonl"), ("results_csv_url", "csv")):
        if fmt in keys:
            view[name] = deps.results.url(keys[fmt], ttl, f"{batch.batch_id}.{fmt}")
    return view


def _bad_cursor(e: InvalidCursor) -> InvalidInput:
    return InvalidInput(str(e), [{"field": "cursor", "message": str(e)}])


def list_batches(
    deps: Deps, tenant_id: str, status: str | None, group: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    try:
        rows, nxt = deps.batches.list(tenant_id, limit, cursor, BatchStatus(status) if status else None, group)
    except InvalidCursor as e:
        raise _bad_cursor(e) from e
    now = deps.clock.now()
    return {"batches": [_with_results(deps, b, batch_view(b, total(s), now)) for b, s in rows], "next_cursor": nxt}


def item_view(rec: ItemRecord, render: Any = None) -> dict[str, Any]:
    started, finished = rec.started_at, rec.finished_at
    error = {"code": rec.error.code, "message": rec.error.message} if rec.error else None
    return ItemView(
        item=rec.item,
        status=rec.status,
        attempts=rec.attempts,
        deferrals=rec.deferrals,
        http_status=rec.http_status,
        error=error,
        started_at=iso(started),
        finished_at=iso(finished),
        duration_ms=int((finished - started) * 1000) if started and finished else None,
        result=render(rec.result) if render else rec.result,
    ).model_dump(mode="json")


def list_items(
    deps: Deps, tenant_id: str, batch_id: str, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    batch = owned_batch(deps, tenant_id, batch_id)
    try:
        rows, nxt = deps.items.query(batch_id, ItemStatus(status) if status else None, limit, cursor)
    except InvalidCursor as e:
        raise _bad_cursor(e) from e
    render = deps.kinds.get(batch.kind).render
    return {"items": [item_view(r, render) for r in rows], "next_cursor": nxt}
