"""Batch lifecycle shared by the use cases: finishing a batch when its counts add up, group hand-over."""

from __future__ import annotations

from scrapersky.domain.progress import Counts, decide_final_status
from scrapersky.models import FanoutMessage
from scrapersky.services.context import Deps

ACTIVE = ("pending", "processing")


def finish_if_done(deps: Deps, batch_id: str) -> str | None:
    """Turns the batch terminal when every item is finished. Idempotent: only one caller wins."""
    full = deps.store.get_batch(batch_id)
    if full is None:
        return None
    meta, shards = full
    if meta["status"] not in ACTIVE:
        return None
    final = decide_final_status(Counts.from_shards(shards), int(meta["total_items"]))
    if final is None:
        return None
    now = deps.clock.now()
    if deps.store.update_status(batch_id, final.value, ACTIVE, now, {"completed_at": now}):
        batch_ended(deps, meta)
        return final.value
    return None


def batch_ended(deps: Deps, meta: dict) -> None:
    group = meta.get("group")
    if group and deps.store.release_group(meta["tenant_id"], group, meta["batch_id"]):
        start_next_in_group(deps, meta["tenant_id"], group)


def start_next_in_group(deps: Deps, tenant_id: str, group: str) -> str | None:
    """Starts the oldest batch queued behind the group's lock, if the lock is free."""
    for _ in range(10):
        nxt = deps.store.next_waiting_in_group(tenant_id, group)
        if nxt is None:
            return None
        if not deps.store.take_group(tenant_id, group, nxt):
            return None  # someone else runs the group now; it will hand over when it ends
        if deps.store.update_status(nxt, "pending", ("queued",), deps.clock.now(), {"auto_start": False}):
            deps.queue.send_fanout([FanoutMessage(type="dispatch", batch_id=nxt, tenant_id=tenant_id)])
            return nxt
        deps.store.release_group(tenant_id, group, nxt)  # it was cancelled meanwhile: try the next one
    return None
