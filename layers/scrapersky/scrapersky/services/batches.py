"""Use cases of the batches and status API: create, start, cancel, read."""

from __future__ import annotations

import math
import re
import secrets
from typing import Any

from scrapersky.domain.progress import Counts, batch_view, iso
from scrapersky.domain.targets import InvalidTarget, normalise_items
from scrapersky.errors import Conflict, InvalidInput, NotFound
from scrapersky.models import CreateBatchRequest, FanoutMessage, ItemView
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import batch_ended, start_next_in_group

CHUNK_BYTES = 200_000
_BATCH_ID = re.compile(r"^b_[0-9a-z]{20,40}$")  # an id we could have given out; anything else is a 404


def new_batch_id(now: float) -> str:
    # time-sortable: newest-first listing is a plain reverse range read
    return f"b_{int(now * 1000):012x}{secrets.token_hex(6)}"


def shard_totals(total: int, max_shards: int) -> list[int]:
    n = max(1, min(max_shards, math.ceil(total / 250)))
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
        if cur and (len(cur) >= limit or size + len(item) > CHUNK_BYTES):
            chunks.append((first, cur))
            cur, size, first = [], 0, i
        cur.append(item)
        size += len(item) + 4
    if cur:
        chunks.append((first, cur))
    return chunks


def create_batch(deps: Deps, tenant_id: str, req: CreateBatchRequest) -> dict[str, Any]:
    try:
        norm = normalise_items(req.kind, req.items, deps.policy)
    except InvalidTarget as e:
        raise InvalidInput(str(e), [{"field": "kind", "message": str(e)}]) from e
    if not norm.accepted:
        raise InvalidInput(
            "no valid item in the batch",
            [{"item": r.item, "reason": r.reason} for r in norm.rejected[:100]]
            or [{"field": "items", "message": "all items were duplicates"}],
        )
    now = deps.clock.now()
    total = len(norm.accepted)
    meta = {
        "batch_id": new_batch_id(now),
        "tenant_id": tenant_id,
        "kind": req.kind,
        "group": req.group,
        "status": "pending" if req.start else "queued",
        "options": req.options.model_dump(),
        "total_items": total,
        "created_at": now,
        "updated_at": now,
        "rejected_count": len(norm.rejected),
        "duplicate_items": norm.duplicates,
        "fanout_sent": False,
    }
    record, created = deps.store.create_batch(
        meta,
        shard_totals(total, deps.settings.counter_shards_max),
        req.client_token,
        take_group=req.start and bool(req.group),
    )
    if created or not record.get("fanout_sent"):
        _send_chunks(deps, record, norm.accepted if created else _replayed_items(deps, req))
        if record["status"] == "queued" and record.get("auto_start") and record.get("group"):
            # the running batch may have ended between our lock attempt and our write
            start_next_in_group(deps, tenant_id, record["group"])
    status = record["status"]
    if created:
        status = (deps.store.get_meta(record["batch_id"]) or record)["status"]
    eta = now + total / deps.settings.items_per_minute_estimate * 60
    return {
        "batch_id": record["batch_id"],
        "status": status,
        "status_url": f"/batches/{record['batch_id']}",
        "total_items": int(record["total_items"]),
        "rejected_items": [r.model_dump() for r in norm.rejected],
        "duplicate_items": norm.duplicates,
        "created_at": iso(float(record["created_at"])),
        "estimated_completion_time": iso(eta),
    }


def _replayed_items(deps: Deps, req: CreateBatchRequest) -> list[str]:
    return normalise_items(req.kind, req.items, deps.policy).accepted


def _send_chunks(deps: Deps, record: dict[str, Any], items: list[str]) -> None:
    bid = record["batch_id"]
    messages = [
        FanoutMessage(type="chunk", batch_id=bid, tenant_id=record["tenant_id"], first_seq=first, items=chunk)
        for first, chunk in chunk_items(items, deps.settings.chunk_items, deps.settings.first_chunk_items)
    ]
    deps.queue.send_fanout(messages)
    deps.store.mark(bid, {"fanout_sent": True})


