"""The worker use case: one work message -> lease a proxy, claim its unit (the item, or one unit of an item that
spans many: services/claims.py), fetch, record, release."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from scrapersky.domain.outcomes import OutcomeKind, full_jitter_backoff
from scrapersky.errors import NoProxyAvailable
from scrapersky.kinds.base import KindProcessor, Unit
from scrapersky.kinds.profile import ProfileProcessor
from scrapersky.models import BatchStatus, WorkMessage
from scrapersky.ports import Claim, ClaimRefused, Lease, Release
from scrapersky.records import BatchRecord, ItemError
from scrapersky.services import documents, leasing
from scrapersky.services.claims import ItemClaims, Result, UnitClaims
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done
from scrapersky.services.profile_items import ProfileClaims

MAX_DEFER_S = 900.0
TIME_GUARD_S = 10.0  # what an invocation keeps beyond a fetch's deadline to record it


class Deferred(Exception):
    """The message goes back to the queue (reported as a batch item failure) after `seconds`."""

    def __init__(
        self, seconds: float, reason: str, metrics: dict[str, float] | None = None, host: str | None = None
    ) -> None:
        super().__init__(f"deferred {seconds:.1f}s: {reason}")
        self.seconds = seconds
        self.reason = reason
        self.metrics = metrics or {}
        self.host = host


@dataclass
class InvocationCache:
    """Batch records read during one invocation (cancel is seen by the next invocation at the latest)."""

    batches: dict[str, BatchRecord | None] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)

    def batch(self, deps: Deps, batch_id: str) -> BatchRecord | None:
        if batch_id not in self.batches:
            self.batches[batch_id] = deps.batches.get(batch_id)
        return self.batches[batch_id]


def process(deps: Deps, msg: WorkMessage, cache: InvocationCache, rng: random.Random | None = None) -> Result:
    batch = cache.batch(deps, msg.batch_id)
    if batch is None:
        return Result("dropped_unknown_batch")
    owner = f"{uuid.uuid4().hex[:12]}:{msg.batch_id}:{msg.seq}"
    processor = deps.kinds.get(msg.kind)
    claims = claims_for(deps, msg, batch, processor)
    if batch.status is BatchStatus.CANCELLED:
        return claims.cancel(owner)
    if batch.stop_reason:  # stopped for its failures: what has not run ends cancelled, the last one ends the batch
        result = claims.cancel(owner)
        if result.outcome == "cancelled":  # (a refused claim of a finished item has looked at the batch already)
            finish_if_done(deps, batch.batch_id)
        return result
    if processor.sub_units and msg.unit is None:  # the item's first message: its first unit is sent, no fetch
        return documents.start_item(deps, msg, batch, cache.started)
    delivery = _Delivery(deps, msg, batch, claims, owner, processor, processor.unit_for(msg, batch), deps.clock.now())
    return delivery.run(cache, rng or random.Random())


def claims_for(deps: Deps, msg: WorkMessage, batch: BatchRecord, processor: KindProcessor) -> UnitClaims:
    """The item is the unit (page), or the message names one unit of an item that spans many (sitemap)."""
    if processor.sub_units:
        return documents.DocumentClaims(deps, msg, batch, processor)
    if processor.kind == ProfileProcessor.kind:
        return ProfileClaims(deps, msg, batch, processor)  # its end changes its target's history too
    return ItemClaims(deps, msg, batch, processor)


@dataclass
class _Delivery:
    """One delivery of one work message, holding at most one lease at a time (`held`), which every exit
    releases: the lease in use, also after a retry switched to another proxy."""

    deps: Deps
    msg: WorkMessage
    batch: BatchRecord
    claims: UnitClaims
    owner: str
    processor: KindProcessor
    unit: Unit
    started: float
    held: Lease | None = None

    def run(self, cache: InvocationCache, rng: random.Random) -> Result:
        ticket = self.msg.ticket
        if ticket is not None and ticket > self.started + 1.0:
            # back early from a wait longer than SQS allows: it keeps its place, it takes no second one
            wait = min(MAX_DEFER_S, ticket - self.started)
            return Result("waiting_in_line", retry_in_s=wait, waiting_for="no_proxy", ticket=ticket)
        try:
            hold = self.deps.settings.hold_s(self.unit.timeout_s)
            self.held = leasing.lease(self.deps, self.unit.host, self.owner, hold_s=hold)
        except NoProxyAvailable as e:
            # Come back exactly when a proxy can take the host, in line behind the items already waiting for it.
            return self._wait_in_line(e.retry_at)
        try:
            return self._claimed(cache, rng)
        finally:
            if self.held is not None:
                leasing.hand_back(self.deps, self.held)

    def _wait_in_line(self, retry_at: float) -> Result:
        deps, host, now = self.deps, self.unit.host, self.started
        gap = 1.0 / (deps.pool.capacity(host, now) or deps.settings.default_host_rate)
        wake = deps.hosts.take_ticket(host, now, retry_at, gap)
        wait = min(MAX_DEFER_S, max(0.0, wake - now))
        return Result(
            "deferred_no_proxy", retry_in_s=wait, metrics={"deferred": 1}, waiting_for="no_proxy", ticket=wake
        )

    def _claimed(self, cache: InvocationCache, rng: random.Random) -> Result:
        deps, held = self.deps, self.held
        assert held is not None
        if not self._verified(held):
            self.held = None
            deps.pool.release(held, deps.clock.now(), Release.FAILED, proxy_fault=True)
            return Result("proxy_failed_check", retry_in_s=1.0, metrics={"deferred": 1}, waiting_for="no_proxy")
        claim = self.claims.claim(self.owner, self.started + deps.settings.hold_s(self.unit.timeout_s), self.started)
        if isinstance(claim, ClaimRefused):
            return self.claims.refused(claim, self.started, "duplicate_delivery")
        if claim.last_proxy == held.proxy_id and claim.attempts > 0:
            self._prefer_other_proxy()
        if self.msg.batch_id not in cache.started and self.batch.status is BatchStatus.PENDING:
            deps.batches.begin_processing(self.msg.batch_id, self.started)
        cache.started.add(self.msg.batch_id)
        self.unit = self.claims.bind(self.owner, self.unit)
        return self._fetch_and_record(claim, rng)

    def _fetch_and_record(self, claim: Claim, rng: random.Random) -> Result:
        held, self.held = self.held, None  # from here the shared path releases it, whatever happens
        assert held is not None
        run = leasing.run_leased(self.deps, held, self.processor, self.unit)
        o = run.outcome
        metrics = {
            "lease_wait_ms": (run.lease.start_at - self.started) * 1000,
            "fetch_ms": (run.done_at - self.started) * 1000,
        }
        if run.processed.follow_up:
            self.deps.queue.send_work(list(run.processed.follow_up))
        if o.kind is OutcomeKind.RATE_LIMITED:
            self.claims.requeue(self.owner, o, run.lease.proxy_id, attempt_spent=False)  # a deferral, not an attempt
            # At once: the next delivery leases another proxy whose slot is open, or takes its place in line.
            limited = {**metrics, "rate_limited": 1}
            return Result(
                "rate_limited", retry_in_s=0.0, metrics=limited, host=self.unit.host, waiting_for="rate_limited"
            )
        if o.kind is OutcomeKind.TRANSIENT and claim.attempts + 1 < self.msg.max_attempts:
            self.claims.requeue(self.owner, o, run.lease.proxy_id, attempt_spent=True)
            backoff = min(60.0, full_jitter_backoff(claim.attempts, base=1.0, rng=rng))
            return Result("retry", retry_in_s=backoff, metrics={**metrics, "retried": 1})
        return self.claims.finish(self.owner, o, metrics)

    def _verified(self, held: Lease) -> bool:
        """Verify before use, only when the proxy's last success is stale (or it never had one)."""
        last = held.last_success_at
        fresh = last is not None and self.started - last < self.deps.settings.verify_after_s
        return fresh or self.deps.fetcher.probe(held.url)

    def _prefer_other_proxy(self) -> None:
        """A retry goes through another proxy when one is free; otherwise the same one is better than waiting."""
        held = self.held
        assert held is not None
        try:
            hold = self.deps.settings.hold_s(self.unit.timeout_s)
            other = leasing.lease(self.deps, self.unit.host, self.owner + ":alt", avoid=held.proxy_id, hold_s=hold)
        except NoProxyAvailable:
            return
        if other.proxy_id == held.proxy_id:
            leasing.hand_back(self.deps, other)
            return
        self.held = other
        leasing.hand_back(self.deps, held)


