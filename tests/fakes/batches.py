"""FakeBatchStore: batch records, their counter shards, group locks (with a waiting line) and client tokens."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from scrapersky.domain.progress import iso
from scrapersky.models import BatchStatus
from scrapersky.ports import BatchStore
from scrapersky.records import BatchRecord, ErrorSample, ItemError, ShardCounts

from tests.fakes.paging import Cursors
from tests.fakes.recording import Recorder, recorded

MAX_SAMPLES = 3  # error samples kept per shard, as the real store does


@dataclass
class Shard:
    """One counter shard as stored: `finished` (every terminal change) tells a shard's last item."""

    total: int
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    in_progress: int = 0
    retries: int = 0
    detected: int = 0
    finished: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[ErrorSample] = field(default_factory=list)
    updated_at: float | None = None

    def count(self, now: float, **deltas: int) -> None:
        for name, delta in deltas.items():
            setattr(self, name, getattr(self, name) + delta)
        self.updated_at = now

    def count_error(self, item: str, error: ItemError, now: float) -> None:
        self.errors[error.code] = self.errors.get(error.code, 0) + 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(ErrorSample(item, error.code, error.message, iso(now) or ""))

    def view(self) -> ShardCounts:
        return ShardCounts(
            total=self.total,
            succeeded=self.succeeded,
            failed=self.failed,
            cancelled=self.cancelled,
            in_progress=self.in_progress,
            retries=self.retries,
            detected=self.detected,
            errors=dict(self.errors),
            samples=tuple(self.samples),
            updated_at=self.updated_at,
        )


