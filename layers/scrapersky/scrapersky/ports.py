"""Ports: the small interfaces the domain services need. Adapters implement them; tests fake them."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from scrapersky.domain.outcomes import FetchFailure, FetchResponse
from scrapersky.domain.pacing import HostPace
from scrapersky.models import BatchStatus, FanoutMessage, ItemStatus, WorkMessage
from scrapersky.records import (
    BatchRecord,
    GroupLock,
    HostRecord,
    ItemEnd,
    ItemError,
    ItemRecord,
    ItemRef,
    ProxyRecord,
    ShardCounts,
    TenantRecord,
)


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


class Release(StrEnum):
    """What a leased proxy did, as its release records it."""

    SUCCESS = "success"  # a request went out and the site answered usefully
    FAILED = "failed"  # a request went out and failed
    RATE_LIMITED = "rate_limited"  # the site pushed back on this proxy (429, 503 + Retry-After)
    UNUSED = "unused"  # no request went out: the lease is only handed back


@dataclass(frozen=True)
class Applied:
    """What an item change did: `won` (truthy) and whether it finished its counter shard's last item."""

    won: bool
    shard_done: bool = False

    def __bool__(self) -> bool:
        return self.won


class BatchStore(abc.ABC):
    """Batch records with their counter shards, group locks and client tokens."""

    @abc.abstractmethod
    def create(
        self, batch: BatchRecord, shard_totals: list[int], client_token: str | None, take_group: bool
    ) -> tuple[BatchRecord, bool]:
        """Stores a new batch with its counter shards. Returns (batch, created); a repeated client token returns
        the earlier batch. With take_group, the group lock is taken in the same write; if it is held the batch
        is stored queued behind it (`auto_start`), and the returned record says so."""

    @abc.abstractmethod
    def get(self, batch_id: str) -> BatchRecord | None:
        """The batch record, strongly consistent."""

    @abc.abstractmethod
    def get_with_counts(self, batch_id: str) -> tuple[BatchRecord, list[ShardCounts]] | None:
        """The batch record and its counter shards in one query: O(shards), never O(items)."""

    @abc.abstractmethod
    def list(
        self, tenant_id: str, limit: int, cursor: str | None, status: BatchStatus | None, group: str | None
    ) -> tuple[list[tuple[BatchRecord, list[ShardCounts]]], str | None]:
        """The tenant's batches, newest first. Raises InvalidCursor for a cursor we did not give out."""

    @abc.abstractmethod
    def start(self, batch_id: str, now: float) -> bool:
        """queued -> pending (it no longer waits in its group's line); False when it was not queued."""

    @abc.abstractmethod
    def begin_processing(self, batch_id: str, now: float) -> bool:
        """pending -> processing, with started_at; False when it was not pending."""

    @abc.abstractmethod
    def end(self, batch_id: str, status: BatchStatus, now: float, from_status: tuple[BatchStatus, ...]) -> bool:
        """Turns the batch terminal (completed_at = now) if it is in from_status; False otherwise."""

    @abc.abstractmethod
    def after_end_sent(self, batch_id: str) -> None:
        """The messages that follow its end are sent: clears the mark `end` set (the sweeper re-sends them)."""

    @abc.abstractmethod
    def mark_fanout_sent(self, batch_id: str) -> None:
        """Every fan-out chunk of the batch is on the queue (a replayed create need not send them again)."""

    @abc.abstractmethod
    def mark_exported(self, batch_id: str, keys: dict[str, str]) -> None:
        """The batch's results are published in the ResultStore under these keys (format -> key)."""

    @abc.abstractmethod
    def take_group(self, tenant_id: str, group: str, batch_id: str) -> bool: ...

    @abc.abstractmethod
    def release_group(self, tenant_id: str, group: str, batch_id: str) -> bool: ...

    @abc.abstractmethod
    def next_waiting_in_group(self, tenant_id: str, group: str, after: str | None = None) -> str | None:
        """The oldest batch queued behind the group's lock (started by itself when the lock frees), or the oldest
        after `after`: the line is an eventually consistent index, which may still list a batch that just left it."""


