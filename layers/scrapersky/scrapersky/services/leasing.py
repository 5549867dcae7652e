"""The one path every unit of work takes through a proxy, shared by the worker and the synchronous scrape:
lease (the pacing slot booked in the same write), wait for the slot, run the kind's fetch, classify, release.
The lease is released on every path, an exception included."""

from __future__ import annotations

from dataclasses import dataclass, replace

from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.kinds.base import KindProcessor, Processed, Unit
from scrapersky.ports import Lease, Release
from scrapersky.services.context import Deps

_RELEASE = {OutcomeKind.SUCCESS: Release.SUCCESS, OutcomeKind.RATE_LIMITED: Release.RATE_LIMITED}


@dataclass(frozen=True)
class LeasedRun:
    """What a unit of work did through its lease: the outcome, the lease as used (`start_at` is when the request
    really left) and when the answer was in."""

    processed: Processed
    lease: Lease
    done_at: float

    @property
    def outcome(self) -> Outcome:
        return self.processed.outcome


def lease(deps: Deps, host: str, owner: str, avoid: str | None = None, hold_s: float | None = None) -> Lease:
    """A proxy whose slot for the host opens within the in-process wait. Raises NoProxyAvailable(retry_at)."""
    s = deps.settings
    held_for = hold_s or s.lease_seconds
    return deps.pool.lease(host, owner, deps.clock.now(), held_for, avoid=avoid, max_wait_s=s.pacing_max_wait_s)


def hand_back(deps: Deps, held: Lease) -> None:
    """Returns a lease no request went out on (a release that already happened is fenced off: no change)."""
    deps.pool.release(held, deps.clock.now(), Release.UNUSED)


def wait_for_slot(deps: Deps, held: Lease) -> Lease:
    """Sleeps until the slot the lease booked (at most pacing_max_wait_s away) and returns the lease with
    `start_at` set to when the request really leaves: a busy container may wake late, and the next request
    through this proxy must be spaced from the real send time, not from the slot."""
    deps.clock.sleep(held.start_at - deps.clock.now())
    return replace(held, start_at=max(held.start_at, deps.clock.now()))


def run_leased(deps: Deps, held: Lease, processor: KindProcessor, unit: Unit) -> LeasedRun:
    """Runs one unit of work through the held lease and releases it with what the site did."""
    released = False
    try:
        held = wait_for_slot(deps, held)
        unit = processor.through(unit, held)
        processed = processor.process(unit, deps.fetcher, held.url, deps.clock.now)
        done = deps.clock.now()
        o = processed.outcome
        deps.pool.release(held, done, _RELEASE.get(o.kind, Release.FAILED), o.retry_after_s, o.proxy_fault)
        released = True
        return LeasedRun(processed, held, done)
    finally:
        if not released:
            hand_back(deps, held)
