"""Batch progress from the batch record and its counter shards: O(shards), never O(items)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scrapersky.models import BatchStatus
from scrapersky.records import BatchRecord, ErrorSample, ShardCounts

COUNTERS = ("succeeded", "failed", "cancelled", "in_progress", "retries")
MAX_ERROR_SAMPLES = 5


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Counts:
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    in_progress: int = 0
    retries: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    updated_at: float | None = None

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @classmethod
    def from_shards(cls, shards: list[ShardCounts]) -> Counts:
        c = cls()
        samples: list[ErrorSample] = []
        for s in shards:
            for name in COUNTERS:
                setattr(c, name, getattr(c, name) + getattr(s, name))
            for code, n in s.errors.items():
                if n:
                    c.by_code[code] = c.by_code.get(code, 0) + n
            samples.extend(s.samples)
            if s.updated_at is not None:
                c.updated_at = max(c.updated_at or 0.0, s.updated_at)
        samples.sort(key=lambda x: x.at)
        c.samples = [{"item": x.item, "code": x.code, "message": x.message, "at": x.at} for x in samples]
        c.samples = c.samples[:MAX_ERROR_SAMPLES]
        # Clamp so a reader never sees the sum invariant broken, whatever order shards were read in.
        c.in_progress = max(0, c.in_progress)
        return c


def decide_final_status(counts: Counts, total: int) -> BatchStatus | None:
    """The terminal status once every item is finished, else None."""
    if counts.finished < total:
        return None
    if counts.failed == 0 and counts.succeeded > 0:
        return BatchStatus.COMPLETED
    if counts.succeeded == 0 and counts.failed > 0:
        return BatchStatus.FAILED
    if counts.succeeded == 0 and counts.failed == 0:
        return BatchStatus.CANCELLED
    return BatchStatus.PARTIAL


def batch_view(batch: BatchRecord, counts: Counts, now: float) -> dict[str, Any]:
    """The public shape of GET /batches/{id}."""
    total = batch.total_items
    status = batch.status
    finished = min(total, counts.finished)
    in_progress = min(counts.in_progress, total - finished)
    pending = total - finished - in_progress
    started, completed = batch.started_at, batch.completed_at
    duration = round((completed or now) - started, 3) if started else None
    throughput, eta = _pace(counts, finished, total, duration, now, status.terminal)
    if status.terminal:
        eta = completed
    return {
        "batch_id": batch.batch_id,
        "kind": batch.kind,
        "group": batch.group,
        "status": status.value,
        "total_items": total,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "in_progress": in_progress,
        "pending": pending,
        "retries": counts.retries,
        "progress_pct": round(finished / total * 100, 2) if total else 100.0,
        "created_at": iso(batch.created_at),
        "started_at": iso(started),
        "updated_at": iso(max(batch.updated_at or 0.0, counts.updated_at or 0.0) or None),
        "completed_at": iso(completed),
        "duration_s": duration,
        "throughput_per_min": throughput,
        "estimated_completion_time": iso(eta),
        "errors": {"by_code": dict(sorted(counts.by_code.items())), "sample": counts.samples},
        "rejected_items": batch.rejected_count,
        "duplicate_items": batch.duplicate_items,
        "options": batch.options,
        "results_url": None,
    }


def _pace(
    counts: Counts, finished: int, total: int, duration: float | None, now: float, terminal: bool
) -> tuple[float | None, float | None]:
    """Items per minute so far and the estimated completion time; the throughput counts the items that were
    worked on (cancelled ones were not)."""
    processed_here = finished - counts.cancelled
    if not duration or duration <= 0 or processed_here <= 0:
        return None, None
    rate = processed_here / duration
    eta = now + (total - finished) / rate if not terminal and finished < total else None
    return round(rate * 60, 2), eta
