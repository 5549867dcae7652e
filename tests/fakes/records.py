"""Records to seed the fakes with."""

from __future__ import annotations

from typing import Any

from scrapersky.models import BatchStatus, Kind
from scrapersky.records import BatchRecord

from tests.fakes.clock import EPOCH


def batch_id(n: int) -> str:
    """A valid, time-sortable batch id: batch_id(2) sorts after (is newer than) batch_id(1)."""
    return f"b_{n:020d}"


def batch_record(
    n: int = 1,
    *,
    tenant_id: str = "t_acme",
    total_items: int = 3,
    shards: int = 1,
    status: BatchStatus = BatchStatus.PENDING,
    kind: Kind = "page",
    group: str | None = None,
    created_at: float = EPOCH,
    **fields: Any,
) -> BatchRecord:
    return BatchRecord(
        batch_id=batch_id(n),
        tenant_id=tenant_id,
        kind=kind,
        status=status,
        total_items=total_items,
        shards=shards,
        created_at=created_at,
        updated_at=created_at,
        group=group,
        **fields,
    )


def shard_totals(total: int, shards: int) -> list[int]:
    """Each shard's share of `total` items (seq % shards), as the batches service computes it."""
    return [len(range(s, total, shards)) for s in range(shards)]
