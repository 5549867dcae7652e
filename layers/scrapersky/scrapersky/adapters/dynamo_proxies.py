"""ProxyPool on DynamoDB: one record per proxy (never one hot pool item), leased by conditional writes.

A lease sets lease_owner/lease_until, bumps a fencing counter and books the proxy's next pacing slot for
the host, all in one conditional UpdateItem; release is conditional on owner and fence, so a crashed
worker's lease simply lapses and a late release cannot undo a newer lease. Since only the lease holder
writes a proxy's pace, the learnt rates need no further locking.

What the pace is and how a release changes it is domain/pacing's; this adapter reads and writes it (the
row layout is in proxy_rows; the `host#` rows, read here for the hosts' configuration, in dynamo_hosts).
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters.ddb import de_item, is_condition_failure, raise_if_retryable, ser, ser_item
from scrapersky.adapters.dynamo_hosts import DynamoHostBook, host_records
from scrapersky.adapters.expressions import Update
from scrapersky.adapters.proxy_rows import (
    HostKeys,
    booked_hosts,
    delete,
    is_proxy,
    learnt_fields,
    learnt_pace,
    new_proxy_row,
    next_at,
    proxy_record,
    scan,
    update,
)
from scrapersky.domain.pacing import HostPace, Learnt, PacingPolicy
from scrapersky.errors import LeaseConflict, NoProxyAvailable
from scrapersky.models import ProxyState
from scrapersky.ports import Lease, ProxyPool, Release
from scrapersky.records import HostRecord, ProxyRecord

SNAPSHOT_TTL_S = 2.0
MAX_CLAIM_TRIES = 4
BEST_FEW = 3
FRESH_S = 0.5
BUSY_RETRY_S = 1.0
MIN_SNAPSHOT_AGE_S = 0.2  # a snapshot this fresh is trusted about leases
WAIT_WORTH_A_LOOK_S = 0.1  # a wait for a slot this long is worth one key read of a proxy likely free
LIKELY_RELEASED_S = 0.5  # a lease that started this long ago has most likely been released
NEVER = -1e18
COUNTERS = {Release.SUCCESS: "succeeded", Release.FAILED: "failed", Release.RATE_LIMITED: "rate_limited"}


def _available(p: dict[str, Any]) -> bool:
    return p.get("state") == ProxyState.AVAILABLE


def _leased_until(p: dict[str, Any]) -> float:
    return float(p.get("lease_until", 0))


def _release_update(lease: Lease, now: float, outcome: Release, learnt: Learnt | None, proxy_fault: bool) -> Update:
    """Hands the lease back (only if it is still ours: owner and fence) with what the fetch did and taught."""
    u = Update().set(lease_until=0).remove("lease_owner")
    u.when("#lease_owner = :me AND #fence = :f", me=lease.owner, f=lease.fence)
    if outcome in COUNTERS:
        u.add(**{COUNTERS[outcome]: 1}).set(last_used_at=now)
    if outcome == Release.SUCCESS:
        u.set(consecutive_errors=0, last_success_at=now)
    if learnt is not None:  # a failure teaches only when to ask again; a refusal no answer time
        u.set(**learnt_fields(lease.host, learnt, pace=outcome != Release.FAILED, answer=outcome == Release.SUCCESS))
    if proxy_fault:
        u.add(consecutive_errors=1)
    return u


class DynamoProxyPool(ProxyPool):
    """Each container leases from its own snapshot of the pool (rescanned every SNAPSHOT_TTL_S) and keeps it
    honest with what its own writes and refusals return. `hosts` is the host book sharing the table: the pool
    shares learnt ceilings through it and drops its snapshot when a host's configuration changes."""

    def __init__(
        self,
        table_name: str,
        client: Any,
        quarantine_after: int = 3,
        rng: random.Random | None = None,
        no_proxy_retry_s: float = 30.0,
        pacing: PacingPolicy | None = None,
        hosts: DynamoHostBook | None = None,
    ) -> None:
        self.table = table_name
        self.ddb = client
        self.quarantine_after = quarantine_after
        self.no_proxy_retry_s = no_proxy_retry_s
        self.pacing = pacing or PacingPolicy()
        self.rng = rng or random.Random()
        self.hosts = hosts or DynamoHostBook(table_name, client)
        self.hosts.on_change.append(self.invalidate)
        self._snapshot: list[dict[str, Any]] = []
        self._snapshot_at = NEVER
        self._hosts: dict[str, HostRecord] = {}
        self._seen: dict[str, float] = {}  # when this container last saw a proxy's true state
        self.stats = {"leases": 0, "conflicts": 0}

    def invalidate(self) -> None:
        """The next lease rescans the pool."""
        self._snapshot_at = NEVER

    # ---- records -----------------------------------------------------------------------------------------
    def add(self, proxy_id: str, url: str, endpoint: str, labels: dict[str, str], now: float) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item=ser_item(new_proxy_row(proxy_id, url, endpoint, labels, now)),
            ConditionExpression="attribute_not_exists(proxy_id)",
        )
        self.invalidate()

    def delete(self, proxy_id: str) -> bool:
        return delete(self.ddb, self.table, proxy_id)

    def list_all(self, now: float) -> list[ProxyRecord]:
        # A scan of its own: the lease snapshot is left as it is, and the cooldowns are judged against the
        # hosts' configuration as it is now.
        rows = scan(self.ddb, self.table)
        hosts = host_records(rows)
        return [self._record(p, hosts, now) for p in rows if is_proxy(p)]

    def _record(self, p: dict[str, Any], hosts: dict[str, HostRecord], now: float) -> ProxyRecord:
        def cooling(host: str, until: float) -> bool:
            return self.pacing.is_cooldown(until, self.pacing.pace_of(learnt_pace(p, host), hosts.get(host)), now)

        return proxy_record(p, {h: until for h, until in booked_hosts(p).items() if cooling(h, until)})

    def _proxies(self, now: float, refresh: bool = False) -> list[dict[str, Any]]:
        """This container's snapshot of the proxies (and of the hosts' configuration, from the same scan)."""
        if refresh or now - self._snapshot_at > SNAPSHOT_TTL_S:
            rows = scan(self.ddb, self.table)
            self._snapshot = [r for r in rows if is_proxy(r)]
            self._hosts = host_records(rows)
            self._snapshot_at = now
        return self._snapshot

    def _pace_of(self, p: dict[str, Any], host: str) -> HostPace:
        return self.pacing.pace_of(learnt_pace(p, host), self._hosts.get(host))

    def _open_at(self, p: dict[str, Any], host: str, now: float) -> float:
        return self.pacing.opens_at(next_at(p, host), now)

    def capacity(self, host: str, now: float) -> float:
        return self.pacing.capacity(self._pace_of(p, host) for p in self._proxies(now) if _available(p))

    # ---- leasing -----------------------------------------------------------------------------------------
    def lease(
        self, host: str, owner: str, now: float, lease_s: float, avoid: str | None = None, max_wait_s: float = 0.0
    ) -> Lease:
        for refresh in (False, True):
            ready = self._ready(host, now, max_wait_s, refresh)
            if not ready:
                continue
            if not refresh:
                ready = self._look_again(ready, host, now, lease_s, max_wait_s)
            for p in self._picks(ready, host, now, avoid):
                try:
                    return self._claim(p, host, owner, now, lease_s)
                except LeaseConflict:
                    self.stats["conflicts"] += 1
        raise self._none_free(host, now)

    def _ready(self, host: str, now: float, max_wait_s: float, refresh: bool) -> list[dict[str, Any]]:
        """Free proxies whose slot for the host opens within max_wait_s, as this container's snapshot sees them."""
        return [
            p
            for p in self._proxies(now, refresh)
            if _available(p) and _leased_until(p) < now and self._open_at(p, host, now) <= now + max_wait_s
        ]

    def _look_again(
        self, ready: list[dict[str, Any]], host: str, now: float, lease_s: float, max_wait_s: float
    ) -> list[dict[str, Any]]:
        """One key read tells whether the soonest of the proxies likely released by now is free."""
        likely = self._likely_released(ready, host, now, lease_s)
        if not likely:
            return ready
        self._reread(min(likely, key=lambda p: self._open_at(p, host, now)), now)
        return self._ready(host, now, max_wait_s, False)

    def _picks(self, ready: list[dict[str, Any]], host: str, now: float, avoid: str | None) -> list[dict[str, Any]]:
        """The proxies to try claiming, in order.

        A proxy this container itself just saw free (it released it, or a refusal told its state) is almost
        surely still free: try it first. Then random among the few that open soonest, so workers sharing a
        stale snapshot spread out instead of all fighting for the first."""

        def stale(p: dict[str, Any]) -> bool:
            return now - self._seen.get(str(p.get("proxy_id")), NEVER) > FRESH_S

        self.rng.shuffle(ready)
        ready.sort(key=lambda p: (p.get("proxy_id") == avoid, self._open_at(p, host, now), stale(p)))
        soonest = self._open_at(ready[0], host, now)
        first_avoided = ready[0].get("proxy_id") == avoid
        best = [
            p
            for p in ready[:BEST_FEW]
            if self._open_at(p, host, now) <= soonest + self.pacing.same_slot_s
            and (p.get("proxy_id") == avoid) == first_avoided
        ]
        if stale(best[0]):
            self.rng.shuffle(best)
        return (best + ready[len(best) :])[:MAX_CLAIM_TRIES]

    def _none_free(self, host: str, now: float) -> NoProxyAvailable:
        usable = [p for p in self._snapshot if _available(p)]
        if not usable:
            return NoProxyAvailable(f"no usable proxy for {host}", retry_at=now + self.no_proxy_retry_s)
        retry_at = min(
            max(self._open_at(p, host, now), now + BUSY_RETRY_S if _leased_until(p) >= now else now) for p in usable
        )
        return NoProxyAvailable(f"no proxy can take {host} now", retry_at=max(retry_at, now + 0.2))

    def _reread(self, p: dict[str, Any], now: float) -> None:
        got = self.ddb.get_item(TableName=self.table, Key={"proxy_id": ser(p["proxy_id"])}, ConsistentRead=True)
        rec = de_item(got.get("Item"))
        if rec:
            self._remember(rec, now)

    def _likely_released(
        self, ready: list[dict[str, Any]], host: str, now: float, lease_s: float
    ) -> list[dict[str, Any]]:
        """Before waiting for a slot, look again at the proxies the snapshot shows leased long enough ago that
        they are most likely free by now and open sooner: otherwise a worker keeps waiting for the proxy it
        just released while others sit idle (at the end of a batch, when fewer items than proxies are left)."""
        if now - self._snapshot_at < MIN_SNAPSHOT_AGE_S:
            return []
        soonest = min(self._open_at(p, host, now) for p in ready)
        if soonest <= now + WAIT_WORTH_A_LOOK_S:
            return []
        return [
            p
            for p in self._snapshot
            if _available(p)
            and _leased_until(p) >= now  # shown leased...
            and now > _leased_until(p) - lease_s + LIKELY_RELEASED_S  # ...since long enough
            and self._open_at(p, host, now) < soonest
        ]

    def _claim(self, p: dict[str, Any], host: str, owner: str, now: float, lease_s: float) -> Lease:
        start = self._open_at(p, host, now)
        u = Update().set(lease_owner=owner, lease_until=start + lease_s).add(fence=1)
        next_slot = HostKeys.of(host).next
        u.set(**{next_slot: self.pacing.slot_after(start, self._pace_of(p, host))})
        n = u.name(next_slot)
        u.when(
            f"attribute_exists(proxy_id) AND #state = :avail AND #lease_until < :now"
            f" AND (attribute_not_exists({n}) OR {n} <= :start)",
            avail=ProxyState.AVAILABLE.value,
            now=now,
            start=start,
        )
        try:
            got = self.ddb.update_item(
                TableName=self.table,
                Key={"proxy_id": ser(p["proxy_id"])},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **u.kwargs(),
            )
        except ClientError as e:
            if is_condition_failure(e):
                # the refusal carries the proxy's current state: the next pick in this container is better informed
                current = de_item(e.response.get("Item"))
                if current:
                    self._remember(current, now)
                raise LeaseConflict(p["proxy_id"]) from e
            raise_if_retryable(e)
            raise
        rec = de_item(got["Attributes"]) or {}
        self._remember(rec, now)
        self.stats["leases"] += 1
        return Lease(
            proxy_id=rec["proxy_id"],
            url=rec["url"],
            fence=int(rec["fence"]),
            owner=owner,
            host=host,
            start_at=start,
            pace=self._pace_of(rec, host),
            last_success_at=rec.get("last_success_at"),
        )

    def _remember(self, rec: dict[str, Any], now: float) -> None:
        """Keep this container's snapshot honest about what it changed itself."""
        self._seen[str(rec.get("proxy_id"))] = now
        for p in self._snapshot:
            if p.get("proxy_id") == rec.get("proxy_id"):
                p.clear()
                p.update(rec)

    # ---- release -----------------------------------------------------------------------------------------
    def release(
        self, lease: Lease, now: float, outcome: Release, retry_after_s: float | None = None, proxy_fault: bool = False
    ) -> None:
        learnt = self._learn(lease, now, outcome, retry_after_s)
        u = _release_update(lease, now, outcome, learnt, proxy_fault)
        got = update(self.ddb, self.table, lease.proxy_id, u, ReturnValues="ALL_NEW")
        if got is None:
            return  # our lease lapsed and someone else holds the proxy: leave their lease alone
        rec = de_item(got["Attributes"]) or {}
        self._remember(rec, now)
        if learnt is not None and learnt.shared_ceiling is not None:
            self._share_ceiling(lease.host, learnt.shared_ceiling)
        if proxy_fault and int(rec.get("consecutive_errors", 0)) >= self.quarantine_after:
            self._set_state(lease.proxy_id, ProxyState.QUARANTINED, now, quarantined_at=now, checks=0)

    def _share_ceiling(self, host: str, ceiling: float) -> None:
        self.hosts.share_ceiling(host, ceiling)
        self._hosts[host] = replace(self._hosts.get(host) or HostRecord(host), ceiling=ceiling)

    def _learn(self, lease: Lease, now: float, outcome: Release, retry_after_s: float | None) -> Learnt | None:
        """What the release teaches of the host (None when no request went out)."""
        pace = lease.pace or HostPace(self.pacing.default_rate)
        if outcome == Release.SUCCESS:
            return self.pacing.after_answer(pace, self._hosts.get(lease.host), lease.start_at, now)
        if outcome == Release.FAILED:
            return self.pacing.after_failure(pace, lease.start_at, now)
        if outcome == Release.RATE_LIMITED:
            return self.pacing.after_refusal(pace, now, retry_after_s)
        return None

    # ---- health --------------------------------------------------------------------------------------------
    def restore(self, proxy_id: str, now: float) -> None:
        self._set_state(proxy_id, ProxyState.AVAILABLE, now, consecutive_errors=0, checks=0)

    def keep_quarantined(self, proxy_id: str, now: float, checks: int, next_check_at: float) -> None:
        self._set_state(proxy_id, ProxyState.QUARANTINED, now, checks=checks, next_check_at=next_check_at)

    def _set_state(self, proxy_id: str, state: ProxyState, now: float, **fields: Any) -> None:
        u = Update().set(state=state.value, state_changed_at=now, **fields).when("attribute_exists(proxy_id)")
        update(self.ddb, self.table, proxy_id, u)
        self.invalidate()