class FakeBatchStore(Recorder, BatchStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches: dict[str, BatchRecord] = {}
        self.shards: dict[str, list[Shard]] = {}
        self.tokens: dict[tuple[str, str], str] = {}  # (tenant, client token) -> batch id
        self.locks: dict[tuple[str, str], str] = {}  # (tenant, group) -> the running batch
        self.waiting: dict[tuple[str, str], set[str]] = {}  # (tenant, group) -> batches queued behind the lock
        self.after_end: set[str] = set()  # ended batches whose after-end messages may not be sent
        self._cursors = Cursors()

    # ---- port ---------------------------------------------------------------------------------------------
    @recorded
    def create(
        self, batch: BatchRecord, shard_totals: list[int], client_token: str | None, take_group: bool
    ) -> tuple[BatchRecord, bool]:
        if client_token and (batch.tenant_id, client_token) in self.tokens:
            return self.batches[self.tokens[batch.tenant_id, client_token]], False
        if batch.batch_id in self.batches:
            raise ValueError(f"batch {batch.batch_id} exists")
        record = replace(batch, shards=len(shard_totals))
        if take_group and batch.group:
            key = (batch.tenant_id, batch.group)
            if self.locks.get(key, batch.batch_id) == batch.batch_id:
                self.locks[key] = batch.batch_id
            else:
                record = replace(record, status=BatchStatus.QUEUED, auto_start=True)
                self.waiting.setdefault(key, set()).add(batch.batch_id)
        self.batches[batch.batch_id] = record
        self.shards[batch.batch_id] = [Shard(total=t) for t in shard_totals]
        if client_token:
            self.tokens[batch.tenant_id, client_token] = batch.batch_id
        return record, True

    @recorded
    def get(self, batch_id: str) -> BatchRecord | None:
        return self.batches.get(batch_id)

    @recorded
    def get_with_counts(self, batch_id: str) -> tuple[BatchRecord, list[ShardCounts]] | None:
        if batch_id not in self.batches:
            return None
        return self.batches[batch_id], self.counts(batch_id)

    @recorded
    def start(self, batch_id: str, now: float) -> bool:
        return self._move(batch_id, (BatchStatus.QUEUED,), BatchStatus.PENDING, now, auto_start=False)

    @recorded
    def begin_processing(self, batch_id: str, now: float) -> bool:
        return self._move(batch_id, (BatchStatus.PENDING,), BatchStatus.PROCESSING, now, started_at=now)

    @recorded
    def end(self, batch_id: str, status: BatchStatus, now: float, from_status: tuple[BatchStatus, ...]) -> bool:
        if not self._move(batch_id, from_status, status, now, completed_at=now):
            return False
        if self.batches[batch_id].fanout_sent:  # one mark at a time, as the store's `unsent`: "U" stays first
            self.after_end.add(batch_id)
        return True

    @recorded
    def after_end_sent(self, batch_id: str) -> None:
        self.after_end.discard(batch_id)

    @recorded
    def mark_fanout_sent(self, batch_id: str) -> None:
        self.batches[batch_id] = replace(self.batches[batch_id], fanout_sent=True)

    @recorded
    def mark_exported(self, batch_id: str, keys: dict[str, str]) -> None:
        self.batches[batch_id] = replace(self.batches[batch_id], result_keys=dict(keys))

    @recorded
    def take_group(self, tenant_id: str, group: str, batch_id: str) -> bool:
        if self.locks.get((tenant_id, group), batch_id) != batch_id:
            return False
        self.locks[tenant_id, group] = batch_id
        return True

    @recorded
    def release_group(self, tenant_id: str, group: str, batch_id: str) -> bool:
        if self.locks.get((tenant_id, group)) != batch_id:
            return False
        del self.locks[tenant_id, group]
        return True

    @recorded
    def next_waiting_in_group(self, tenant_id: str, group: str, after: str | None = None) -> str | None:
        return min((b for b in self.waiting.get((tenant_id, group), ()) if after is None or b > after), default=None)

    # ---- for the item store and for tests ---------------------------------------------------------------------
    def shard(self, batch_id: str, shard: int) -> Shard:
        """The stored counter shard; a change counted on a shard that does not exist fails, as its write would."""
        try:
            return self.shards[batch_id][shard]
        except (KeyError, IndexError):
            raise KeyError(f"no counter shard {shard} for batch {batch_id}") from None

    def counts(self, batch_id: str) -> list[ShardCounts]:
        return [s.view() for s in self.shards.get(batch_id, [])]

    def totals(self, batch_id: str) -> Shard:
        """Every shard of the batch added up (samples and errors included): what a test asserts on."""
        out = Shard(total=0)
        for s in self.shards.get(batch_id, []):
            out.count(
                s.updated_at or 0.0,
                total=s.total,
                succeeded=s.succeeded,
                failed=s.failed,
                cancelled=s.cancelled,
                in_progress=s.in_progress,
                retries=s.retries,
                finished=s.finished,
            )
            for code, n in s.errors.items():
                out.errors[code] = out.errors.get(code, 0) + n
            out.samples.extend(s.samples)
        return out

    def _move(
        self, batch_id: str, from_status: tuple[BatchStatus, ...], to: BatchStatus, now: float, **fields: Any
    ) -> bool:
        b = self.batches.get(batch_id)
        if b is None or b.status not in from_status:
            return False
        self.batches[batch_id] = replace(b, status=to, updated_at=now, **fields)
        if to is not BatchStatus.QUEUED and b.group:
            self.waiting.get((b.tenant_id, b.group), set()).discard(batch_id)
        return True

    # last in the class: a method named `list` shadows the builtin in the annotations after it
    @recorded
    def list(
        self, tenant_id: str, limit: int, cursor: str | None, status: BatchStatus | None, group: str | None
    ) -> tuple[list[tuple[BatchRecord, list[ShardCounts]]], str | None]:
        rows = sorted(
            (
                b
                for b in self.batches.values()
                if b.tenant_id == tenant_id and status in (None, b.status) and group in (None, b.group)
            ),
            key=lambda b: b.batch_id,
            reverse=True,  # batch ids sort by creation time: newest first
        )
        scope = f"batches:{tenant_id}"  # like a start key: good for any filter of the same listing
        page, nxt = self._cursors.page(scope, rows, lambda b: b.batch_id, limit, cursor, descending=True)
        return [(b, self.counts(b.batch_id)) for b in page], nxt
