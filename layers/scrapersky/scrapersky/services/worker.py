"""The worker use case: one work message -> lease a proxy, claim the item, fetch, record, release."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scrapersky.domain.outcomes import OutcomeKind, classify, full_jitter_backoff
from scrapersky.errors import NoProxyAvailable
from scrapersky.models import WorkMessage
from scrapersky.ports import ClaimRefused, Lease
from scrapersky.services import items
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done
from scrapersky.services.slots import wait_for_slot

MAX_DEFER_S = 900.0


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
class Result:
    """What became of one message: `done` (delete it) or `retry_in_s` (put it back that much later)."""

    outcome: str
    retry_in_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    host: str | None = None


@dataclass
class InvocationCache:
    """Batch records read during one invocation (cancel is seen by the next invocation at the latest)."""

    metas: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)


def process(deps: Deps, msg: WorkMessage, cache: InvocationCache, rng: random.Random | None = None) -> Result:
    rng = rng or random.Random()
    if msg.batch_id not in cache.metas:
        cache.metas[msg.batch_id] = deps.store.get_meta(msg.batch_id)
    meta = cache.metas[msg.batch_id]
    if meta is None:
        return Result("dropped_unknown_batch")
    now = deps.clock.now()
    owner = f"{uuid.uuid4().hex[:12]}:{msg.batch_id}:{msg.seq}"
    if meta["status"] == "cancelled":
        return _cancel(deps, msg, owner, now)
    host = urlsplit(msg.item).hostname or ""
    settings = deps.settings
    try:
        lease = deps.pool.lease(host, owner, now, settings.lease_seconds, max_wait_s=settings.pacing_max_wait_s)
    except NoProxyAvailable as e:
        # Come back exactly when a proxy can take the host, in line behind the items already waiting for it.
        wake = deps.pool.take_ticket(host, now, e.retry_at)
        return Result("deferred_no_proxy", retry_in_s=min(MAX_DEFER_S, max(0.0, wake - now)), metrics={"deferred": 1})
    try:
        return _with_lease(deps, msg, meta, cache, lease, host, owner, now, rng)
    except Exception:
        # never keep a proxy on an error: a release that already happened is fenced off and changes nothing
        deps.pool.release(lease, host, deps.clock.now(), "unused", None, False)
        raise


def _cancel(deps: Deps, msg: WorkMessage, owner: str, now: float) -> Result:
    """An item of a cancelled batch ends cancelled, also one whose worker crashed (its claim lapsed)."""
    if items.cancel(deps, msg.batch_id, msg.seq, msg.shard):
        return Result("cancelled")
    claim = deps.store.claim_item(msg.batch_id, msg.seq, msg.shard, owner, now + deps.settings.lease_seconds, now)
    if isinstance(claim, ClaimRefused):
        if claim.terminal:
            return Result("already_finished")
        return Result("busy_elsewhere", retry_in_s=max(1.0, (claim.busy_until or now) - now + 1.0))
    items.cancel(deps, msg.batch_id, msg.seq, msg.shard, claimed_by=owner)
    return Result("cancelled")


def _with_lease(
    deps: Deps,
    msg: WorkMessage,
    meta: dict[str, Any],
    cache: InvocationCache,
    lease: Lease,
    host: str,
    owner: str,
    now: float,
    rng: random.Random,
) -> Result:
    settings = deps.settings
    if not _verified(deps, lease, now):
        deps.pool.release(lease, host, deps.clock.now(), "failed", None, True)
        return Result("proxy_failed_check", retry_in_s=1.0, metrics={"deferred": 1})
    claim = deps.store.claim_item(msg.batch_id, msg.seq, msg.shard, owner, now + settings.lease_seconds, now)
    if isinstance(claim, ClaimRefused):
        deps.pool.release(lease, host, deps.clock.now(), "unused", None, False)
        if claim.terminal:
            # a delivery that crashed after the item's final write may not have closed the batch: do it now
            finish_if_done(deps, msg.batch_id)
            return Result("duplicate_delivery")
        return Result("busy_elsewhere", retry_in_s=max(1.0, (claim.busy_until or now) - now + 1.0))
    if claim.last_proxy == lease.proxy_id and claim.attempts > 0:
        lease = _prefer_other_proxy(deps, lease, host, owner)
    if msg.batch_id not in cache.started and meta["status"] == "pending":
        deps.store.update_status(msg.batch_id, "processing", ("pending",), now, {"started_at": now})
    cache.started.add(msg.batch_id)
    lease = wait_for_slot(deps, lease)
    lease_wait_ms = (lease.start_at - now) * 1000

    fetched = deps.fetcher.fetch(msg.item, lease.url, msg.timeout_s, msg.max_bytes)
    done_at = deps.clock.now()
    outcome = classify(fetched, done_at)
    metrics: dict[str, float] = {"lease_wait_ms": lease_wait_ms, "fetch_ms": (done_at - now) * 1000}

    def requeue(attempt_spent: bool) -> None:
        items.back_to_pending(
            deps, msg.batch_id, msg.seq, msg.shard, owner, attempt_spent=attempt_spent, proxy_id=lease.proxy_id,
            code=outcome.code, message=outcome.message,
        )  # fmt: skip

    if outcome.kind is OutcomeKind.RATE_LIMITED:
        deps.pool.release(lease, host, done_at, "rate_limited", outcome.retry_after_s, False)
        requeue(attempt_spent=False)  # a deferral, not an attempt
        metrics["rate_limited"] = 1
        # At once: the next delivery leases another proxy whose slot is open, or takes its place in line.
        return Result("rate_limited", retry_in_s=0.0, metrics=metrics, host=host)

    deps.pool.release(
        lease, host, done_at, "success" if outcome.kind is OutcomeKind.SUCCESS else "failed", None, outcome.proxy_fault
    )
    if outcome.kind is OutcomeKind.TRANSIENT and claim.attempts + 1 < msg.max_attempts:
        requeue(attempt_spent=True)
        metrics["retried"] = 1
        return Result(
            "retry", retry_in_s=min(60.0, full_jitter_backoff(claim.attempts, base=1.0, rng=rng)), metrics=metrics
        )
    succeeded = outcome.kind is OutcomeKind.SUCCESS
    won = items.finish(
        deps,
        msg.batch_id,
        msg.seq,
        msg.shard,
        owner,
        "in_progress",
        succeeded=succeeded,
        item=msg.item,
        code=outcome.code,
        message=outcome.message,
        http_status=outcome.http_status,
        result=outcome.result,
        shard_last=_shard_share(meta, msg.shard) - 1,
    )
    if won:
        if won.shard_done:  # only the last item of a counter shard looks at the whole batch
            finish_if_done(deps, msg.batch_id)
        metrics["succeeded" if succeeded else "failed"] = 1
    return Result("succeeded" if succeeded else f"failed:{outcome.code}", metrics=metrics)


def _shard_share(meta: dict[str, Any], shard: int) -> int:
    """How many of the batch's items count on this shard (seq % shards == shard)."""
    return len(range(shard, int(meta["total_items"]), int(meta["shards"])))


