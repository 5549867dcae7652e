"""Waiting for a lease's booked pacing slot, shared by the worker and the synchronous scrape."""

from __future__ import annotations

from dataclasses import replace

from scrapersky.ports import Lease
from scrapersky.services.context import Deps


def wait_for_slot(deps: Deps, lease: Lease) -> Lease:
    """Sleeps until the slot the lease booked (at most pacing_max_wait_s away) and returns the lease with
    `start_at` set to when the request really leaves: a busy container may wake late, and the next request
    through this proxy must be spaced from the real send time, not from the slot."""
    deps.clock.sleep(lease.start_at - deps.clock.now())
    return replace(lease, start_at=max(lease.start_at, deps.clock.now()))
