"""The one path every unit of work takes through a proxy, shared by the worker and the synchronous scrape:
lease (the pacing slots booked: the proxy's for the host and, for a host with a total limit, the host's across the
pool), wait for the slot, run the kind's fetch, classify, release, and keep what it learnt of the host (a robots.txt's
Crawl-delay). The lease is released on every path, an exception included."""

from __future__ import annotations

from dataclasses import dataclass, replace

from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.kinds.base import KindProcessor, Processed, Unit
from scrapersky.ports import Lease, Release
from scrapersky.services.context import Deps

LATE_SHARE = 0.1  # a request this share of the host's gap late for its slot on the host's line books again
MIN_LATE_S = 0.02
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
    through this proxy must be spaced from the real send time, not from the slot.

    A host with a total limit has one line for the whole pool, and the next slot in it is someone else's: a request
    that would leave well after its own slot (the claim took long, the container woke late) would come too close
    to the next one, so it books again at the line's end and waits for that slot instead."""
    deps.clock.sleep(held.start_at - deps.clock.now())
    gap, now = held.host_gap_s, deps.clock.now()
    if gap is not None and now - held.start_at > max(MIN_LATE_S, LATE_SHARE * gap):
        held = replace(held, start_at=deps.hosts.book_again(held.host, gap, now))
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
        if processed.sent_at is not None:  # the pace counts from the unit's last request (a check after its warm-up)
            held = replace(held, start_at=processed.sent_at)
        o = processed.outcome
        deps.pool.release(held, done, _RELEASE.get(o.kind, Release.FAILED), o.retry_after_s, o.proxy_fault)
        released = True
        if processed.crawl_delay is not None:  # a robots.txt read: its Crawl-delay paces the host across the pool
            deps.hosts.learn_crawl_delay(held.host, processed.crawl_delay.seconds, done, held.start_at)
        return LeasedRun(processed, held, done)
    finally:
        if not released:
            hand_back(deps, held)
