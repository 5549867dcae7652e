"""Poison messages: whatever could not be processed ends as a failed item, so no batch ever hangs."""

from __future__ import annotations

import json
from typing import Any

from scrapersky.models import BatchStatus, FanoutMessage, ItemStatus
from scrapersky.records import BatchRecord, ItemError, ItemRef
from scrapersky.services import follow
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done
from scrapersky.services.profile_items import dead_letter_checked

CODE = "poison_message"
NOT_PROCESSED = ItemError(CODE, "the item could not be processed and was moved to the dead-letter queue")
NOT_STORED = ItemError(CODE, "the item could not be stored and was moved to the dead-letter queue")
NOT_DISPATCHED = ItemError(CODE, "the batch could not be dispatched")


def handle(deps: Deps, body: str) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return "unreadable"
    if not isinstance(data, dict) or "batch_id" not in data:
        return "unreadable"
    try:
        target = int(data["seq"]) if "seq" in data else FanoutMessage.model_validate(data)
    except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        # Raising would put the message back on the DLQ, to come back until it expires: settle it, unreadable.
        return "unreadable"
    batch = deps.batches.get(str(data["batch_id"]))
    if batch is None:
        return "unknown_batch"
    outcome = _work_item(deps, batch, target, data) if isinstance(target, int) else _fanout(deps, batch, target)
    finish_if_done(deps, batch.batch_id)
    return outcome


def _work_item(deps: Deps, batch: BatchRecord, seq: int, data: dict[str, Any]) -> str:
    # Trust only the keys: whatever else made the message poison may be wrong too.
    ref = ItemRef(batch.batch_id, seq, batch.shard_of(seq))
    rec = deps.items.get(batch.batch_id, seq)
    if batch.status is BatchStatus.CANCELLED and rec is not None and rec.status is ItemStatus.PENDING:
        deps.items.cancel(ref, deps.clock.now())  # cancelled, not a failure
        return "item_cancelled"
    item = rec.item if rec is not None else str(data.get("item") or "")
    _fail(deps, batch, ref, item, NOT_PROCESSED)
    return "item_failed"


def _fail(deps: Deps, batch: BatchRecord, ref: ItemRef, item: str, error: ItemError) -> None:
    if deps.items.fail_from_dead_letter(ref, item, error, deps.clock.now()):
        dead_letter_checked(deps, batch, item, error)  # a profile item's target counts the failure too


def _fanout(deps: Deps, batch: BatchRecord, fan: FanoutMessage) -> str:
    if fan.type == "chunk":
        for seq, item in enumerate(fan.items, start=fan.first_seq):
            ref = ItemRef(batch.batch_id, seq, batch.shard_of(seq))
            _fail(deps, batch, ref, item, NOT_STORED)
        return "chunk_settled"
    if fan.type == "export":
        return "export_abandoned"
    if fan.type == "follow":
        return follow.abandon(deps, batch, fan)  # its items are final already; the results URLs stay null (logged)
    cursor = fan.cursor
    while True:
        rows, cursor = deps.items.pending(batch.batch_id, cursor, 500)
        for r in rows:
            if fan.type == "cancel":
                deps.items.cancel(r.ref, deps.clock.now())
            else:
                _fail(deps, batch, r.ref, r.item, NOT_DISPATCHED)
        if not cursor:
            return f"{fan.type}_settled"
