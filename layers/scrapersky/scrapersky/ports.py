"""Ports: the small interfaces the domain services need. Adapters implement them; tests fake them."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Any

from scrapersky.domain.outcomes import FetchFailure, FetchResponse
from scrapersky.domain.pacing import HostPace
from scrapersky.models import FanoutMessage, WorkMessage


@dataclass(frozen=True)
class Claim:
    """An item claimed for processing by one delivery."""

    token: str
    attempts: int
    deferrals: int
    last_proxy: str | None


@dataclass(frozen=True)
class ClaimRefused:
    """The item could not be claimed: it is finished, missing, or claimed by a live delivery until `busy_until`."""

    terminal: bool
    busy_until: float | None = None


@dataclass
class Transition:
    """One conditional item transition plus the counter deltas that go with it, written atomically."""

    batch_id: str
    seq: int
    shard: int
    to_status: str
    from_status: tuple[str, ...]
    claim_token: str | None = None  # the transition is ours only if the item still carries this claim
    set_fields: dict[str, Any] = field(default_factory=dict)
    add_fields: dict[str, int] = field(default_factory=dict)
    remove_fields: tuple[str, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)
    error_sample: dict[str, Any] | None = None
    now: float = 0.0
    create_if_missing: dict[str, Any] | None = None  # the full item, when the record may not exist yet
    # index of the shard's last item (its share of the total - 1): when set, the store tells whether this
    # transition finished the shard, so callers look at the whole batch only then
    shard_last: int | None = None


@dataclass(frozen=True)
class Applied:
    """What a transition did: `won` (truthy) and whether it finished its counter shard's last item."""

    won: bool
    shard_done: bool = False

    def __bool__(self) -> bool:
        return self.won


