"""One unit of work of POST /scrape, run through the pool within the call's budget: lease (waiting for a proxy
whose slot opens before the budget ends), the shared leased path (services/leasing.py), and the same retry rules
as a batch's delivery: a rate limit is a deferral (no attempt spent, another proxy or a wait for this one), a
transient failure is retried on another proxy up to max_attempts. A page is one unit; a sitemap item is many,
read one after another (services/scrape_sitemap.py), all counted on one Tries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.domain.progress import iso
from scrapersky.errors import NoProxyAvailable
from scrapersky.kinds.base import KindProcessor, Unit
from scrapersky.models import ItemStatus
from scrapersky.ports import Lease
from scrapersky.services import leasing
from scrapersky.services.context import Deps


@dataclass
class Tries:
    """What the call did so far: real attempts and rate-limit deferrals (over all its units), within its budget."""

    started: float
    deadline: float
    attempts: int = 0
    deferrals: int = 0


class End(Enum):
    FINAL = "final"  # the unit's outcome stands: success, a permanent failure, or no attempt left
    BUDGET = "budget"  # a deferral or a retry was due, but the budget ended
    NO_PROXY = "no_proxy"  # after earlier tries, no proxy opens within the budget: the last outcome stands, bare


@dataclass(frozen=True)
class Tried:
    """How one unit ended: its last leased run and why it stopped there."""

    run: leasing.LeasedRun
    end: End


def deferral(o: Outcome) -> bool:
    return o.kind is OutcomeKind.RATE_LIMITED


def run_unit(
    deps: Deps,
    processor: KindProcessor,
    unit: Unit,
    max_attempts: int,
    tries: Tries,
    bind: Callable[[Unit], Unit] = lambda u: u,
) -> Tried:
    """Runs the unit until its outcome stands or the budget ends. `bind` gives each try its unit (a sitemap
    document's fresh ledger view). Raises NoProxyAvailable when no proxy opens within the budget before the call
    ran at all (for the call's first unit: a 503)."""
    last: Tried | None = None
    avoid: str | None = None
    attempts = 0  # this unit's own, for max_attempts
    while True:
        try:
            held = _lease(deps, unit, tries, avoid)
        except NoProxyAvailable:
            if last is None:  # the unit did not run at all
                raise
            return replace(last, end=End.NO_PROXY)
        if held is None:  # waited for a proxy within the budget: look again
            continue
        now = deps.clock.now()
        run_as = bind(replace(unit, timeout_s=min(unit.timeout_s, max(1.0, tries.deadline - now))))
        run = leasing.run_leased(deps, held, processor, run_as)
        o = run.outcome
        last = Tried(run, End.FINAL)
        if o.kind is not OutcomeKind.SUCCESS:
            avoid = run.lease.proxy_id
        if deferral(o):
            tries.deferrals += 1
        else:
            tries.attempts += 1
            attempts += 1
            if o.kind is not OutcomeKind.TRANSIENT or attempts >= max_attempts:
                return last
        if deps.clock.now() >= tries.deadline:
            return replace(last, end=End.BUDGET)


def _lease(deps: Deps, unit: Unit, tries: Tries, avoid: str | None) -> Lease | None:
    """A lease for the unit's host; None after waiting for a proxy whose slot opens within the budget. Raises
    NoProxyAvailable when none opens before the budget ends."""
    now = deps.clock.now()
    try:
        return leasing.lease(deps, unit.host, f"scrape:{uuid.uuid4().hex[:12]}", avoid=avoid)
    except NoProxyAvailable as e:
        if e.retry_at < tries.deadline:
            deps.clock.sleep(max(0.05, e.retry_at - now))
            return None
        raise NoProxyAvailable(
            f"no proxy is free for {unit.host} within the call's budget", retry_at=e.retry_at
        ) from None


def view(
    item: str,
    tries: Tries,
    finished: float,
    o: Outcome,
    result: dict[str, Any] | None,
    bare: bool = False,
) -> dict[str, Any]:
    """The answer, shaped as an item of /batches/{id}/items. `bare`: the error alone (no status, no result)."""
    ok = o.kind is OutcomeKind.SUCCESS
    error = None if ok else {"code": o.code or "failed", "message": o.message or o.code or "failed"}
    return {
        "item": item,
        "status": (ItemStatus.SUCCEEDED if ok else ItemStatus.FAILED).value,
        "attempts": tries.attempts,
        "deferrals": tries.deferrals,
        "http_status": None if bare else o.http_status,
        "error": error,
        "started_at": iso(tries.started),
        "finished_at": iso(finished),
        "duration_ms": int((finished - tries.started) * 1000),
        "result": None if bare else result,
    }
