"""FakeProxyPool and FakeHostBook: leases fenced by owner and fence, one pacing slot per (proxy, host) at a fixed
rate per host, cooldowns that honour Retry-After, quarantine after repeated proxy faults, each host's waiting line.

Unlike the real pool the fake learns no pace: a host's rate is its configured `rate` (capped by `max_rate`), else
the book's default rate. A host with a total limit (`total_rate`, a learnt Crawl-delay) books its slot across the
pool as the real one does. Leasing is deterministic: the proxy whose slot opens first, `avoid` last, then by id."""

from __future__ import annotations

from dataclasses import dataclass, field

from scrapersky.domain.host_limits import CRAWL_DELAY_KEEP_S, TotalLimit, host_slot
from scrapersky.domain.pacing import HostPace
from scrapersky.errors import NoProxyAvailable
from scrapersky.host_ports import HostConfig, HostLimitBook
from scrapersky.models import ProxyState
from scrapersky.ports import Lease, ProxyPool, Release
from scrapersky.records import HostProxyPace, HostRecord, ProxyRecord

from tests.fakes.recording import Recorder, recorded

Key = tuple[str, str]  # (proxy id, host)


class FakeHostBook(Recorder, HostLimitBook):
    def __init__(self, default_rate: float = 1.0, rates: dict[str, float] | None = None) -> None:
        super().__init__()
        self.default_rate = default_rate
        self.config: dict[str, tuple[float | None, float | None]] = {h: (r, None) for h, r in (rates or {}).items()}
        self.next_at: dict[Key, float] = {}  # when each proxy's next request to each host may start
        self.cooldowns: dict[Key, float] = {}  # until when a proxy must not ask a host (after a 429)
        self.learnt: set[Key] = set()  # (proxy, host) pairs that have a pace (the proxy leased for the host)
        self.tickets: dict[str, float] = {}  # each host's waiting line: the last place given out
        self.total: dict[str, float] = {}  # configured total_rate per host
        self.crawl_delays: dict[str, tuple[float, float]] = {}  # host -> (delay, learnt at), as robots.txt asked
        self.host_next: dict[str, float] = {}  # with a total limit: the host's next slot across the pool

    def rate(self, host: str) -> float:
        rate, cap = self.config.get(host, (None, None))
        rate = self.default_rate if rate is None else rate
        return rate if cap is None else min(rate, cap)

    def interval(self, host: str) -> float:
        return 1.0 / self.rate(host)

    @recorded
    def hosts(self) -> dict[str, HostRecord]:
        names = set(self.config) | set(self.total) | set(self.crawl_delays) | {h for _, h in self.learnt}
        return {h: self.record(h) for h in sorted(names)}

    def record(self, host: str) -> HostRecord:
        rate, max_rate = self.config.get(host, (None, None))
        delay, at = self.crawl_delays.get(host, (None, None))
        return HostRecord(
            host=host,
            rate=rate,
            max_rate=max_rate,
            total_rate=self.total.get(host),
            crawl_delay_s=delay,
            crawl_delay_at=at,
            crawl_delay_until=None if at is None else at + CRAWL_DELAY_KEEP_S,
            next_at=self.host_next.get(host),
            proxies={
                p: HostProxyPace(rate=self.rate(host), next_at=self.next_at.get((p, host)))
                for p, ph in sorted(self.learnt)
                if ph == host
            },
        )

    def limit(self, host: str, now: float) -> TotalLimit | None:
        return self.record(host).limit(now)

    @recorded
    def configure(self, host: str, config: HostConfig, now: float) -> None:
        self.config[host] = (config.rate, config.max_rate)
        if config.total_rate is None:
            self.total.pop(host, None)
        else:
            self.total[host] = config.total_rate

    @recorded
    def learn_crawl_delay(self, host: str, delay_s: float | None, now: float, read_at: float) -> None:
        if delay_s is None:
            self.crawl_delays.pop(host, None)
        else:
            self.crawl_delays[host] = (delay_s, now)
            self.host_next[host] = max(self.host_next.get(host, 0.0), read_at + delay_s)

    @recorded
    def book_again(self, host: str, gap_s: float, now: float) -> float:
        start, self.host_next[host] = host_slot(self.host_next.get(host), now, gap_s)
        return start

    @recorded
    def forget(self, host: str) -> bool:
        learnt = {k for k in self.learnt if k[1] == host}
        known = host in self.config or host in self.total or host in self.crawl_delays or bool(learnt)
        self.config.pop(host, None)
        self.total.pop(host, None)
        self.crawl_delays.pop(host, None)
        self.host_next.pop(host, None)
        self.learnt -= learnt  # booked slots and running cooldowns stay: the site's Retry-After is honoured
        return known

    @recorded
    def take_ticket(self, host: str, now: float, earliest: float, gap_s: float) -> float:
        start = max(now, earliest)
        last = self.tickets.get(host)
        place = start if last is None or last < start else max(start, last + gap_s)
        self.tickets[host] = place
        return place


