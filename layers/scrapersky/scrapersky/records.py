"""Typed records that cross the ports: what a batch, a counter shard, an item and a proxy are to the use cases.

Adapters map their storage to these (and back); services never see attribute names or storage types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scrapersky.domain.host_limits import TotalLimit, total_limit
from scrapersky.domain.pacing import HostPace
from scrapersky.models import BatchStatus, ItemStatus, Kind, ProxyState


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    tenant_id: str
    kind: Kind
    status: BatchStatus
    total_items: int
    shards: int
    created_at: float
    updated_at: float
    options: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    rejected_count: int = 0
    duplicate_items: int = 0
    fanout_sent: bool = False
    auto_start: bool = False  # queued behind its group's running batch: starts by itself when that one ends
    result_keys: dict[str, str] = field(default_factory=dict)  # format -> ResultStore key, once exported
    # ---- events: where batch.finished goes; why the batch stopped early (tolerated failures exceeded) ----
    callback_url: str | None = None
    stop_reason: str | None = None
    parent_batch_id: str | None = None  # a child batch: the sitemap batch whose URLs it follows
    child_batch_id: str | None = None  # a sitemap batch with options.follow: its child page batch, once created
    follow: dict[str, Any] | None = None  # where following stands (services/follow.py); None: not begun

    def shard_of(self, seq: int) -> int:
        return seq % self.shards

    def shard_share(self, shard: int) -> int:
        """How many of the batch's items count on this shard (seq % shards == shard)."""
        return len(range(shard, self.total_items, self.shards))


@dataclass(frozen=True)
class ErrorSample:
    item: str
    code: str
    message: str
    at: str


@dataclass(frozen=True)
class ShardCounts:
    """One counter shard of a batch: its share of the items and what became of them."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    in_progress: int = 0
    retries: int = 0
    detected: int = 0  # profile items that ended present
    errors: dict[str, int] = field(default_factory=dict)  # failed items by final error code
    samples: tuple[ErrorSample, ...] = ()
    updated_at: float | None = None

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled


@dataclass(frozen=True)
class ItemRef:
    """Where an item lives: its batch, its sequence number and its counter shard."""

    batch_id: str
    seq: int
    shard: int


@dataclass(frozen=True)
class ItemError:
    code: str
    message: str


@dataclass(frozen=True)
class ItemRecord:
    batch_id: str
    seq: int
    shard: int
    item: str
    status: ItemStatus
    claim: str | None = None  # the delivery working on it (in_progress), until claim_until
    claim_until: float | None = None
    last_proxy: str | None = None
    attempts: int = 0
    error: ItemError | None = None
    http_status: int | None = None
    result: dict[str, Any] | None = None
    deferrals: int = 0  # rate-limit waits: not attempts
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def ref(self) -> ItemRef:
        return ItemRef(self.batch_id, self.seq, self.shard)


@dataclass(frozen=True)
class ItemEnd:
    """How an item ends: succeeded with its result, or failed with its error (and what it got, if anything)."""

    succeeded: bool
    item: str
    error: ItemError | None = None
    http_status: int | None = None
    result: dict[str, Any] | None = None
    attempt_spent: bool = True  # a dead-lettered item ends without a new attempt


@dataclass(frozen=True)
class ProxyRecord:
    proxy_id: str
    url: str
    endpoint: str
    state: ProxyState = ProxyState.AVAILABLE
    lease_until: float = 0.0
    fence: int = 0
    last_used_at: float | None = None
    last_success_at: float | None = None
    succeeded: int = 0
    failed: int = 0
    rate_limited: int = 0
    consecutive_errors: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    checks: int = 0  # re-checks while quarantined
    next_check_at: float = 0.0
    paces: dict[str, HostPace] = field(default_factory=dict)  # what this proxy learnt per host
    cooldowns: dict[str, float] = field(default_factory=dict)  # hosts it must not ask before then


@dataclass(frozen=True)
class HostRecord:
    """What the pool was told of a host (`rate`: the site's limit per address, `max_rate`: a hard cap, `total_rate`:
    a cap over the whole pool) and what it learnt (`ceiling`: shared by proxies new to it; per proxy: pace and next
    slot; robots.txt's Crawl-delay)."""

    host: str
    rate: float | None = None
    max_rate: float | None = None
    ceiling: float | None = None
    proxies: dict[str, HostProxyPace] = field(default_factory=dict)
    total_rate: float | None = None  # configured: requests/s to the host summed over every proxy
    crawl_delay_s: float | None = None  # learnt from its robots.txt, in force until crawl_delay_until
    crawl_delay_at: float | None = None
    crawl_delay_until: float | None = None
    next_at: float | None = None  # with a total limit: the earliest start of the host's next request, any proxy

    def limit(self, now: float) -> TotalLimit | None:
        """The total limit in force: the stricter of `total_rate` and the learnt Crawl-delay."""
        return total_limit(self.total_rate, self.crawl_delay_s, self.crawl_delay_until, now)


@dataclass(frozen=True)
class HostProxyPace:
    """One proxy's pace for one host: its rate, learnt ceiling, usual answer time and next slot."""

    rate: float
    ceiling: float | None = None
    answer_s: float | None = None
    next_at: float | None = None


@dataclass(frozen=True)
class TenantRecord:
    tenant_id: str
    name: str
    role: str = "tenant"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class GroupLock:
    """A group's lock: the batch running in it, if any (batches queued behind it wait in its line)."""

    tenant_id: str
    group: str
    running: str | None = None
