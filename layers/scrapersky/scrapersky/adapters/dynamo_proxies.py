"""ProxyPool on DynamoDB: one small record per proxy (never one hot pool item), leased by conditional writes,
and one pacing row per (proxy, host), read only for the host being leased (proxy_paces).

A lease claims the proxy row (free and available: lease owner, lease end, fence + 1) and, under that lease,
books the host's next slot on the proxy's pacing row (why two conditional writes and not a transaction, and
what each costs: proxy_paces). Release is conditional on owner and fence, so a crashed worker's lease simply
lapses and a late release cannot undo a newer lease; what the fetch taught goes to the pacing row first,
while the lease is held.

Each container leases from its own snapshot: the proxy rows, read by key from the list of proxies every
SNAPSHOT_TTL_S, and per host it leases for, that host's row and the proxies' pacing rows for it (one
BatchGetItem) for as long as the snapshot. Nothing on the lease path reads or writes another host's state, so
a pool that has seen a million hosts costs the same per lease as one that has seen ten. What the pace is and
how a release changes it is domain/pacing's; the row layout is proxy_rows'.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from scrapersky.adapters.ddb import de_item, ser_item
from scrapersky.adapters.dynamo_hosts import DynamoHostBook
from scrapersky.adapters.expressions import Update
from scrapersky.adapters.host_slots import book_for_lease
from scrapersky.adapters.pool_snapshot import PoolSnapshot, available, leased_until, pid
from scrapersky.adapters.proxy_paces import Booking, proxy_view
from scrapersky.adapters.proxy_rows import (
    delete,
    host_records,
    is_proxy,
    list_proxy,
    new_proxy_row,
    pace_rows_by_proxy,
    scan,
    strip_legacy,
    unlist_proxy,
    update,
    update_or_current,
)
from scrapersky.domain.pacing import HostPace, Learnt, PacingPolicy
from scrapersky.errors import LeaseConflict, NoProxyAvailable
from scrapersky.models import ProxyState
from scrapersky.ports import Lease, ProxyPool, Release
from scrapersky.records import HostRecord, ProxyRecord

MAX_CLAIM_TRIES = 4
MAX_BOOK_TRIES = 2  # a booking refused for a stale view moves once to the true slot, if it opens within the wait
BEST_FEW = 3
FRESH_S = 0.5
BUSY_RETRY_S = 1.0
MIN_SNAPSHOT_AGE_S = 0.2  # a snapshot this fresh is trusted about leases
WAIT_WORTH_A_LOOK_S = 0.1  # a wait for a slot this long is worth one key read of a proxy likely free
LIKELY_RELEASED_S = 0.5  # a lease that started this long ago has most likely been released
COUNTERS = {Release.SUCCESS: "succeeded", Release.FAILED: "failed", Release.RATE_LIMITED: "rate_limited"}


def _hand_back(owner: str, fence: int) -> Update:
    """Hands a lease back, only if it is still ours (owner and fence)."""
    u = Update().set(lease_until=0).remove("lease_owner")
    return u.when("#lease_owner = :me AND #fence = :f", me=owner, f=fence)


def _release_update(lease: Lease, now: float, outcome: Release, proxy_fault: bool) -> Update:
    """Hands the lease back with what the fetch did to the proxy's counters."""
    u = _hand_back(lease.owner, lease.fence)
    if outcome in COUNTERS:
        u.add(**{COUNTERS[outcome]: 1}).set(last_used_at=now)
    if outcome == Release.SUCCESS:
        u.set(consecutive_errors=0, last_success_at=now)
    if proxy_fault:
        u.add(consecutive_errors=1)
    return u


