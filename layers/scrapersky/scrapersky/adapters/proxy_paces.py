"""The pacing rows: one `ph#<proxy>#<host>` item per (proxy, host) in the proxies table, read only for the
host being leased, and gone by themselves (TTL) some hours after their last use.

A lease is two conditional writes, not one transaction:
1. the claim, on the proxy row: free and available -> lease owner, lease end, fence + 1 (proxy_rows);
2. the booking, on the pacing row, made under that lease: `n <= start` -> `n` = the slot after this request,
   with the lease's fence and end written beside it.
Only a lease holder writes a proxy's pacing rows, and a proxy has one holder at a time, so nothing can slip
between the two writes; the booking's condition still refuses a slot another request took (this container's
view of the row was stale): the lease then moves to the true slot if it opens within the wait, or gives the
proxy back. A release writes the pacing row first, while the lease is held, and only if the row was booked by
this lease and the lease has not ended (`fence = F AND lease_until > now`, then `lease_until = 0`): a release
that already happened, or of a lease that lapsed, writes nothing, even if a newer lease of the same proxy is
for another host. Then it hands the proxy row back, conditional on owner and fence as before.

Why not TransactWriteItems of both: a transaction costs 2 WCU per item, so 4 WCU per lease and 4 per release,
against 2 and 2 here (1 KB items), and it adds latency and TransactionConflict refusals under contention;
the only thing it would add is atomicity that lease exclusivity already gives. The price of two writes: a
crash between claim and booking leaves the proxy leased without a booking, which lapses like any lease.

Cost per lease, however many hosts the pool has seen: the claim (1 WCU, a small proxy row), the booking (1 WCU,
a ~150-byte row) and, per container and host every 2 s, one BatchGetItem of the host row and the proxies'
pacing rows for that host (1 RCU each). Before, every lease and release wrote (and returned) the whole proxy
row, ~69 bytes per host ever seen, and every 2 s scan read all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapersky.adapters.expressions import Update
from scrapersky.adapters.proxy_rows import (
    LEARNT,
    batch_get,
    host_record,
    host_row_id,
    learnt_fields,
    learnt_pace,
    next_at,
    pace_id,
    proxy_record,
    update,
    update_or_current,
)
from scrapersky.domain.pacing import Learnt, PacingPolicy
from scrapersky.ports import Lease
from scrapersky.records import HostRecord, ProxyRecord


@dataclass
class HostView:
    """What a container knows of one host: its configuration row and the proxies' pacing rows for it, read
    together and kept for the snapshot's lifetime (then kept honest by the container's own writes)."""

    at: float
    record: HostRecord | None
    rows: dict[str, dict[str, Any]]  # proxy id -> its pacing row for the host (none: it learnt nothing yet)

    def row(self, proxy_id: str) -> dict[str, Any] | None:
        return self.rows.get(proxy_id)


@dataclass(frozen=True)
class Booking:
    """The slot a lease books: the request starts at `start`, the next one no sooner than `slot`."""

    proxy_id: str
    host: str
    fence: int
    start: float
    slot: float
    lease_until: float


class PaceRows:
    def __init__(self, table_name: str, client: Any, pacing: PacingPolicy | None = None) -> None:
        self.table = table_name
        self.ddb = client
        self.pacing = pacing or PacingPolicy()

    @staticmethod
    def keys(host: str, proxy_ids: list[str]) -> list[str]:
        """The rows a view of the host reads: the host's and its pacing rows for these proxies."""
        return [host_row_id(host), *(pace_id(p, host) for p in proxy_ids)]

    @staticmethod
    def view_of(host: str, proxy_ids: list[str], got: dict[str, dict[str, Any]], now: float) -> HostView:
        rows = {p: got[pace_id(p, host)] for p in proxy_ids if pace_id(p, host) in got}
        return HostView(now, host_record(got.get(host_row_id(host))), rows)

    def view(self, host: str, proxy_ids: list[str], now: float) -> HostView:
        """The host's row and its pacing rows for these proxies, in one BatchGetItem per 99 proxies."""
        return self.view_of(host, proxy_ids, batch_get(self.ddb, self.table, self.keys(host, proxy_ids)), now)

    def _expiry(self, now: float, next_at: float) -> int:
        return int(self.pacing.forget_at(now, next_at)) + 1

    def book(self, b: Booking, now: float) -> tuple[bool, dict[str, Any]]:
        """Books the slot if no other request holds it: (True, the row) or (False, the row as it is)."""
        u = Update().set(n=b.slot, fence=b.fence, lease_until=b.lease_until, expires_at=self._expiry(now, b.slot))
        u.when("attribute_not_exists(#n) OR #n <= :start", start=b.start)
        return update_or_current(self.ddb, self.table, pace_id(b.proxy_id, b.host), u)

    def learn(self, lease: Lease, learnt: Learnt, now: float, *, pace: bool, answer: bool) -> dict[str, Any] | None:
        """Writes what a release learnt, if this lease booked the row and still holds it; the row, or None."""
        u = Update().set(**learnt_fields(learnt, pace=pace, answer=answer), lease_until=0)
        u.set(expires_at=self._expiry(now, learnt.next_at))
        u.when("#fence = :f AND #lease_until > :now", f=lease.fence, now=now)
        ok, row = update_or_current(self.ddb, self.table, pace_id(lease.proxy_id, lease.host), u)
        return row if ok else None

    def forget_learnt(self, host: str, proxy_ids: list[str]) -> bool:
        """Drops what the proxies learnt of the host; their next slots (a running cooldown) stay. False when
        none had learnt anything."""
        rows = batch_get(self.ddb, self.table, [pace_id(p, host) for p in proxy_ids])
        learnt = [rid for rid, row in rows.items() if any(k in row for k in LEARNT)]
        for rid in learnt:
            update(self.ddb, self.table, rid, Update().remove(*LEARNT).when("attribute_exists(proxy_id)"))
        return bool(learnt)


def proxy_view(
    p: dict[str, Any], rows: dict[str, dict[str, Any]], hosts: dict[str, HostRecord], pacing: PacingPolicy, now: float
) -> ProxyRecord:
    """A proxy row and its pacing rows (host -> row) as a ProxyRecord: the paces it learnt, and the next slots
    further off than the pace alone would put them (cooldowns), judged against the hosts' configuration."""
    paces = {h: pace for h, row in rows.items() if (pace := learnt_pace(row)) is not None}
    cooldowns: dict[str, float] = {}
    for host, row in rows.items():
        until = next_at(row)
        if until is not None and pacing.is_cooldown(until, pacing.pace_of(paces.get(host), hosts.get(host)), now):
            cooldowns[host] = until
    return proxy_record(p, paces, cooldowns)