def handle_record(
    deps: Deps,
    msg: WorkMessage,
    receipt_handle: str,
    receive_count: int,
    cache: InvocationCache,
    remaining_ms: int | None = None,
    first_received_at: float | None = None,
) -> Result:
    """Processes one SQS record; a message that must wait goes back with a precise visibility timeout.

    Rate-limit waits must never push a healthy item into the DLQ: close to maxReceiveCount the message is
    re-sent as a fresh message (DelaySeconds, deferral counter) and the old one is deleted. A record the
    invocation has no time left to fetch safely goes back at once, untouched. An item that has waited longer
    than its `max_wait_s` for a proxy or a site that keeps refusing ends failed (`no_proxy`, `rate_limited`):
    every batch ends. Its wait counts from the message's first receipt (carried over a re-send)."""
    if remaining_ms is not None and remaining_ms < (msg.timeout_s + TIME_GUARD_S) * 1000:
        result = Result("invocation_time_low", retry_in_s=0.0)
    else:
        result = process(deps, msg, cache)
    if result.retry_in_s is None:
        return result
    since = msg.waiting_since or first_received_at
    if result.waiting_for and since is not None:
        left = since + msg.max_wait_s - deps.clock.now()
        if left <= 0:
            return _give_up(deps, msg, result, cache)
        result.retry_in_s = min(result.retry_in_s, max(1.0, left))  # a last look when its time is up
    fresh = _fresh_message(deps, msg, result, receive_count, since)
    if fresh is not None:
        deps.queue.send_work([fresh], delay_s=int(min(900, result.retry_in_s)))
        return result
    # whole seconds only (SQS); a slot opening within the second is caught by the lease's short wait
    deps.queue.change_visibility(receipt_handle, int(result.retry_in_s))
    raise Deferred(result.retry_in_s, result.outcome, result.metrics, result.host)


