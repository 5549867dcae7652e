"""The fan-out use case: write a chunk's item records, then dispatch work (or cancel), idempotently."""

from __future__ import annotations

from scrapersky.models import ACTIVE_BATCH, BatchStatus, FanoutMessage, WorkMessage
from scrapersky.records import BatchRecord, ItemRef
from scrapersky.services import export, follow
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done, request_export

PAGE = 500
DISPATCH_EVERY = 25  # items written before their work messages go out


def work_message(batch: BatchRecord, seq: int, item: str) -> WorkMessage:
    opts = batch.options
    return WorkMessage(
        batch_id=batch.batch_id,
        tenant_id=batch.tenant_id,
        seq=seq,
        shard=batch.shard_of(seq),
        kind=batch.kind,
        item=item,
        max_attempts=int(opts.get("max_attempts", 3)),
        timeout_s=float(opts.get("timeout_s", 20.0)),
        max_bytes=int(opts.get("max_bytes", 2_000_000)),
        max_wait_s=float(opts.get("max_wait_s", 3600)),
    )


def handle(deps: Deps, msg: FanoutMessage) -> str:
    batch = deps.batches.get(msg.batch_id)
    if batch is None:
        return "unknown_batch"
    own = {"chunk": _chunk, "export": export.handle, "follow": follow.handle}.get(msg.type)
    return own(deps, msg, batch) if own else _page_of_pending(deps, msg, batch)


def _page_of_pending(deps: Deps, msg: FanoutMessage, batch: BatchRecord) -> str:
    """dispatch or cancel: one page of the batch's pending items, then the next page's message."""
    rows, cursor = deps.items.pending(msg.batch_id, msg.cursor, PAGE)
    if msg.type == "dispatch":
        if batch.status in ACTIVE_BATCH:
            deps.queue.send_work([work_message(batch, r.seq, r.item) for r in rows])
    else:  # cancel: end every item that has not started
        for r in rows:
            deps.items.cancel(r.ref, deps.clock.now())
    if cursor:
        deps.queue.send_fanout([msg.model_copy(update={"cursor": cursor})])
    else:
        _swept(deps, msg, batch)
    return msg.type


def _swept(deps: Deps, msg: FanoutMessage, batch: BatchRecord) -> None:
    if msg.type == "cancel" and batch.status is BatchStatus.CANCELLED:
        request_export(deps, batch)  # every item that had not started is cancelled now: the results are final
    else:  # dispatched, or the sweep of a batch stopped for its failures (services/tolerance.py): it may end now
        finish_if_done(deps, msg.batch_id)


def _chunk(deps: Deps, msg: FanoutMessage, batch: BatchRecord) -> str:
    """Part by part: the first part's items are on the work queue while the rest is still being written."""
    outcome = "dispatched"
    for start in range(0, len(msg.items), DISPATCH_EVERY):
        part = msg.items[start : start + DISPATCH_EVERY]
        still_pending = deps.items.put_pending(batch, msg.first_seq + start, part, deps.clock.now())
        # Read the status after writing: a start or cancel racing this part then always sees our records.
        batch = deps.batches.get(msg.batch_id) or batch
        if batch.status is BatchStatus.QUEUED:
            outcome = "stored"
        elif batch.status is BatchStatus.CANCELLED:
            for seq, _item in still_pending:
                deps.items.cancel(ItemRef(batch.batch_id, seq, batch.shard_of(seq)), deps.clock.now())
            outcome = "cancelled"
        elif batch.status in ACTIVE_BATCH:
            deps.queue.send_work([work_message(batch, seq, item) for seq, item in still_pending])
    return outcome