class BatchStore(abc.ABC):
    """Batches, their items and counter shards, group locks and client tokens."""

    @abc.abstractmethod
    def create_batch(
        self, meta: dict[str, Any], shard_totals: list[int], client_token: str | None, take_group: bool
    ) -> tuple[dict[str, Any], bool]:
        """Stores a new batch. Returns (meta, created); a repeated client token returns the earlier batch.
        With take_group, the group lock is taken in the same write; if it is held the batch is stored as
        queued behind it (meta["status"] tells which happened)."""

    @abc.abstractmethod
    def get_meta(self, batch_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def get_batch(self, batch_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The batch record and its counter shards (one query; O(shards))."""

    @abc.abstractmethod
    def list_batches(
        self, tenant_id: str, limit: int, cursor: str | None, status: str | None, group: str | None
    ) -> tuple[list[tuple[dict[str, Any], list[dict[str, Any]]]], str | None]: ...

    @abc.abstractmethod
    def update_status(
        self,
        batch_id: str,
        to_status: str,
        from_status: tuple[str, ...],
        now: float,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Conditional status change of the batch record; False when it was not in from_status."""

    @abc.abstractmethod
    def mark(self, batch_id: str, fields: dict[str, Any]) -> None:
        """Sets bookkeeping fields on the batch record, whatever its status."""

    @abc.abstractmethod
    def put_items(
        self, batch_id: str, tenant_id: str, shards: int, first_seq: int, items: list[str], now: float
    ) -> list[tuple[int, str]]:
        """Creates item records that do not exist yet (never overwrites). Returns (seq, item) of every
        item of the chunk still pending, new or not, so a replayed chunk re-sends what may have been lost."""

    @abc.abstractmethod
    def pending_items(self, batch_id: str, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Items still pending, strongly consistent, for dispatching or cancelling a batch."""

    @abc.abstractmethod
    def query_items(
        self, batch_id: str, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    @abc.abstractmethod
    def get_item(self, batch_id: str, seq: int) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def claim_item(
        self, batch_id: str, seq: int, shard: int, token: str, until: float, now: float
    ) -> Claim | ClaimRefused: ...

    @abc.abstractmethod
    def transition(self, t: Transition) -> Applied:
        """Applies the item transition and its counter deltas in one transaction; falsy if it lost."""

    @abc.abstractmethod
    def release_group(self, tenant_id: str, group: str, batch_id: str) -> bool: ...

    @abc.abstractmethod
    def take_group(self, tenant_id: str, group: str, batch_id: str) -> bool: ...

    @abc.abstractmethod
    def next_waiting_in_group(self, tenant_id: str, group: str) -> str | None:
        """The oldest batch queued behind the group's lock (started by itself when the lock frees)."""


@dataclass(frozen=True)
class Lease:
    """A proxy held by one worker for one request to `host`, which may start at `start_at` (pacing)."""

    proxy_id: str
    url: str
    fence: int
    owner: str
    host: str = ""
    start_at: float = 0.0
    pace: HostPace | None = None
    last_success_at: float | None = None


class ProxyPool(abc.ABC):
    """The proxy records: leasing with conditional writes, per-host pacing, health."""

    stats: dict[str, int]  # this container's counts: leases, conflicts (for the metrics)

    @abc.abstractmethod
    def add(self, proxy_id: str, url: str, endpoint: str, labels: dict[str, str], now: float) -> None: ...

    @abc.abstractmethod
    def delete(self, proxy_id: str) -> bool: ...

    @abc.abstractmethod
    def list_all(self) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def paces(self, rec: dict[str, Any]) -> dict[str, float]:
        """A proxy record's learnt rate per host (requests/s)."""

    @abc.abstractmethod
    def cooldowns(self, rec: dict[str, Any], now: float) -> dict[str, float]:
        """The hosts a proxy record is cooling for (a 429 pushed its next slot beyond its pace), with when."""

    @abc.abstractmethod
    def hosts(self) -> dict[str, dict[str, Any]]:
        """Each host the pool knows: its configuration (`start_rate`, `max_rate`) and what it learnt
        (`ceiling`), keyed by host."""

    @abc.abstractmethod
    def configure_host(self, host: str, start_rate: float | None, max_rate: float | None, now: float) -> None:
        """Replaces the host's configuration: proxies that have learnt nothing of it start at `start_rate`
        (the site's known limit per address); no proxy ever goes faster than `max_rate`."""

    @abc.abstractmethod
    def forget_host(self, host: str) -> bool:
        """Drops what was configured for and learnt of the host (a cooldown still running is kept: the site's
        Retry-After is honoured); False when the pool knew nothing of it. A request in flight may still
        record what it learns when it ends."""

    @abc.abstractmethod
    def lease(
        self, host: str, owner: str, now: float, lease_s: float, avoid: str | None = None, max_wait_s: float = 0.0
    ) -> Lease:
        """Leases a proxy whose pacing slot for this host opens by now + max_wait_s, in one conditional
        write that also books the next slot. Raises NoProxyAvailable(retry_at) when none can."""

    @abc.abstractmethod
    def release(
        self, lease: Lease, host: str, now: float, outcome: str, retry_after_s: float | None, proxy_fault: bool
    ) -> None:
        """Returns the lease (conditional on owner and fence), records what the fetch did and learns the
        host's pace from it (success: a little faster; rate_limited: much slower, Retry-After honoured)."""

    @abc.abstractmethod
    def take_ticket(self, host: str, now: float, earliest: float) -> float:
        """A place in the host's waiting line: when a deferred item should come back, spread at the pool's
        learnt rate for the host so waiting items return one by one instead of all at once."""

    @abc.abstractmethod
    def set_state(self, proxy_id: str, state: str, now: float, extra: dict[str, Any] | None = None) -> None: ...


class TenantStore(abc.ABC):
    @abc.abstractmethod
    def put_tenant(self, tenant_id: str, name: str, role: str, key_hash: str, now: float) -> None: ...

    @abc.abstractmethod
    def by_key_hash(self, key_hash: str) -> dict[str, Any] | None: ...


class WorkQueue(abc.ABC):
    """The SQS queues: fan-out chunks and one work message per item."""

    @abc.abstractmethod
    def send_fanout(self, messages: list[FanoutMessage]) -> None: ...

    @abc.abstractmethod
    def send_work(self, messages: list[WorkMessage], delay_s: int = 0) -> None: ...

    @abc.abstractmethod
    def change_visibility(self, receipt_handle: str, seconds: int) -> None: ...


class Fetcher(abc.ABC):
    @abc.abstractmethod
    def fetch(self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int) -> FetchResponse | FetchFailure:
        """Fetches through the proxy, following redirects hop by hop through the SSRF guard."""

    @abc.abstractmethod
    def probe(self, proxy_url: str) -> bool:
        """A cheap check that the proxy answers at all (verify before use)."""


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> float: ...

    @abc.abstractmethod
    def sleep(self, seconds: float) -> None: ...


class SystemClock(Clock):
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
