"""The maintenance sweeps: what a crash at the wrong moment would otherwise leave stuck for good.

- A batch stored but whose fan-out chunks were not all sent (the create crashed in between, no client token to
  retry with): its kept chunks are sent again (the fan-out's conditional puts make a replay harmless).
- A batch that ended but whose after-end messages may not all be sent (a crash right after its end write: it
  still carries the end's mark): batch.finished, the group hand-over and the export (or the cancel fan-out) are
  sent again. Each is idempotent: batch.finished has a stable event_id (delivered at least once), an export
  run twice publishes the same files, the cancel sweep cancels only pending items, and the hand-over releases
  the lock only while this batch holds it.
- A group lock still held by a batch that ended (a crash between its terminal status and the hand-over): it
  is released and the next queued batch starts.
- A free group with batches queued behind it (the eventually consistent waiting line missed one): the oldest
  starts."""

from __future__ import annotations

from typing import Any

from scrapersky.models import BatchStatus
from scrapersky.services.batches import send_chunks
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import after_end, start_next_in_group

UNSENT_AFTER_S = 120.0  # a create sends its chunks within its own few seconds; older is a crash
AFTER_END_S = 120.0  # likewise the caller that ended a batch sends what follows within seconds
PER_SWEEP = 100


def sweep(deps: Deps) -> dict[str, Any]:
    return {"redriven": redrive_unsent(deps), "after_end": resend_after_end(deps), **settle_groups(deps)}


def redrive_unsent(deps: Deps) -> list[str]:
    redriven = []
    for batch_id in deps.sweeps.unsent(deps.clock.now() - UNSENT_AFTER_S, PER_SWEEP):
        batch = deps.batches.get(batch_id)
        if batch is None or batch.fanout_sent:
            continue  # the index lags: already sent
        chunks = deps.sweeps.chunks(batch_id)
        send_chunks(deps, batch, chunks)
        redriven.append(batch_id)
    return redriven


def resend_after_end(deps: Deps) -> list[str]:
    resent: list[str] = []
    bound = deps.clock.now() - AFTER_END_S  # ended before it: no live caller is still sending
    # marks live seconds, so few are read; past PER_SWEEP of them, batches that ended just now may be in front
    for batch_id in deps.sweeps.after_end_pending(bound, 10 * PER_SWEEP):
        if len(resent) == PER_SWEEP:
            break
        batch = deps.batches.get(batch_id)
        if batch is None or not batch.status.terminal or (batch.completed_at or bound) >= bound:
            continue  # the index lags, or it ended just now
        after_end(deps, batch, cancel=batch.status is BatchStatus.CANCELLED)
        resent.append(batch_id)
    return resent


def settle_groups(deps: Deps) -> dict[str, list[str]]:
    released, started = [], []
    for lock in deps.sweeps.group_locks():
        if lock.running:
            running = deps.batches.get(lock.running)
            if running is not None and not running.status.terminal:
                continue  # a live batch holds it: it hands over when it ends
            if deps.batches.release_group(lock.tenant_id, lock.group, lock.running):
                released.append(lock.running)
        nxt = start_next_in_group(deps, lock.tenant_id, lock.group)
        if nxt:
            started.append(nxt)
    return {"released": released, "started": started}
