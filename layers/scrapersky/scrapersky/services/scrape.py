"""POST /scrape: one item, synchronously, through the same pool and rules as a batch item."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from scrapersky.domain.outcomes import OutcomeKind, classify
from scrapersky.domain.progress import iso
from scrapersky.domain.targets import InvalidTarget, normalise_items
from scrapersky.errors import InvalidInput, NoProxyAvailable
from scrapersky.models import ScrapeRequest
from scrapersky.services.context import Deps
from scrapersky.services.slots import wait_for_slot


def scrape(deps: Deps, req: ScrapeRequest) -> dict[str, Any]:
    try:
        norm = normalise_items(req.kind, [req.item], deps.policy)
    except InvalidTarget as e:
        raise InvalidInput(str(e), [{"field": "kind", "message": str(e)}]) from e
    if not norm.accepted:
        raise InvalidInput(
            f"invalid item: {norm.rejected[0].reason}",
            [{"item": norm.rejected[0].item, "reason": norm.rejected[0].reason}],
        )
    url = norm.accepted[0]
    host = urlsplit(url).hostname or ""
    started = deps.clock.now()
    deadline = started + deps.settings.scrape_budget_s
    attempts = deferrals = 0
    avoid: str | None = None
    last_error: tuple[str, str] | None = None
    while True:
        now = deps.clock.now()
        owner = f"scrape:{uuid.uuid4().hex[:12]}"
        try:
            lease = deps.pool.lease(
                host, owner, now, deps.settings.lease_seconds, avoid=avoid, max_wait_s=deps.settings.pacing_max_wait_s
            )
        except NoProxyAvailable as e:
            if e.retry_at >= deadline:
                if last_error:
                    return _view(url, "failed", attempts, deferrals, started, deps.clock.now(), error=last_error)
                raise NoProxyAvailable(
                    f"no proxy is free for {host} within the call's budget", retry_at=e.retry_at
                ) from None
            deps.clock.sleep(max(0.05, e.retry_at - now))
            continue
        lease = wait_for_slot(deps, lease)
        fetched = deps.fetcher.fetch(
            url, lease.url, min(req.options.timeout_s, max(1.0, deadline - now)), req.options.max_bytes
        )
        done = deps.clock.now()
        outcome = classify(fetched, done)
        if outcome.kind is OutcomeKind.RATE_LIMITED:
            deps.pool.release(lease, host, done, "rate_limited", outcome.retry_after_s, False)
            deferrals += 1
            avoid = lease.proxy_id
            last_error = (outcome.code or "rate_limited", outcome.message or "rate limited")
            if done >= deadline:
                return _view(url, "failed", attempts, deferrals, started, done, outcome.http_status, None, last_error)
            continue
        ok = outcome.kind is OutcomeKind.SUCCESS
        deps.pool.release(lease, host, done, "success" if ok else "failed", None, outcome.proxy_fault)
        attempts += 1
        if ok:
            return _view(url, "succeeded", attempts, deferrals, started, done, outcome.http_status, outcome.result)
        last_error = (outcome.code or "failed", outcome.message or "failed")
        if outcome.kind is OutcomeKind.TRANSIENT and attempts < req.options.max_attempts and done < deadline:
            avoid = lease.proxy_id
            continue
        return _view(url, "failed", attempts, deferrals, started, done, outcome.http_status, outcome.result, last_error)


def _view(
    url: str,
    status: str,
    attempts: int,
    deferrals: int,
    started: float,
    finished: float,
    http_status: int | None = None,
    result: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "item": url,
        "status": status,
        "attempts": attempts,
        "deferrals": deferrals,
        "http_status": http_status,
        "error": {"code": error[0], "message": error[1]} if error and status == "failed" else None,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_ms": int((finished - started) * 1000),
        "result": result,
    }
