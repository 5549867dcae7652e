"""Sweeps on the batches table: the fan-out chunks kept for re-sending, and the sparse indexes the maintenance
reads (`unsent`: batches whose chunks are not all sent, or ended ones whose after-end messages may not be;
`groups`: group lock rows). See batch_table.py."""

from __future__ import annotations

import time
from typing import Any

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import de_item, query_all, ser_item
from scrapersky.errors import RetryableStoreError
from scrapersky.ports import Sweeps
from scrapersky.records import GroupLock

_WRITE_BATCH = 25  # BatchWriteItem's limit
_WRITE_TRIES = 8


class DynamoSweeps(Sweeps):
    def __init__(self, table_name: str, client: Any, retention_s: float = bt.DEFAULT_RETENTION_S) -> None:
        self.table = table_name
        self.ddb = client
        self.retention_s = retention_s

    def save_chunks(self, batch_id: str, chunks: list[tuple[int, list[str]]], now: float) -> None:
        expires = bt.expires_at(now, self.retention_s)
        rows = [
            {
                "pk": bt.chunk_pk(batch_id, bt.chunk_part(first)),
                "sk": bt.chunk_sk(first),
                "items": items,
                bt.EXPIRES_AT: expires,
            }
            for first, items in chunks
        ]
        for start in range(0, len(rows), _WRITE_BATCH):
            pending = [{"PutRequest": {"Item": ser_item(r)}} for r in rows[start : start + _WRITE_BATCH]]
            for attempt in range(_WRITE_TRIES):  # a throttled part comes back as UnprocessedItems: write it again
                got = self.ddb.batch_write_item(RequestItems={self.table: pending})
                pending = got.get("UnprocessedItems", {}).get(self.table, [])
                if not pending:
                    break
                time.sleep(0.02 * 2**attempt)
            if pending:
                raise RetryableStoreError(f"{len(pending)} fan-out chunks could not be kept")

    def chunks(self, batch_id: str) -> list[tuple[int, list[str]]]:
        """Every kept chunk in seq order, from each of the batch's chunk partitions (rare: a sweep's read)."""
        rows: list[dict[str, Any]] = []
        for part in range(bt.CHUNK_PARTITIONS):
            kwargs = bt.query_kwargs(
                self.table,
                "pk = {p} AND begins_with(sk, {f})",
                {"p": bt.chunk_pk(batch_id, part), "f": bt.CHUNK_PREFIX},
            )
            rows += query_all(self.ddb, **kwargs, ConsistentRead=True)
        found = [(int(r["sk"][len(bt.CHUNK_PREFIX) :]), list(r["items"])) for r in rows]
        return sorted(found, key=lambda chunk: chunk[0])

    def unsent(self, created_before: float, limit: int) -> list[str]:
        return self._marked("U", created_before, limit)

    def after_end_pending(self, created_before: float, limit: int) -> list[str]:
        return self._marked(bt.AFTER_END, created_before, limit)

    def _marked(self, mark: str, created_before: float, limit: int) -> list[str]:
        # batch ids sort by creation time (their first 12 hex digits are the creation in ms)
        bound = f"b_{int(created_before * 1000):012x}"
        kwargs = bt.query_kwargs(self.table, "unsent = {u} AND gsi1sk < {b}", {"u": mark, "b": bound})
        page = self.ddb.query(**kwargs, IndexName=bt.UNSENT, Limit=limit)
        return [str((de_item(i) or {})["gsi1sk"]) for i in page.get("Items", [])]

    def group_locks(self) -> list[GroupLock]:
        kwargs = bt.query_kwargs(self.table, "grp = {g}", {"g": "G"})
        rows = query_all(self.ddb, **kwargs, IndexName=bt.GROUPS_INDEX)
        return [GroupLock(str(r["tenant_id"]), str(r["group"]), r.get("running")) for r in rows]
