"""POST /scrape with kind profile: one check, synchronously, through the same lease path, sessions and rules as a
batch item (a block retries through another proxy, a rate limit waits within the call's budget), and the target's
history updated as a batch item's end would (the check has no item: `last_batch_id` stays as it was)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from scrapersky.checks import CheckSpec, target_url
from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.domain.progress import iso
from scrapersky.errors import InvalidInput, NoProxyAvailable
from scrapersky.kinds.base import KindProcessor, Unit
from scrapersky.kinds.profile import CheckJob, check_spec
from scrapersky.models import ItemStatus, ScrapeRequest
from scrapersky.profile_ports import TargetKey
from scrapersky.services import leasing
from scrapersky.services.context import Deps
from scrapersky.services.profile_items import finished_check
from scrapersky.services.target_events import emit_target_event


@dataclass
class _Check:
    deps: Deps
    tenant_id: str
    spec: CheckSpec
    target: str
    req: ScrapeRequest
    started: float
    attempts: int = 0
    deferrals: int = 0
    avoid: str | None = None

    @property
    def deadline(self) -> float:
        return self.started + self.deps.settings.scrape_budget_s

    def run(self, processor: KindProcessor) -> Outcome:
        last: Outcome | None = None
        while True:
            o = self._one(processor, last)
            if o is None:
                continue  # waited for a proxy within the budget
            if o is _OUT_OF_TIME:
                assert last is not None
                return last
            last = o
            if not self._again(o):
                return o

    def _one(self, processor: KindProcessor, last: Outcome | None) -> Outcome | None:
        deps, url = self.deps, target_url(self.spec, self.target)
        unit = Unit(url, 0.0, self.req.options.max_bytes)
        now = deps.clock.now()
        try:
            held = leasing.lease(deps, unit.host, f"scrape:{uuid.uuid4().hex[:12]}", avoid=self.avoid)
        except NoProxyAvailable as e:
            if e.retry_at < self.deadline:
                deps.clock.sleep(max(0.05, e.retry_at - now))
                return None
            if last is not None:
                return _OUT_OF_TIME
            raise NoProxyAvailable(f"no proxy is free for {unit.host} within the call's budget", e.retry_at) from None
        job = CheckJob(self.spec, self.target, self.tenant_id, deps.sessions, deps.check_fetcher)
        timeout = min(self.req.options.timeout_s, max(1.0, self.deadline - now))
        run = leasing.run_leased(deps, held, processor, Unit(url, timeout, self.req.options.max_bytes, job=job))
        if run.outcome.kind is not OutcomeKind.SUCCESS:
            self.avoid = run.lease.proxy_id
        return run.outcome

    def _again(self, o: Outcome) -> bool:
        if o.kind is OutcomeKind.RATE_LIMITED:
            self.deferrals += 1
        else:
            self.attempts += 1
            if o.kind is not OutcomeKind.TRANSIENT or self.attempts >= self.req.options.max_attempts:
                return False
        return self.deps.clock.now() < self.deadline


_OUT_OF_TIME = Outcome(OutcomeKind.TRANSIENT, code="out_of_time")


def scrape_check(deps: Deps, tenant_id: str, req: ScrapeRequest) -> dict[str, Any]:
    """The check's answer, shaped as an item of /batches/{id}/items."""
    processor = deps.kinds.get(req.kind)
    norm = processor.normalise([req.item], req.options, deps.policy)
    if not norm.accepted:
        bad = norm.rejected[0]
        raise InvalidInput(f"invalid item: {bad.reason}", [{"item": bad.item, "reason": bad.reason}])
    spec, target = check_spec(req.options), norm.accepted[0]
    check = _Check(deps, tenant_id, spec, target, req, deps.clock.now())
    o = check.run(processor)
    done = deps.clock.now()
    event = deps.targets.record(TargetKey(tenant_id, spec.name, target), finished_check(None, o, done), done)
    if event is not None:
        emit_target_event(deps, None, event, tenant_id)
    ok = o.kind is OutcomeKind.SUCCESS
    return {
        "item": target,
        "status": (ItemStatus.SUCCEEDED if ok else ItemStatus.FAILED).value,
        "attempts": check.attempts,
        "deferrals": check.deferrals,
        "http_status": o.http_status,
        "error": None if ok else {"code": o.code or "failed", "message": o.message or o.code or "failed"},
        "started_at": iso(check.started),
        "finished_at": iso(done),
        "duration_ms": int((done - check.started) * 1000),
        "result": processor.render(o.result),
    }
