"""Batch lifecycle shared by the use cases: finishing a batch when its counts add up, group hand-over."""

from __future__ import annotations

from scrapersky.domain.progress import decide_final_status, total
from scrapersky.models import ACTIVE_BATCH, BatchStatus, ExportState, FanoutMessage
from scrapersky.records import BatchRecord
from scrapersky.services import events, tolerance
from scrapersky.services.context import Deps


def finish_if_done(deps: Deps, batch_id: str) -> BatchStatus | None:
    """Turns the batch terminal when every item is finished. Idempotent: only one caller wins."""
    full = deps.batches.get_with_counts(batch_id)
    if full is None:
        return None
    batch, shards = full
    if batch.status not in ACTIVE_BATCH:
        return None
    final = decide_final_status(total(shards), batch.total_items)
    if final is None:
        return None
    if _following(deps, batch):
        return None  # its URLs are being followed into the child batch: the follow's last step ends it
    final = tolerance.final_status(deps, batch, total(shards), final)  # failed past its tolerated failures
    if deps.batches.end(batch_id, final, deps.clock.now(), ACTIVE_BATCH):
        after_end(deps, batch, cancel=False)
        return final
    return None


def after_end(deps: Deps, batch: BatchRecord, cancel: bool) -> None:
    """What follows the end write of a batch: batch.finished and the group's hand-over, then the cancel fan-out
    (whose last page requests the export) or the export itself; then the end's mark is cleared. A crash before
    the clear leaves the mark, and the sweeper sends them all again (services/sweeper.py): each is idempotent."""
    batch_ended(deps, batch)
    if cancel:
        deps.queue.send_fanout([FanoutMessage(type="cancel", batch_id=batch.batch_id, tenant_id=batch.tenant_id)])
    else:
        request_export(deps, batch)
    deps.batches.after_end_sent(batch.batch_id)


def _following(deps: Deps, batch: BatchRecord) -> bool:
    from scrapersky.services import follow  # here: the follow ends its batch through this module

    return follow.holds(deps, batch)


def request_export(deps: Deps, batch: BatchRecord) -> None:
    """Asks the fan-out for the results export of a batch that ended (services/export.py)."""
    state = ExportState(requested_at=deps.clock.now())
    deps.queue.send_fanout(
        [FanoutMessage(type="export", batch_id=batch.batch_id, tenant_id=batch.tenant_id, export=state)]
    )


def batch_ended(deps: Deps, batch: BatchRecord) -> None:
    """Tells that the batch ended (batch.finished) and hands its group over to the next batch queued behind it."""
    events.batch_finished(deps, batch)
    if batch.group and deps.batches.release_group(batch.tenant_id, batch.group, batch.batch_id):
        start_next_in_group(deps, batch.tenant_id, batch.group)


def dispatch(deps: Deps, batch_id: str, tenant_id: str) -> None:
    """Asks the fan-out to send the work of a batch that just started."""
    deps.queue.send_fanout([FanoutMessage(type="dispatch", batch_id=batch_id, tenant_id=tenant_id)])


def start_next_in_group(deps: Deps, tenant_id: str, group: str) -> str | None:
    """Starts the oldest batch queued behind the group's lock, if the lock is free."""
    passed: str | None = None
    for _ in range(10):
        nxt = deps.batches.next_waiting_in_group(tenant_id, group, after=passed)
        if nxt is None:
            return None
        if not deps.batches.take_group(tenant_id, group, nxt):
            return None  # someone else runs the group now; it will hand over when it ends
        if deps.batches.start(nxt, deps.clock.now()):
            dispatch(deps, nxt, tenant_id)
            return nxt
        deps.batches.release_group(tenant_id, group, nxt)  # it left the line meanwhile (cancelled): the next one
        passed = nxt
    return None
