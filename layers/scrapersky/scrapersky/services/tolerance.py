"""Tolerated failures: a batch that failed more than it tolerates stops, and ends `failed` with its reason.

Judged cheaply: only an item that ends failed can push a batch past its tolerance, so only then (and only in a
batch that sets one and has not stopped) are the counter shards read: one query of at most 16 rows, as a status
read. The batch's end judges once more with its final counts. A batch whose failures came first and whose
successes then brought it to 20 finished items stops at its next failure, or ends failed at its end.

Stopping sets the batch's stop reason (one conditional write: one caller wins) and sends the cancel fan-out:
pending items end cancelled without being fetched (the worker cancels the work messages already queued), running
ones finish, and the batch turns `failed` only when every item is finished, so its counts are final then."""

from __future__ import annotations

from scrapersky.domain.progress import total
from scrapersky.domain.tolerance import REASON, exceeded, tolerates
from scrapersky.models import ACTIVE_BATCH, BatchStatus, FanoutMessage
from scrapersky.records import BatchRecord, ShardCounts
from scrapersky.services.context import Deps


def judge(deps: Deps, batch: BatchRecord) -> bool:
    """After an item of the batch ended failed: stops the batch if it is past its tolerance. True when it did."""
    if not tolerates(batch.options) or batch.stop_reason:
        return False
    full = deps.batches.get_with_counts(batch.batch_id)
    if full is None:
        return False
    current, shards = full
    if current.status not in ACTIVE_BATCH or current.stop_reason or not _exceeded(current, total(shards)):
        return False
    if not deps.events.stops.stop(current.batch_id, REASON, deps.clock.now()):
        return False  # another delivery stopped it
    deps.queue.send_fanout([FanoutMessage(type="cancel", batch_id=current.batch_id, tenant_id=current.tenant_id)])
    return True


def final_status(deps: Deps, batch: BatchRecord, counts: ShardCounts, decided: BatchStatus) -> BatchStatus:
    """The status a batch whose items all finished ends with: `failed` once stopped or past its tolerance (the
    reason is stored before the end, so the ended batch shows it), else what its counts decide."""
    if batch.stop_reason:
        return BatchStatus.FAILED
    if tolerates(batch.options) and _exceeded(batch, counts):
        deps.events.stops.stop(batch.batch_id, REASON, deps.clock.now())
        return BatchStatus.FAILED
    return decided


def _exceeded(batch: BatchRecord, counts: ShardCounts) -> bool:
    return exceeded(batch.options, counts.succeeded, counts.failed, counts.cancelled, batch.total_items)
