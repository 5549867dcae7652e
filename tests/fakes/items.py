"""FakeItemStore: item records whose every change is conditional on the item's status (and claim) and counts
on the batch's counter shard in the same step, as the real store's transaction does."""

from __future__ import annotations

from dataclasses import replace

from scrapersky.models import ItemStatus
from scrapersky.ports import Applied, Claim, ClaimRefused, ItemStore
from scrapersky.records import BatchRecord, ItemEnd, ItemError, ItemRecord, ItemRef

from tests.fakes.batches import FakeBatchStore, Shard
from tests.fakes.paging import Cursors
from tests.fakes.recording import Recorder, recorded

MAX_MESSAGE = 500  # the real store keeps this much of an error message


class FakeItemStore(Recorder, ItemStore):
    """Counts on the shards of `batches`, the batch store it is built with: FakeItemStore(FakeBatchStore())."""

    def __init__(self, batches: FakeBatchStore) -> None:
        super().__init__()
        self.batches = batches
        self.items: dict[tuple[str, int], ItemRecord] = {}
        self._cursors = Cursors()

    @recorded
    def put_pending(self, batch: BatchRecord, first_seq: int, items: list[str], now: float) -> list[tuple[int, str]]:
        pending = []
        for seq, item in enumerate(items, start=first_seq):
            key = (batch.batch_id, seq)
            if key not in self.items:
                self.items[key] = ItemRecord(
                    batch.batch_id, seq, batch.shard_of(seq), item, ItemStatus.PENDING, created_at=now
                )
            if self.items[key].status is ItemStatus.PENDING:
                pending.append((seq, item))
        return pending

    @recorded
    def pending(self, batch_id: str, cursor: str | None, limit: int) -> tuple[list[ItemRecord], str | None]:
        return self._page(batch_id, ItemStatus.PENDING, limit, cursor)

    @recorded
    def query(
        self, batch_id: str, status: ItemStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[ItemRecord], str | None]:
        return self._page(batch_id, status, limit, cursor)

    @recorded
    def get(self, batch_id: str, seq: int) -> ItemRecord | None:
        return self.items.get((batch_id, seq))

    @recorded
    def claim(self, ref: ItemRef, token: str, until: float, now: float) -> Claim | ClaimRefused:
        rec = self.items.get((ref.batch_id, ref.seq))
        if rec is None or rec.status.terminal:
            return ClaimRefused(terminal=True)
        if rec.status is ItemStatus.IN_PROGRESS:
            if rec.claim_until is not None and rec.claim_until >= now:
                return ClaimRefused(terminal=False, busy_until=rec.claim_until)
            # the claim of a crashed delivery lapsed: take it over, the counters already count it in progress
            self._put(replace(rec, claim=token, claim_until=until))
        else:
            self._shard(ref).count(now, in_progress=1)
            self._put(
                replace(
                    rec,
                    status=ItemStatus.IN_PROGRESS,
                    claim=token,
                    claim_until=until,
                    started_at=rec.started_at if rec.started_at is not None else now,
                )
            )
        return Claim(token, rec.attempts, rec.deferrals, rec.last_proxy)

    @recorded
    def finish(self, ref: ItemRef, token: str, end: ItemEnd, now: float, shard_last: int | None = None) -> Applied:
        rec = self._held(ref, token)
        if rec is None:
            return Applied(False)
        error = None if end.succeeded else _short(end.error or ItemError("failed", "failed"))
        shard = self._shard(ref)
        done = self._ended(shard, end.item, error, now, shard_last, in_progress=-1)
        self._put(
            replace(
                rec,
                status=ItemStatus.SUCCEEDED if end.succeeded else ItemStatus.FAILED,
                attempts=rec.attempts + (1 if end.attempt_spent else 0),
                claim=None,
                claim_until=None,
                error=error,
                http_status=end.http_status if end.http_status is not None else rec.http_status,
                result=end.result if end.result is not None else rec.result,
                finished_at=now,
            )
        )
        return Applied(True, shard_done=done)

    @recorded
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
        rec = self._held(ref, token)
        if rec is None:
            return Applied(False)
        self._shard(ref).count(now, in_progress=-1, retries=1)
        self._put(
            replace(
                rec,
                status=ItemStatus.PENDING,
                attempts=rec.attempts + (1 if attempt_spent else 0),
                deferrals=rec.deferrals + (0 if attempt_spent else 1),
                claim=None,
                claim_until=None,
                last_proxy=proxy_id or rec.last_proxy,
                error=_short(error) if error else rec.error,
            )
        )
        return Applied(True)

    @recorded
    def cancel(self, ref: ItemRef, now: float, claimed_by: str | None = None) -> Applied:
        rec = self.items.get((ref.batch_id, ref.seq))
        if claimed_by is None:
            if rec is None or rec.status is not ItemStatus.PENDING:
                return Applied(False)
            done = self._ended(self._shard(ref), rec.item, None, now, None, cancelled=1)
        else:
            rec = self._held(ref, claimed_by)
            if rec is None:
                return Applied(False)
            done = self._ended(self._shard(ref), rec.item, None, now, None, cancelled=1, in_progress=-1)
        self._put(replace(rec, status=ItemStatus.CANCELLED, claim=None, claim_until=None, finished_at=now))
        return Applied(True, shard_done=done)

    @recorded
    def fail_from_dead_letter(self, ref: ItemRef, item: str, error: ItemError, now: float) -> Applied:
        rec = self.items.get((ref.batch_id, ref.seq))
        if rec is not None and rec.status.terminal:
            return Applied(False)
        error = _short(error)
        was_in_progress = rec is not None and rec.status is ItemStatus.IN_PROGRESS
        shard = self._shard(ref)
        done = self._ended(shard, item, error, now, None, in_progress=-1 if was_in_progress else 0)
        if rec is None:  # a dead-lettered chunk: the item was never stored
            rec = ItemRecord(ref.batch_id, ref.seq, ref.shard, item, ItemStatus.PENDING, created_at=now)
        self._put(replace(rec, status=ItemStatus.FAILED, claim=None, claim_until=None, error=error, finished_at=now))
        return Applied(True, shard_done=done)

    # ---- for tests --------------------------------------------------------------------------------------------
    def record(self, batch_id: str, seq: int) -> ItemRecord:
        """The stored item (without recording a call); KeyError when there is none."""
        return self.items[batch_id, seq]

    def statuses(self, batch_id: str) -> dict[int, ItemStatus]:
        return {seq: r.status for (bid, seq), r in sorted(self.items.items()) if bid == batch_id}

    # ---- the one place a terminal change is counted ---------------------------------------------------------------
    def _ended(
        self,
        shard: Shard,
        item: str,
        error: ItemError | None,
        now: float,
        shard_last: int | None,
        *,
        in_progress: int = 0,
        cancelled: int = 0,
    ) -> bool:
        """Counts an item's end on its shard; True when it was the shard's last item. `shard_last` (the index
        of the shard's last item) is what the real store's guard compares with; without it the shard's total is."""
        before = shard.finished
        outcome = {"cancelled": 1} if cancelled else {"failed": 1} if error else {"succeeded": 1}
        shard.count(now, finished=1, in_progress=in_progress, **outcome)
        if error is not None:
            shard.count_error(item, error, now)
        return before >= shard_last if shard_last is not None else shard.finished >= shard.total

    def _held(self, ref: ItemRef, token: str) -> ItemRecord | None:
        rec = self.items.get((ref.batch_id, ref.seq))
        if rec is None or rec.status is not ItemStatus.IN_PROGRESS or rec.claim != token:
            return None
        return rec

    def _shard(self, ref: ItemRef) -> Shard:
        return self.batches.shard(ref.batch_id, ref.shard)

    def _put(self, rec: ItemRecord) -> None:
        self.items[rec.batch_id, rec.seq] = rec

    def _page(
        self, batch_id: str, status: ItemStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[ItemRecord], str | None]:
        rows = [r for (bid, _), r in sorted(self.items.items()) if bid == batch_id and status in (None, r.status)]
        return self._cursors.page(f"items:{batch_id}", rows, lambda r: f"{r.seq:09d}", limit, cursor)


def _short(error: ItemError) -> ItemError:
    return ItemError(error.code, (error.message or error.code)[:MAX_MESSAGE])
