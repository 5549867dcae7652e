"""POST /scrape: one item, synchronously, through the same pool, lease path and rules as a batch item, within the
call's budget (settings.scrape_budget_s, under API Gateway's 29 s). A page is one unit of work
(services/scrape_units.py); a sitemap item is read document by document (services/scrape_sitemap.py)."""

from __future__ import annotations

from typing import Any

from scrapersky.errors import InvalidInput
from scrapersky.kinds.base import Unit
from scrapersky.models import ScrapeRequest
from scrapersky.services import scrape_sitemap
from scrapersky.services.context import Deps
from scrapersky.services.scrape_units import End, Tries, deferral, run_unit, view


def scrape(deps: Deps, req: ScrapeRequest) -> dict[str, Any]:
    processor = deps.kinds.get(req.kind)
    if processor.kind == "profile":  # a tenant's check, with its session and history: services/profile_scrape.py
        message = "POST /scrape runs kind profile through its own use case (the route picks it)"
        raise InvalidInput(message, [{"field": "kind", "message": message}])
    norm = processor.normalise([req.item], req.options, deps.policy)
    if not norm.accepted:
        bad = norm.rejected[0]
        raise InvalidInput(f"invalid item: {bad.reason}", [{"item": bad.item, "reason": bad.reason}])
    url = norm.accepted[0]
    started = deps.clock.now()
    tries = Tries(started, started + deps.settings.scrape_budget_s)
    if processor.sub_units:
        return scrape_sitemap.scrape_item(deps, processor, url, req.options, tries)
    unit = Unit(url, req.options.timeout_s, req.options.max_bytes)
    tried = run_unit(deps, processor, unit, req.options.max_attempts, tries)
    o = tried.run.outcome
    if tried.end is End.NO_PROXY:  # no proxy opens within the budget after earlier tries: the last one stands
        return view(url, tries, deps.clock.now(), o, None, bare=True)
    return view(url, tries, deps.clock.now(), o, None if deferral(o) else processor.render(o.result))