def _verified(deps: Deps, lease: Lease, now: float) -> bool:
    """Verify before use, only when the proxy's last success is stale (or it never had one)."""
    fresh = lease.last_success_at is not None and now - float(lease.last_success_at) < deps.settings.verify_after_s
    return fresh or deps.fetcher.probe(lease.url)


def _prefer_other_proxy(deps: Deps, lease: Lease, host: str, owner: str) -> Lease:
    """A retry goes through another proxy when one is free; otherwise the same one is better than waiting."""
    now = deps.clock.now()
    try:
        other = deps.pool.lease(host, owner + ":alt", now, deps.settings.lease_seconds, avoid=lease.proxy_id)
    except NoProxyAvailable:
        return lease
    if other.proxy_id == lease.proxy_id:
        deps.pool.release(other, host, now, "unused", None, False)
        return lease
    deps.pool.release(lease, host, now, "unused", None, False)
    return other


def handle_record(
    deps: Deps,
    msg: WorkMessage,
    receipt_handle: str,
    receive_count: int,
    cache: InvocationCache,
    remaining_ms: int | None = None,
) -> Result:
    """Processes one SQS record; a message that must wait goes back with a precise visibility timeout.

    Rate-limit waits must never push a healthy item into the DLQ: close to maxReceiveCount the message is
    re-sent as a fresh message (DelaySeconds, deferral counter) and the old one is deleted. A record the
    invocation has no time left to fetch safely goes back at once, untouched."""
    if remaining_ms is not None and remaining_ms < (msg.timeout_s + 10) * 1000:
        result = Result("invocation_time_low", retry_in_s=0.0)
    else:
        result = process(deps, msg, cache)
    if result.retry_in_s is None:
        return result
    if receive_count >= deps.settings.work_max_receive_count - 2:
        fresh = msg.model_copy(update={"deferrals": msg.deferrals + 1})
        deps.queue.send_work([fresh], delay_s=int(min(900, result.retry_in_s)))
        return result
    # whole seconds only (SQS); a slot opening within the second is caught by the lease's short wait
    deps.queue.change_visibility(receipt_handle, int(result.retry_in_s))
    raise Deferred(result.retry_in_s, result.outcome, result.metrics, result.host)
