"""The host-wide slot a lease books for a host with a total limit (domain/host_limits): `n` on the host's row,
the earliest start of its next request through any proxy, moved by one conditional write per lease:

- the line is idle (`n` absent or not after the request's start): `n = start + gap`, the request starts at
  `start`;
- the line runs (`n` after the start, yet within the wait): `n = n + gap` (an atomic ADD, so workers racing for
  the same host all get a slot of their own without retrying), the request starts at the old `n`.

Which of the two to try first is the container's view of the row; a refusal returns the row as it is, so the other
is tried with no read. A line that runs past the wait books nothing: the lease is given back and the message waits
for the host (as for a proxy's slot). A host without a total limit never reaches here: no read, no write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapersky.adapters.expressions import Update
from scrapersky.adapters.pool_snapshot import PoolSnapshot
from scrapersky.adapters.proxy_rows import host_row_id, next_at, update_or_current
from scrapersky.domain.host_limits import TotalLimit
from scrapersky.errors import NoProxyAvailable

MAX_TRIES = 3
FAR_S = 10 * 86_400.0  # no bound on the wait for a request already under way


@dataclass(frozen=True)
class HostSlot:
    """A booking's answer: the start of the slot booked (None: none within the wait) and the host's `n` as it
    now is (None: the host's row is gone, so is its limit)."""

    start: float | None
    next_at: float | None


def _booking(running: bool, start: float, gap: float, latest: float) -> Update:
    """Joins a running line at its end (if within the wait), or opens an idle one at `start`."""
    if running:
        u = Update().add(n=gap)
        return u.when("attribute_exists(proxy_id) AND #n > :s AND #n <= :latest", s=start, latest=latest)
    u = Update().set(n=start + gap)
    return u.when("attribute_exists(proxy_id) AND (attribute_not_exists(#n) OR #n <= :s)", s=start)


def book_host_slot(
    client: Any, table: str, host: str, gap: float, start: float, latest: float, known: float | None
) -> HostSlot:
    """Books the host's slot (`gap` apart from the others) for a request ready at `start`, if it opens by `latest`."""
    seen = known
    for _ in range(MAX_TRIES):
        running = seen is not None and seen > start
        ok, row = update_or_current(client, table, host_row_id(host), _booking(running, start, gap, latest))
        seen = next_at(row)
        if ok and seen is not None:
            return HostSlot(seen - gap if running else start, seen)
        if not row:  # forgotten meanwhile: no limit left to keep
            return HostSlot(start, None)
        if seen is not None and seen > latest:
            return HostSlot(None, seen)
    return HostSlot(None, seen)  # the line kept changing under us: taken as busy


def book_for_lease(
    snapshot: PoolSnapshot, host: str, now: float, start: float, max_wait_s: float
) -> tuple[float, TotalLimit | None]:
    """Under a lease just taken for a request ready at `start`: with a total limit on the host, books its slot across
    the pool: (when the request starts, the limit). NoProxyAvailable (the lease is given back) when the host's line
    runs past the wait."""
    limit = snapshot.limit(host, now)
    if limit is None:
        return start, None
    known = snapshot.host_next_at(host, now)
    slot = book_host_slot(snapshot.ddb, snapshot.table, host, limit.gap_s, start, now + max_wait_s, known)
    snapshot.remember_host_slot(host, slot.next_at, now)
    if slot.start is None:
        busy = f"{host} takes {limit.rate:g} requests/s across the pool ({limit.source})"
        raise NoProxyAvailable(busy, retry_at=max(now + 0.2, slot.next_at or now))
    return slot.start, limit


def book_again(client: Any, table: str, host: str, gap: float, now: float) -> float:
    """A slot at the end of the host's line for a request ready now, however far: for a lease held whose slot
    passed before its request could leave."""
    slot = book_host_slot(client, table, host, gap, now, now + FAR_S, None)
    return slot.start if slot.start is not None else max(now, slot.next_at or now)