class ItemStore(abc.ABC):
    """Item records. Every change is a conditional write on the item's status with its counter deltas in the
    same transaction, so an item is counted once whatever redeliveries happen."""

    @abc.abstractmethod
    def put_pending(self, batch: BatchRecord, first_seq: int, items: list[str], now: float) -> list[tuple[int, str]]:
        """Creates item records that do not exist yet (never overwrites). Returns (seq, item) of every item of
        the chunk still pending, new or not, so a replayed chunk re-sends what may have been lost."""

    @abc.abstractmethod
    def pending(self, batch_id: str, cursor: str | None, limit: int) -> tuple[list[ItemRecord], str | None]:
        """Items still pending, strongly consistent, for dispatching or cancelling a batch."""

    @abc.abstractmethod
    def query(
        self, batch_id: str, status: ItemStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[ItemRecord], str | None]:
        """Items in order. Raises InvalidCursor for a cursor we did not give out."""

    @abc.abstractmethod
    def get(self, batch_id: str, seq: int) -> ItemRecord | None: ...

    @abc.abstractmethod
    def claim(self, ref: ItemRef, token: str, until: float, now: float) -> Claim | ClaimRefused:
        """pending -> in_progress for this delivery until `until`; a lapsed claim of a crashed delivery is taken
        over without touching the counters."""

    @abc.abstractmethod
    def finish(self, ref: ItemRef, token: str, end: ItemEnd, now: float, shard_last: int | None = None) -> Applied:
        """in_progress (claimed by `token`) -> succeeded or failed. With `shard_last` (the index of the shard's
        last item) the answer tells whether this finished the shard, so only then the batch is looked at."""

    @abc.abstractmethod
    def requeue(
        self,
        ref: ItemRef,
        token: str,
        now: float,
        *,
        attempt_spent: bool,
        proxy_id: str | None,
        error: ItemError | None,
    ) -> Applied:
        """in_progress -> pending: a retry (attempt_spent) or a rate-limit deferral (not an attempt)."""

    @abc.abstractmethod
    def cancel(self, ref: ItemRef, now: float, claimed_by: str | None = None) -> Applied:
        """Ends an item cancelled: one not started, or one this delivery holds the claim of."""

    @abc.abstractmethod
    def fail_from_dead_letter(self, ref: ItemRef, item: str, error: ItemError, now: float) -> Applied:
        """Ends the item failed from whatever non-terminal state it is in, creating it if it was never stored
        (a dead-lettered chunk). Never counts an item twice; falsy when it had already ended."""


class Sweeps(abc.ABC):
    """What the maintenance sweeps read, and the fan-out chunks kept so a create that crashed mid-way can be
    sent again (the batch record alone does not hold its items)."""

    @abc.abstractmethod
    def save_chunks(self, batch_id: str, chunks: list[tuple[int, list[str]]], now: float) -> None:
        """Keeps the batch's fan-out chunks (first seq, items) until the batch expires. Written before the batch
        itself, so a stored batch always has them."""

    @abc.abstractmethod
    def chunks(self, batch_id: str) -> list[tuple[int, list[str]]]: ...

    @abc.abstractmethod
    def unsent(self, created_before: float, limit: int) -> list[str]:
        """Batches created before then whose chunks are not all on the fan-out queue (oldest first)."""

    @abc.abstractmethod
    def after_end_pending(self, created_before: float, limit: int) -> list[str]:
        """Batches created before then that ended and whose after-end messages may not be sent (oldest first)."""

    @abc.abstractmethod
    def group_locks(self) -> list[GroupLock]:
        """Every group lock, held or free."""


@dataclass(frozen=True)
class Lease:
    """A proxy held by one worker for one request to `host`, which may start at `start_at` (pacing)."""

    proxy_id: str
    url: str
    fence: int
    owner: str
    host: str
    start_at: float = 0.0
    pace: HostPace | None = None
    last_success_at: float | None = None
    host_gap_s: float | None = None  # it booked a slot on the host's line across the pool, spaced this far apart


