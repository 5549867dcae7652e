"""POST /scrape: one item, synchronously, through the same pool, lease path and rules as a batch item."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.domain.progress import iso
from scrapersky.errors import InvalidInput, NoProxyAvailable
from scrapersky.kinds.base import KindProcessor, Unit
from scrapersky.models import ItemStatus, ScrapeRequest
from scrapersky.services import leasing
from scrapersky.services.context import Deps


@dataclass
class _Tries:
    """What the call did so far: real attempts, rate-limit deferrals, the last error, the proxy to avoid."""

    started: float
    deadline: float
    last: Outcome | None = None
    avoid: str | None = None
    attempts: int = 0
    deferrals: int = 0


def scrape(deps: Deps, req: ScrapeRequest) -> dict[str, Any]:
    processor = deps.kinds.get(req.kind)
    if processor.sub_units or processor.kind == "profile":  # a profile check: services/profile_scrape.py
        # TODO(issue 8): POST /scrape with kind sitemap: read the item's documents in memory within the budget
        # (truncated: "time"). Refused until then: its units need the item's ledgers, bound per unit in batches.
        message = f"POST /scrape does not serve kind '{req.kind}' yet: create a batch of one item"
        raise InvalidInput(message, [{"field": "kind", "message": message}])
    norm = processor.normalise([req.item], req.options, deps.policy)
    if not norm.accepted:
        bad = norm.rejected[0]
        raise InvalidInput(f"invalid item: {bad.reason}", [{"item": bad.item, "reason": bad.reason}])
    url = norm.accepted[0]
    started = deps.clock.now()
    tries = _Tries(started, started + deps.settings.scrape_budget_s)
    while True:
        outcome = _one_try(deps, processor, url, req, tries)
        if outcome is _WAITED:  # no proxy yet: the budget allowed waiting for one
            continue
        if outcome is _OUT_OF_TIME:  # no proxy opens within the budget after earlier tries: the last one stands
            assert tries.last is not None
            return _view(processor, url, tries, deps.clock.now(), tries.last, bare=True)
        tries.last = outcome
        if _again(deps, outcome, tries, req.options.max_attempts):
            continue
        return _view(processor, url, tries, deps.clock.now(), outcome, with_result=not _deferral(outcome))


def _deferral(o: Outcome) -> bool:
    return o.kind is OutcomeKind.RATE_LIMITED


def _again(deps: Deps, o: Outcome, tries: _Tries, max_attempts: int) -> bool:
    """Counts the try; whether to try again: a rate limit (not an attempt) or a transient failure with
    attempts left, both only within the budget."""
    if _deferral(o):
        tries.deferrals += 1
    else:
        tries.attempts += 1
        if o.kind is not OutcomeKind.TRANSIENT or tries.attempts >= max_attempts:
            return False
    return deps.clock.now() < tries.deadline


_WAITED = Outcome(OutcomeKind.TRANSIENT, code="waited")
_OUT_OF_TIME = Outcome(OutcomeKind.TRANSIENT, code="out_of_time")


def _one_try(deps: Deps, processor: KindProcessor, url: str, req: ScrapeRequest, tries: _Tries) -> Outcome:
    """One leased request's outcome; _WAITED after waiting for a proxy that opens within the budget,
    _OUT_OF_TIME when none does after earlier tries (with none, the call answers 503)."""
    unit = Unit(url, 0.0, req.options.max_bytes)
    now = deps.clock.now()
    try:
        held = leasing.lease(deps, unit.host, f"scrape:{uuid.uuid4().hex[:12]}", avoid=tries.avoid)
    except NoProxyAvailable as e:
        if e.retry_at < tries.deadline:
            deps.clock.sleep(max(0.05, e.retry_at - now))
            return _WAITED
        if tries.last is not None:
            return _OUT_OF_TIME
        raise NoProxyAvailable(
            f"no proxy is free for {unit.host} within the call's budget", retry_at=e.retry_at
        ) from None
    unit = Unit(url, min(req.options.timeout_s, max(1.0, tries.deadline - now)), req.options.max_bytes)
    run = leasing.run_leased(deps, held, processor, unit)
    if run.outcome.kind is not OutcomeKind.SUCCESS:
        tries.avoid = run.lease.proxy_id
    return run.outcome


def _view(
    processor: KindProcessor,
    url: str,
    tries: _Tries,
    finished: float,
    o: Outcome,
    with_result: bool = True,
    bare: bool = False,
) -> dict[str, Any]:
    """The answer, shaped as an item of /batches/{id}/items. `bare`: the error alone (no status, no result)."""
    ok = o.kind is OutcomeKind.SUCCESS
    error = None if ok else {"code": o.code or "failed", "message": o.message or o.code or "failed"}
    return {
        "item": url,
        "status": (ItemStatus.SUCCEEDED if ok else ItemStatus.FAILED).value,
        "attempts": tries.attempts,
        "deferrals": tries.deferrals,
        "http_status": None if bare else o.http_status,
        "error": error,
        "started_at": iso(tries.started),
        "finished_at": iso(finished),
        "duration_ms": int((finished - tries.started) * 1000),
        "result": processor.render(o.result) if with_result and not bare else None,
    }