class DynamoProxyPool(ProxyPool):
    """Each container leases from its own snapshot of the pool (pool_snapshot: read by key every 2 s) and keeps
    it honest with what its own writes and refusals return. `hosts` is the host book sharing the table: the pool
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
        self.snapshot = PoolSnapshot(table_name, client, self.pacing)
        self.paces = self.snapshot.paces
        self.stats = {"leases": 0, "conflicts": 0}

    def invalidate(self) -> None:
        """The next lease reads the pool again."""
        self.snapshot.invalidate()

    # ---- records -----------------------------------------------------------------------------------------
    def add(self, proxy_id: str, url: str, endpoint: str, labels: dict[str, str], now: float) -> None:
        list_proxy(self.ddb, self.table, proxy_id)
        self.ddb.put_item(
            TableName=self.table,
            Item=ser_item(new_proxy_row(proxy_id, url, endpoint, labels, now)),
            ConditionExpression="attribute_not_exists(proxy_id)",
        )
        self.invalidate()

    def delete(self, proxy_id: str) -> bool:
        # Its pacing rows are left to expire (TTL): finding them would take a scan.
        gone = delete(self.ddb, self.table, proxy_id)
        unlist_proxy(self.ddb, self.table, proxy_id)
        self.invalidate()
        return gone

    def list_all(self, now: float) -> list[ProxyRecord]:
        # An admin view (and the maintenance's): a scan of its own, of the pacing rows in use (they expire some
        # hours after their last use); the lease snapshot is left as it is, and the cooldowns are judged
        # against the hosts' configuration as it is now. Proxy rows from before the pacing rows lose their
        # per-host attributes here, once.
        rows = scan(self.ddb, self.table)
        hosts = host_records(rows)
        paces = pace_rows_by_proxy(rows)
        proxies = [p for p in rows if is_proxy(p)]
        for p in proxies:
            strip_legacy(self.ddb, self.table, p)
        return [proxy_view(p, paces.get(pid(p), {}), hosts, self.pacing, now) for p in proxies]

    def capacity(self, host: str, now: float) -> float:
        paces = self.pacing.capacity(
            self.snapshot.pace_of(p, host, now) for p in self.snapshot.proxies(now) if available(p)
        )
        limit = self.snapshot.limit(host, now)  # the whole pool sends no faster than the host's total limit
        return paces if limit is None else min(paces, limit.rate)

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
                    return self._claim(p, host, owner, now, lease_s, max_wait_s)
                except LeaseConflict:
                    self.stats["conflicts"] += 1
        raise self._none_free(host, now)

    def _ready(self, host: str, now: float, max_wait_s: float, refresh: bool) -> list[dict[str, Any]]:
        """Free proxies whose slot for the host opens within max_wait_s, as this container's snapshot sees them."""
        return [
            p
            for p in self.snapshot.proxies(now, refresh, host)
            if available(p) and leased_until(p) < now and self.snapshot.open_at(p, host, now) <= now + max_wait_s
        ]

    def _look_again(
        self, ready: list[dict[str, Any]], host: str, now: float, lease_s: float, max_wait_s: float
    ) -> list[dict[str, Any]]:
        """One key read tells whether the soonest of the proxies likely released by now is free."""
        likely = self._likely_released(ready, host, now, lease_s)
        if not likely:
            return ready
        self.snapshot.reread(min(likely, key=lambda p: self.snapshot.open_at(p, host, now)), now)
        return self._ready(host, now, max_wait_s, False)

    def _picks(self, ready: list[dict[str, Any]], host: str, now: float, avoid: str | None) -> list[dict[str, Any]]:
        """The proxies to try claiming, in order.

        A proxy this container itself just saw free (it released it, or a refusal told its state) is almost
        surely still free: try it first. Then random among the few that open soonest, so workers sharing a
        stale snapshot spread out instead of all fighting for the first."""

        def stale(p: dict[str, Any]) -> bool:
            return self.snapshot.is_stale(p, now, FRESH_S)

        self.rng.shuffle(ready)
        ready.sort(key=lambda p: (p.get("proxy_id") == avoid, self.snapshot.open_at(p, host, now), stale(p)))
        soonest = self.snapshot.open_at(ready[0], host, now)
        first_avoided = ready[0].get("proxy_id") == avoid
        best = [
            p
            for p in ready[:BEST_FEW]
            if self.snapshot.open_at(p, host, now) <= soonest + self.pacing.same_slot_s
            and (p.get("proxy_id") == avoid) == first_avoided
        ]
        if stale(best[0]):
            self.rng.shuffle(best)
        return (best + ready[len(best) :])[:MAX_CLAIM_TRIES]

    def _none_free(self, host: str, now: float) -> NoProxyAvailable:
        usable = [p for p in self.snapshot.rows if available(p)]
        if not usable:
            return NoProxyAvailable(f"no usable proxy for {host}", retry_at=now + self.no_proxy_retry_s)
        retry_at = min(
            max(self.snapshot.open_at(p, host, now), now + BUSY_RETRY_S if leased_until(p) >= now else now)
            for p in usable
        )
        return NoProxyAvailable(f"no proxy can take {host} now", retry_at=max(retry_at, now + 0.2))

    def _likely_released(
        self, ready: list[dict[str, Any]], host: str, now: float, lease_s: float
    ) -> list[dict[str, Any]]:
        """Before waiting for a slot, look again at the proxies the snapshot shows leased long enough ago that
        they are most likely free by now and open sooner: otherwise a worker keeps waiting for the proxy it
        just released while others sit idle (at the end of a batch, when fewer items than proxies are left)."""
        if now - self.snapshot.at < MIN_SNAPSHOT_AGE_S:
            return []
        soonest = min(self.snapshot.open_at(p, host, now) for p in ready)
        if soonest <= now + WAIT_WORTH_A_LOOK_S:
            return []
        return [
            p
            for p in self.snapshot.rows
            if available(p)
            and leased_until(p) >= now  # shown leased...
            and now > leased_until(p) - lease_s + LIKELY_RELEASED_S  # ...since long enough
            and self.snapshot.open_at(p, host, now) < soonest
        ]

    def _claim(self, p: dict[str, Any], host: str, owner: str, now: float, lease_s: float, max_wait_s: float) -> Lease:
        start = self.snapshot.open_at(p, host, now)
        rec = self._take(p, owner, now, start + lease_s)
        try:
            start, row = self._book(rec, host, now, start, start + lease_s, max_wait_s)
            start, limit = book_for_lease(self.snapshot, host, now, start, max_wait_s)
        except Exception:
            # a booking that failed (throttled, a 5xx, the host busy) must not keep the proxy: nobody holds it yet
            update(self.ddb, self.table, rec["proxy_id"], _hand_back(owner, int(rec["fence"])))
            raise
        self.stats["leases"] += 1
        return Lease(
            proxy_id=rec["proxy_id"],
            url=rec["url"],
            fence=int(rec["fence"]),
            owner=owner,
            host=host,
            start_at=start,
            pace=self.snapshot.pace_of(rec, host, now, row),
            last_success_at=rec.get("last_success_at"),
            host_gap_s=None if limit is None else limit.gap_s,
        )

    def _take(self, p: dict[str, Any], owner: str, now: float, lease_until: float) -> dict[str, Any]:
        """The claim: the proxy row, if it is available and free, gets this lease and the next fence."""
        u = Update().set(lease_owner=owner, lease_until=lease_until).add(fence=1)
        u.when(
            "attribute_exists(proxy_id) AND #state = :avail AND #lease_until < :now",
            avail=ProxyState.AVAILABLE.value,
            now=now,
        )
        ok, rec = update_or_current(self.ddb, self.table, str(p["proxy_id"]), u)
        if rec:  # a refusal carries the proxy's current state: the next pick in this container is better informed
            self.snapshot.remember(rec, now)
        if not ok:
            raise LeaseConflict(p["proxy_id"])
        return rec

    def _book(
        self, rec: dict[str, Any], host: str, now: float, start: float, lease_until: float, max_wait_s: float
    ) -> tuple[float, dict[str, Any]]:
        """Books the host's slot on the proxy's pacing row, under the lease just taken: (start, the row). A slot
        another request took (this container's view was stale) moves the lease to the true one if it opens
        within the wait; otherwise the proxy goes back and the lease is a conflict."""
        for _ in range(MAX_BOOK_TRIES):
            slot = self.pacing.slot_after(start, self.snapshot.pace_of(rec, host, now))
            ok, row = self.paces.book(Booking(pid(rec), host, int(rec["fence"]), start, slot, lease_until), now)
            self.snapshot.remember_pace(host, pid(rec), row)
            if ok:
                return start, row
            start = self.snapshot.open_at(rec, host, now)
            if start > now + max_wait_s:
                break
        got = update(self.ddb, self.table, pid(rec), _hand_back(str(rec["lease_owner"]), int(rec["fence"])))
        if got is not None:
            self.snapshot.remember({k: v for k, v in rec.items() if k != "lease_owner"} | {"lease_until": 0}, now)
        raise LeaseConflict(pid(rec))

    # ---- release -----------------------------------------------------------------------------------------
    def release(
        self, lease: Lease, now: float, outcome: Release, retry_after_s: float | None = None, proxy_fault: bool = False
    ) -> None:
        learnt = self._learn(lease, now, outcome, retry_after_s)
        if learnt is not None:  # while the lease is still held: a failure teaches only when to ask again
            taught = outcome in (Release.SUCCESS, Release.RATE_LIMITED)
            row = self.paces.learn(lease, learnt, now, pace=taught, answer=outcome == Release.SUCCESS)
            self.snapshot.remember_pace(lease.host, lease.proxy_id, row or {})
        got = update(
            self.ddb,
            self.table,
            lease.proxy_id,
            _release_update(lease, now, outcome, proxy_fault),
            ReturnValues="ALL_NEW",
        )
        if got is None:
            return  # our lease lapsed and someone else holds the proxy: leave their lease alone
        rec = de_item(got["Attributes"]) or {}
        self.snapshot.remember(rec, now)
        if learnt is not None and learnt.shared_ceiling is not None:
            self._share_ceiling(lease.host, learnt.shared_ceiling, now)
        if proxy_fault and int(rec.get("consecutive_errors", 0)) >= self.quarantine_after:
            self._set_state(lease.proxy_id, ProxyState.QUARANTINED, now, quarantined_at=now, checks=0)

    def _share_ceiling(self, host: str, ceiling: float, now: float) -> None:
        self.hosts.share_ceiling(host, ceiling)
        view = self.snapshot.view(host, now)
        view.record = replace(view.record or HostRecord(host), ceiling=ceiling)

    def _learn(self, lease: Lease, now: float, outcome: Release, retry_after_s: float | None) -> Learnt | None:
        """What the release teaches of the host. A lease no request went out on gives its booked slot back: the
        proxy's next request may start when this one would have (otherwise the slot after it stays booked for a
        request that never went, and the proxy idles a whole interval)."""
        pace = lease.pace or HostPace(self.pacing.default_rate)
        if outcome == Release.UNUSED:
            return Learnt(pace, lease.start_at)
        if outcome == Release.SUCCESS:
            return self.pacing.after_answer(pace, self.snapshot.view(lease.host, now).record, lease.start_at, now)
        if outcome == Release.FAILED:
            return self.pacing.after_failure(pace, lease.start_at, now, retry_after_s)
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