class ProxyPool(abc.ABC):
    """The proxy records: leasing with conditional writes, per-host pacing, health."""

    stats: dict[str, int]  # this container's counts: leases, conflicts (for the metrics)

    @abc.abstractmethod
    def add(self, proxy_id: str, url: str, endpoint: str, labels: dict[str, str], now: float) -> None: ...

    @abc.abstractmethod
    def delete(self, proxy_id: str) -> bool: ...

    @abc.abstractmethod
    def list_all(self, now: float) -> list[ProxyRecord]:
        """Every proxy with its state, counters, learnt paces and running cooldowns (as of `now`)."""

    @abc.abstractmethod
    def lease(
        self, host: str, owner: str, now: float, lease_s: float, avoid: str | None = None, max_wait_s: float = 0.0
    ) -> Lease:
        """Leases a proxy whose pacing slot for this host opens by now + max_wait_s, in one conditional
        write that also books the next slot. Raises NoProxyAvailable(retry_at) when none can."""

    @abc.abstractmethod
    def release(
        self, lease: Lease, now: float, outcome: Release, retry_after_s: float | None = None, proxy_fault: bool = False
    ) -> None:
        """Returns the lease (conditional on owner and fence), records what the fetch did and learns the
        host's pace from it (success: a little faster; rate_limited: much slower, Retry-After honoured).
        A release that already happened, or of a lease that lapsed, changes nothing."""

    @abc.abstractmethod
    def capacity(self, host: str, now: float) -> float:
        """Requests per second the usable proxies can send the host at their current paces."""

    @abc.abstractmethod
    def restore(self, proxy_id: str, now: float) -> None:
        """A quarantined proxy answered its check: it is available again, its error count cleared."""

    @abc.abstractmethod
    def keep_quarantined(self, proxy_id: str, now: float, checks: int, next_check_at: float) -> None:
        """A quarantined proxy failed its check: look again at `next_check_at`."""


class HostBook(abc.ABC):
    """What the pool is told of each host and what it learnt of it, and each host's waiting line (configuring a host
    and learning its Crawl-delay: host_ports.HostLimitBook)."""

    @abc.abstractmethod
    def hosts(self) -> dict[str, HostRecord]:
        """Each host the pool knows: configuration, shared ceiling, and each proxy's pace for it."""

    @abc.abstractmethod
    def forget(self, host: str) -> bool:
        """Drops what was configured for and learnt of the host (a cooldown still running is kept: the site's
        Retry-After is honoured); False when the pool knew nothing of it."""

    @abc.abstractmethod
    def take_ticket(self, host: str, now: float, earliest: float, gap_s: float) -> float:
        """A place in the host's waiting line: when a deferred item should come back, `gap_s` after the one
        before it, so waiting items return one by one instead of all at once."""


class TenantStore(abc.ABC):
    """Tenants by the hash of their API key (a key is never stored)."""

    @abc.abstractmethod
    def put_tenant(self, tenant_id: str, name: str, role: str, key_hash: str, now: float) -> None: ...

    @abc.abstractmethod
    def by_key_hash(self, key_hash: str) -> TenantRecord | None: ...


class WorkQueue(abc.ABC):
    """The SQS queues: fan-out chunks and one work message per item."""

    @abc.abstractmethod
    def send_fanout(self, messages: list[FanoutMessage], delay_s: int = 0) -> None: ...

    @abc.abstractmethod
    def send_work(self, messages: list[WorkMessage], delay_s: int = 0) -> None: ...

    @abc.abstractmethod
    def change_visibility(self, receipt_handle: str, seconds: int) -> None: ...


Sink = Callable[[bytes], bool]
HopCheck = Callable[[str], bool]


class Fetcher(abc.ABC):
    """HTTP through a proxy, under the SSRF guard and the byte and time caps."""

    @abc.abstractmethod
    def fetch(self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int) -> FetchResponse | FetchFailure:
        """Fetches through the proxy, following redirects hop by hop through the SSRF guard."""

    @abc.abstractmethod
    def fetch_stream(
        self, url: str, proxy_url: str | None, timeout_s: float, max_bytes: int, sink: Sink, on_hop: HopCheck
    ) -> FetchResponse | FetchFailure:
        """Like fetch, under the same rules, but a 2xx body goes to `sink` chunk by chunk (Content-Encoding
        decoded; the sink answers False to stop reading) instead of being summarised. `on_hop(url)` is asked
        before each redirect hop is fetched: False refuses it (FetchFailure `redirect_refused`)."""

    @abc.abstractmethod
    def probe(self, proxy_url: str) -> bool:
        """A cheap check that the proxy answers at all (verify before use)."""


class Clock(abc.ABC):
    """Wall time and sleeping, so use cases can be run on a fake clock."""

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