def _owned_meta(deps: Deps, tenant_id: str, batch_id: str) -> dict[str, Any]:
    meta = deps.store.get_meta(batch_id) if _BATCH_ID.match(batch_id) else None
    if meta is None or meta.get("tenant_id") != tenant_id:
        raise NotFound(f"batch {batch_id} not found")
    return meta


def start_batch(deps: Deps, tenant_id: str, batch_id: str) -> dict[str, Any]:
    meta = _owned_meta(deps, tenant_id, batch_id)
    if meta["status"] != "queued":
        raise Conflict(f"batch {batch_id} is {meta['status']}, not queued")
    group = meta.get("group")
    if group and not deps.store.take_group(tenant_id, group, batch_id):
        raise Conflict(f"another batch of group '{group}' is running")
    if not deps.store.update_status(batch_id, "pending", ("queued",), deps.clock.now(), {"auto_start": False}):
        if group:
            deps.store.release_group(tenant_id, group, batch_id)
        raise Conflict(f"batch {batch_id} is no longer queued")
    deps.queue.send_fanout([FanoutMessage(type="dispatch", batch_id=batch_id, tenant_id=tenant_id)])
    return {"batch_id": batch_id, "status": "pending"}


def cancel_batch(deps: Deps, tenant_id: str, batch_id: str) -> dict[str, Any]:
    meta = _owned_meta(deps, tenant_id, batch_id)
    now = deps.clock.now()
    if not deps.store.update_status(
        batch_id, "cancelled", ("queued", "pending", "processing"), now, {"completed_at": now}
    ):
        current = deps.store.get_meta(batch_id) or meta
        raise Conflict(f"batch {batch_id} already ended ({current['status']})")
    batch_ended(deps, meta)
    deps.queue.send_fanout([FanoutMessage(type="cancel", batch_id=batch_id, tenant_id=tenant_id)])
    return {"batch_id": batch_id, "status": "cancelled"}


def get_batch(deps: Deps, tenant_id: str, batch_id: str) -> dict[str, Any]:
    full = deps.store.get_batch(batch_id) if _BATCH_ID.match(batch_id) else None
    if full is None or full[0].get("tenant_id") != tenant_id:
        raise NotFound(f"batch {batch_id} not found")
    meta, shards = full
    return batch_view(meta, Counts.from_shards(shards), deps.clock.now())


def list_batches(
    deps: Deps, tenant_id: str, status: str | None, group: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    try:
        rows, nxt = deps.store.list_batches(tenant_id, limit, cursor, status, group)
    except ValueError as e:
        raise InvalidInput(str(e), [{"field": "cursor", "message": str(e)}]) from e
    now = deps.clock.now()
    return {"batches": [batch_view(m, Counts.from_shards(s), now) for m, s in rows], "next_cursor": nxt}


def item_view(rec: dict[str, Any]) -> dict[str, Any]:
    error = None
    if rec.get("error_code"):
        error = {"code": rec["error_code"], "message": rec.get("error_message") or rec["error_code"]}
    started, finished = rec.get("started_at"), rec.get("finished_at")
    return ItemView(
        item=rec["item"],
        status=rec["status"],
        attempts=int(rec.get("attempts", 0)),
        deferrals=int(rec.get("deferrals", 0)),
        http_status=rec.get("http_status"),
        error=error,
        started_at=iso(started),
        finished_at=iso(finished),
        duration_ms=int((finished - started) * 1000) if started and finished else None,
        result=rec.get("result"),
    ).model_dump(mode="json")


def list_items(
    deps: Deps, tenant_id: str, batch_id: str, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    _owned_meta(deps, tenant_id, batch_id)
    try:
        rows, nxt = deps.store.query_items(batch_id, status, limit, cursor)
    except ValueError as e:
        raise InvalidInput(str(e), [{"field": "cursor", "message": str(e)}]) from e
    return {"items": [item_view(r) for r in rows], "next_cursor": nxt}
