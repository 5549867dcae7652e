"""FakeFollowStore: what options.follow keeps (robots.txt per host, a claim per URL, the child's chunks), and the
parent's follow state, set on the fake batch store's record."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from scrapersky.follow_ports import ENDED, FollowStore, KeptRobots

from tests.fakes.batches import FakeBatchStore
from tests.fakes.recording import Recorder, recorded


class FakeFollowStore(Recorder, FollowStore):
    def __init__(self, batches: FakeBatchStore) -> None:
        super().__init__()
        self.batches = batches
        self.kept: dict[tuple[str, str], KeptRobots] = {}
        self.claims: dict[tuple[str, str], str] = {}  # (batch, url) -> the item that claimed it
        self.chunks: dict[tuple[str, int], list[str]] = {}

    @recorded
    def keep_robots(self, batch_id: str, host: str, robots: KeptRobots, now: float) -> None:
        self.kept.setdefault((batch_id, host), robots)

    @recorded
    def robots(self, batch_id: str, hosts: list[str]) -> dict[str, KeptRobots]:
        return {h: self.kept[batch_id, h] for h in hosts if (batch_id, h) in self.kept}

    @recorded
    def claim(self, batch_id: str, urls: list[tuple[str, str]]) -> list[bool]:
        return [self.claims.setdefault((batch_id, url), item) == item for url, item in urls]

    @recorded
    def save_chunk(self, batch_id: str, first_seq: int, items: list[str], now: float) -> None:
        self.chunks[batch_id, first_seq] = list(items)

    @recorded
    def chunk(self, batch_id: str, first_seq: int) -> list[str]:
        return list(self.chunks.get((batch_id, first_seq), []))

    @recorded
    def begin(self, batch_id: str, state: dict[str, Any]) -> bool:
        batch = self.batches.batches[batch_id]
        if batch.follow is not None:
            return False
        self.batches.batches[batch_id] = replace(batch, follow=dict(state))
        return True

    @recorded
    def record(self, batch_id: str, state: dict[str, Any], child_batch_id: str | None) -> bool:
        batch = self.batches.batches[batch_id]
        if (batch.follow or {}).get("state") in ENDED:
            return False
        self.batches.batches[batch_id] = replace(batch, follow=dict(state), child_batch_id=child_batch_id)
        return True