def _fresh_message(
    deps: Deps, msg: WorkMessage, result: Result, receive_count: int, since: float | None
) -> WorkMessage | None:
    """The message to send instead of putting this one back: near maxReceiveCount (so deferrals never reach the
    DLQ), or when its place in the host's line lies beyond SQS's 15 minutes (it keeps that place: coming back
    early and queuing up a second time would make the line grow past real demand)."""
    beyond = result.ticket is not None and result.ticket - deps.clock.now() > MAX_DEFER_S
    if not beyond and receive_count < deps.settings.work_max_receive_count - 2:
        return None
    update = {"deferrals": msg.deferrals + 1, "waiting_since": since, "ticket": result.ticket if beyond else None}
    return msg.model_copy(update=update)


def _give_up(deps: Deps, msg: WorkMessage, waited: Result, cache: InvocationCache) -> Result:
    """The unit waited past max_wait_s: it ends failed with what it waited for (claimed first, so a live
    delivery elsewhere or a unit that ended meanwhile is left alone)."""
    batch = cache.batch(deps, msg.batch_id)
    if batch is None:
        return Result("dropped_unknown_batch")
    owner = f"{uuid.uuid4().hex[:12]}:{msg.batch_id}:{msg.seq}:give-up"
    code = waited.waiting_for or "no_proxy"
    what = "a free proxy" if code == "no_proxy" else "the site to stop refusing (HTTP 429 / Retry-After)"
    claims = claims_for(deps, msg, batch, deps.kinds.get(msg.kind))
    return claims.give_up(owner, ItemError(code, f"waited over {msg.max_wait_s:.0f} s for {what}"))
