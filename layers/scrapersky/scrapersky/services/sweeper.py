"""The maintenance sweeps: what a crash at the wrong moment would otherwise leave stuck for good.

- A batch stored but whose fan-out chunks were not all sent (the create crashed in between, no client token to
  retry with): its kept chunks are sent again (the fan-out's conditional puts make a replay harmless).
- A group lock still held by a batch that ended (a crash between its terminal status and the hand-over): it
  is released and the next queued batch starts.
- A free group with batches queued behind it (the eventually consistent waiting line missed one): the oldest
  starts."""

from __future__ import annotations

from typing import Any

from scrapersky.services.batches import send_chunks
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import start_next_in_group

UNSENT_AFTER_S = 120.0  # a create sends its chunks within its own few seconds; older is a crash
PER_SWEEP = 100


def sweep(deps: Deps) -> dict[str, Any]:
    return {"redriven": redrive_unsent(deps), **settle_groups(deps)}


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
