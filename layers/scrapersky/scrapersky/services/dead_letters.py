"""Poison messages: whatever could not be processed ends as a failed item, so no batch ever hangs."""

from __future__ import annotations

import json
from typing import Any

from scrapersky.models import FanoutMessage
from scrapersky.services import items
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done

CODE = "poison_message"


def handle(deps: Deps, body: str) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return "unreadable"
    if not isinstance(data, dict) or "batch_id" not in data:
        return "unreadable"
    if "seq" in data:
        # Trust only the keys: whatever else made the message poison may be wrong too.
        batch_id, seq = str(data["batch_id"]), int(data["seq"])
        meta = deps.store.get_meta(batch_id)
        if meta is None:
            return "unknown_batch"
        rec = deps.store.get_item(batch_id, seq) or {}
        if meta["status"] == "cancelled" and rec.get("status") == "pending":
            items.cancel(deps, batch_id, seq, seq % int(meta["shards"]))  # cancelled, not a failure
            return "item_cancelled"
        item = str(rec.get("item") or data.get("item") or "")
        items.fail_whatever_state(
            deps,
            batch_id,
            seq,
            seq % int(meta["shards"]),
            item,
            meta["tenant_id"],
            CODE,
            "the item could not be processed and was moved to the dead-letter queue",
        )
        finish_if_done(deps, batch_id)
        return "item_failed"
    fan = FanoutMessage.model_validate(data)
    meta = deps.store.get_meta(fan.batch_id)
    if meta is None:
        return "unknown_batch"
    shards = int(meta["shards"])
    if fan.type == "chunk":
        for seq, item in enumerate(fan.items, start=fan.first_seq):
            items.fail_whatever_state(
                deps,
                fan.batch_id,
                seq,
                seq % shards,
                item,
                fan.tenant_id,
                CODE,
                "the item could not be stored and was moved to the dead-letter queue",
            )
    else:
        cursor = fan.cursor
        while True:
            rows, cursor = deps.store.pending_items(fan.batch_id, cursor, 500)
            for r in rows:
                if fan.type == "cancel":
                    items.cancel(deps, fan.batch_id, int(r["seq"]), int(r["shard"]))
                else:
                    items.fail_whatever_state(
                        deps,
                        fan.batch_id,
                        int(r["seq"]),
                        int(r["shard"]),
                        r["item"],
                        fan.tenant_id,
                        CODE,
                        "the batch could not be dispatched",
                    )
            if not cursor:
                break
    finish_if_done(deps, fan.batch_id)
    return f"{fan.type}_settled"