@dataclass
class StoredProxy:
    """A proxy as the fake stores it (tests may read or set any field)."""

    proxy_id: str
    url: str
    endpoint: str
    labels: dict[str, str] = field(default_factory=dict)
    state: ProxyState = ProxyState.AVAILABLE
    lease_owner: str | None = None
    lease_until: float = 0.0
    fence: int = 0
    succeeded: int = 0
    failed: int = 0
    rate_limited: int = 0
    consecutive_errors: int = 0
    checks: int = 0
    next_check_at: float = 0.0
    last_used_at: float | None = None
    last_success_at: float | None = None


@dataclass(frozen=True)
class Released:
    """One release call, and whether it `applied` (owner and fence matched) or was fenced off."""

    lease: Lease
    outcome: Release
    retry_after_s: float | None
    proxy_fault: bool
    at: float
    applied: bool


def _same(a: Lease, b: Lease) -> bool:
    """The same lease, though `start_at` may have moved (waiting for the slot returns a copy)."""
    return (a.proxy_id, a.fence, a.owner) == (b.proxy_id, b.fence, b.owner)


class FakeProxyPool(Recorder, ProxyPool):
    def __init__(
        self,
        book: FakeHostBook | None = None,
        *,
        quarantine_after: int = 3,
        no_proxy_retry_s: float = 30.0,
        busy_retry_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.book = book or FakeHostBook()
        self.quarantine_after = quarantine_after
        self.no_proxy_retry_s = no_proxy_retry_s
        self.busy_retry_s = busy_retry_s  # how soon a leased proxy is worth looking at again
        self.proxies: dict[str, StoredProxy] = {}
        self.stats = {"leases": 0, "conflicts": 0}
        self.leases: list[Lease] = []
        self.releases: list[Released] = []

    # ---- port ---------------------------------------------------------------------------------------------
    @recorded
    def add(self, proxy_id: str, url: str, endpoint: str, labels: dict[str, str], now: float) -> None:
        if proxy_id in self.proxies:
            raise ValueError(f"proxy {proxy_id} exists")
        self.proxies[proxy_id] = StoredProxy(proxy_id, url, endpoint, dict(labels))

    @recorded
    def delete(self, proxy_id: str) -> bool:
        return self.proxies.pop(proxy_id, None) is not None

    @recorded
    def list_all(self, now: float) -> list[ProxyRecord]:
        return [self._view(p, now) for p in self.proxies.values()]

    @recorded
    def lease(
        self, host: str, owner: str, now: float, lease_s: float, avoid: str | None = None, max_wait_s: float = 0.0
    ) -> Lease:
        usable = [p for p in self.proxies.values() if p.state is ProxyState.AVAILABLE]
        ready = sorted(
            (p for p in usable if p.lease_until < now and self._open_at(p, host, now) <= now + max_wait_s),
            key=lambda p: (p.proxy_id == avoid, self._open_at(p, host, now), p.proxy_id),
        )
        if not ready:
            if not usable:
                raise NoProxyAvailable(f"no usable proxy for {host}", retry_at=now + self.no_proxy_retry_s)
            retry_at = min(
                max(self._open_at(p, host, now), now + self.busy_retry_s if p.lease_until >= now else now)
                for p in usable
            )
            raise NoProxyAvailable(f"no proxy can take {host} now", retry_at=retry_at)
        p = ready[0]
        start = self._open_at(p, host, now)
        p.fence += 1
        p.lease_owner, p.lease_until = owner, start + lease_s
        self.book.next_at[p.proxy_id, host] = start + self.book.interval(host)
        self.book.learnt.add((p.proxy_id, host))
        limit = self.book.limit(host, now)
        if limit is not None:  # the host's slot across the pool (its opening is in _open_at)
            start, self.book.host_next[host] = host_slot(self.book.host_next.get(host), start, limit.gap_s)
        self.stats["leases"] += 1
        lease = Lease(
            proxy_id=p.proxy_id,
            url=p.url,
            fence=p.fence,
            owner=owner,
            host=host,
            start_at=start,
            pace=HostPace(rate=self.book.rate(host)),
            last_success_at=p.last_success_at,
            host_gap_s=None if limit is None else limit.gap_s,
        )
        self.leases.append(lease)
        return lease

    @recorded
    def release(
        self, lease: Lease, now: float, outcome: Release, retry_after_s: float | None = None, proxy_fault: bool = False
    ) -> None:
        p = self.proxies.get(lease.proxy_id)
        # As the real conditional write: owner and fence must match (a release already made removed the owner).
        applied = p is not None and p.lease_owner == lease.owner and p.fence == lease.fence
        self.releases.append(Released(lease, Release(outcome), retry_after_s, proxy_fault, now, applied))
        if p is None or not applied:
            return
        p.lease_owner, p.lease_until = None, 0.0
        if outcome is Release.UNUSED:  # no request went out: the booked slot is given back, as the real pool does
            self.book.next_at[p.proxy_id, lease.host] = lease.start_at
        else:
            p.last_used_at = now
        if outcome is Release.SUCCESS:
            p.succeeded += 1
            p.consecutive_errors = 0
            p.last_success_at = now
        elif outcome is Release.FAILED:
            p.failed += 1
            if retry_after_s:  # a block: this proxy cools for the host
                key = (p.proxy_id, lease.host)
                self.book.cooldowns[key] = now + retry_after_s
                self.book.next_at[key] = max(self.book.next_at.get(key, 0.0), now + retry_after_s)
        elif outcome is Release.RATE_LIMITED:
            p.rate_limited += 1
            key = (p.proxy_id, lease.host)
            until = now + max(self.book.interval(lease.host), retry_after_s or 0.0)
            self.book.cooldowns[key] = until
            self.book.next_at[key] = max(self.book.next_at.get(key, 0.0), until)
        if proxy_fault:
            p.consecutive_errors += 1
            if p.consecutive_errors >= self.quarantine_after:
                p.state, p.checks, p.next_check_at = ProxyState.QUARANTINED, 0, now

    @recorded
    def capacity(self, host: str, now: float) -> float:
        paces = sum(self.book.rate(host) for p in self.proxies.values() if p.state is ProxyState.AVAILABLE)
        limit = self.book.limit(host, now)
        return paces if limit is None else min(paces, limit.rate)

    @recorded
    def restore(self, proxy_id: str, now: float) -> None:
        p = self.proxies.get(proxy_id)
        if p is not None:
            p.state, p.consecutive_errors, p.checks, p.next_check_at = ProxyState.AVAILABLE, 0, 0, 0.0

    @recorded
    def keep_quarantined(self, proxy_id: str, now: float, checks: int, next_check_at: float) -> None:
        p = self.proxies.get(proxy_id)
        if p is not None:
            p.checks, p.next_check_at = checks, next_check_at

    # ---- for tests --------------------------------------------------------------------------------------------
    def add_proxies(self, n: int, now: float = 0.0) -> list[str]:
        """Adds proxies p_1 .. p_n (http://proxy-<i>.test:8080) and returns their ids."""
        ids = []
        for i in range(len(self.proxies) + 1, len(self.proxies) + n + 1):
            self.add(f"p_{i}", f"http://proxy-{i}.test:8080", f"proxy-{i}.test:8080", {}, now)
            ids.append(f"p_{i}")
        return ids

    def proxy(self, proxy_id: str) -> StoredProxy:
        return self.proxies[proxy_id]

    def release_calls(self, lease: Lease) -> list[Released]:
        """Every release call made for this lease (applied or fenced off)."""
        return [r for r in self.releases if _same(r.lease, lease)]

    def unreleased(self) -> list[Lease]:
        """Leases given out that no release was ever called for: leaks."""
        return [lease for lease in self.leases if not self.release_calls(lease)]

    def _open_at(self, p: StoredProxy, host: str, now: float) -> float:
        host_open = self.book.host_next.get(host, 0.0) if self.book.limit(host, now) is not None else 0.0
        return max(now, self.book.next_at.get((p.proxy_id, host), 0.0), host_open)

    def _view(self, p: StoredProxy, now: float) -> ProxyRecord:
        return ProxyRecord(
            proxy_id=p.proxy_id,
            url=p.url,
            endpoint=p.endpoint,
            state=p.state,
            labels=dict(p.labels),
            lease_until=p.lease_until,
            fence=p.fence,
            succeeded=p.succeeded,
            failed=p.failed,
            rate_limited=p.rate_limited,
            consecutive_errors=p.consecutive_errors,
            checks=p.checks,
            next_check_at=p.next_check_at,
            last_used_at=p.last_used_at,
            last_success_at=p.last_success_at,
            paces={h: HostPace(rate=self.book.rate(h)) for pid, h in sorted(self.book.learnt) if pid == p.proxy_id},
            cooldowns={h: t for (pid, h), t in self.book.cooldowns.items() if pid == p.proxy_id and t > now},
        )
