"""The sweeps port on the fake batch store: chunks kept per batch, unsent batches, group locks."""

from __future__ import annotations

from scrapersky.ports import Sweeps
from scrapersky.records import GroupLock

from tests.fakes.batches import FakeBatchStore
from tests.fakes.recording import Recorder, recorded


class FakeSweeps(Recorder, Sweeps):
    def __init__(self, batches: FakeBatchStore) -> None:
        super().__init__()
        self.batches = batches
        self.kept: dict[str, list[tuple[int, list[str]]]] = {}

    @recorded
    def save_chunks(self, batch_id: str, chunks: list[tuple[int, list[str]]], now: float) -> None:
        self.kept[batch_id] = [(first, list(items)) for first, items in chunks]

    @recorded
    def chunks(self, batch_id: str) -> list[tuple[int, list[str]]]:
        return list(self.kept.get(batch_id, []))

    @recorded
    def unsent(self, created_before: float, limit: int) -> list[str]:
        found = sorted(
            b.batch_id for b in self.batches.batches.values() if not b.fanout_sent and b.created_at < created_before
        )
        return found[:limit]

    @recorded
    def after_end_pending(self, created_before: float, limit: int) -> list[str]:
        marked = (self.batches.batches[b] for b in self.batches.after_end)
        return sorted(b.batch_id for b in marked if b.created_at < created_before)[:limit]

    @recorded
    def group_locks(self) -> list[GroupLock]:
        # a lock row stays when it is released (only `running` goes): every group ever locked or waited on
        groups = set(self.batches.locks) | set(self.batches.waiting)
        return [GroupLock(t, g, self.batches.locks.get((t, g))) for t, g in sorted(groups)]
