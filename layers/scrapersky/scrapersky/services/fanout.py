"""The fan-out use case: write a chunk's item records, then dispatch work (or cancel), idempotently."""

from __future__ import annotations

from scrapersky.models import FanoutMessage, WorkMessage
from scrapersky.services import items
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done

PAGE = 500
DISPATCH_EVERY = 25  # items written before their work messages go out


def _work(meta: dict, seq: int, item: str) -> WorkMessage:
    opts = meta.get("options") or {}
    return WorkMessage(
        batch_id=meta["batch_id"],
        tenant_id=meta["tenant_id"],
        seq=seq,
        shard=seq % int(meta["shards"]),
        kind=meta.get("kind", "page"),
        item=item,
        max_attempts=int(opts.get("max_attempts", 3)),
        timeout_s=float(opts.get("timeout_s", 20.0)),
        max_bytes=int(opts.get("max_bytes", 2_000_000)),
    )


def handle(deps: Deps, msg: FanoutMessage) -> str:
    meta = deps.store.get_meta(msg.batch_id)
    if meta is None:
        return "unknown_batch"
    if msg.type == "chunk":
        outcome = "dispatched"
        # Part by part: the first part's items are on the work queue while the rest is still being written.
        for start in range(0, len(msg.items), DISPATCH_EVERY):
            still_pending = deps.store.put_items(
                msg.batch_id,
                msg.tenant_id,
                int(meta["shards"]),
                msg.first_seq + start,
                msg.items[start : start + DISPATCH_EVERY],
                deps.clock.now(),
            )
            # Read the status after writing: a start or cancel racing this part then always sees our records.
            meta = deps.store.get_meta(msg.batch_id) or meta
            if meta["status"] == "queued":
                outcome = "stored"
            elif meta["status"] == "cancelled":
                for seq, _item in still_pending:
                    items.cancel(deps, msg.batch_id, seq, seq % int(meta["shards"]))
                outcome = "cancelled"
            elif meta["status"] in ("pending", "processing"):
                deps.queue.send_work([_work(meta, seq, item) for seq, item in still_pending])
        return outcome
    rows, cursor = deps.store.pending_items(msg.batch_id, msg.cursor, PAGE)
    if msg.type == "dispatch":
        if meta["status"] in ("pending", "processing"):
            deps.queue.send_work([_work(meta, int(r["seq"]), r["item"]) for r in rows])
    else:  # cancel: end every item that has not started
        for r in rows:
            items.cancel(deps, msg.batch_id, int(r["seq"]), int(r["shard"]))
    if cursor:
        deps.queue.send_fanout([msg.model_copy(update={"cursor": cursor})])
    else:
        finish_if_done(deps, msg.batch_id)
    return msg.type
