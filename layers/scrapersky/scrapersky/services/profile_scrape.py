"""POST /scrape with kind profile: one check, synchronously, through the same lease path, sessions and rules as a
batch item (services/scrape_units.run_unit: a block retries through another proxy, a rate limit waits within the
call's budget), and the target's history updated as a batch item's end would (the check has no item:
`last_batch_id` stays as it was)."""

from __future__ import annotations

from typing import Any

from scrapersky.checks import target_url
from scrapersky.errors import InvalidInput
from scrapersky.kinds.base import Unit
from scrapersky.kinds.profile import CheckJob, check_spec
from scrapersky.models import ScrapeRequest
from scrapersky.profile_ports import TargetKey
from scrapersky.services.context import Deps
from scrapersky.services.profile_items import finished_check
from scrapersky.services.scrape_units import End, Tries, deferral, run_unit, view
from scrapersky.services.target_events import emit_target_event


def scrape_check(deps: Deps, tenant_id: str, req: ScrapeRequest) -> dict[str, Any]:
    """The check's answer, shaped as an item of /batches/{id}/items."""
    processor = deps.kinds.get(req.kind)
    norm = processor.normalise([req.item], req.options, deps.policy)
    if not norm.accepted:
        bad = norm.rejected[0]
        raise InvalidInput(f"invalid item: {bad.reason}", [{"item": bad.item, "reason": bad.reason}])
    spec, target = check_spec(req.options), norm.accepted[0]
    started = deps.clock.now()
    tries = Tries(started, started + deps.settings.scrape_budget_s)
    job = CheckJob(spec, target, tenant_id, deps.sessions, deps.check_fetcher)
    unit = Unit(target_url(spec, target), req.options.timeout_s, req.options.max_bytes, job=job)
    tried = run_unit(deps, processor, unit, req.options.max_attempts, tries)
    o, done = tried.run.outcome, deps.clock.now()
    event = deps.targets.record(TargetKey(tenant_id, spec.name, target), finished_check(None, o, done), done)
    if event is not None:
        emit_target_event(deps, None, event, tenant_id)
    if tried.end is End.NO_PROXY:  # no proxy opens within the budget after earlier tries: the last one stands
        return view(target, tries, done, o, None, bare=True)
    return view(target, tries, done, o, None if deferral(o) else processor.render(o.result))
