"""Batch progress from the batch record and its counter shards: O(shards), never O(items)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from scrapersky.models import BatchStatus
from scrapersky.records import BatchRecord, ShardCounts

MAX_ERROR_SAMPLES = 5


def iso(ts: float | None) -> str | None:
    return None if ts is None else iso_at(ts)


def iso_at(ts: float) -> str:
    """An epoch time as ISO 8601 UTC with milliseconds (`2026-12-04T20:11:21.171Z`)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def total(shards: list[ShardCounts]) -> ShardCounts:
    """The batch's counts: its shards added up, with the earliest few error samples."""

    def added(name: str) -> int:
        return sum(getattr(s, name) for s in shards)

    errors: Counter[str] = Counter()
    for s in shards:
        errors.update({code: n for code, n in s.errors.items() if n})
    samples = sorted((x for s in shards for x in s.samples), key=lambda x: x.at)[:MAX_ERROR_SAMPLES]
    return ShardCounts(
        total=added("total"),
        succeeded=added("succeeded"),
        failed=added("failed"),
        cancelled=added("cancelled"),
        # clamped so a reader never sees the sum invariant broken, whatever order shards were read in
        in_progress=max(0, added("in_progress")),
        retries=added("retries"),
        detected=added("detected"),
        errors=dict(errors),
        samples=tuple(samples),
        updated_at=max((s.updated_at for s in shards if s.updated_at is not None), default=None),
    )


def decide_final_status(counts: ShardCounts, total: int) -> BatchStatus | None:
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


def _family(batch: BatchRecord) -> dict[str, Any]:
    """A sitemap batch's child (options.follow) and how it was followed, or a child's parent."""
    follows = bool(batch.options.get("follow"))
    return {
        "parent_batch_id": batch.parent_batch_id,
        "child_batch_id": batch.child_batch_id,
        "skipped_robots": (batch.follow or {}).get("skipped_robots", 0) if follows else None,
        "follow": batch.follow,  # None until discovery ended and following began
    }


def batch_view(batch: BatchRecord, counts: ShardCounts, now: float) -> dict[str, Any]:
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
    view = {
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
        "errors": {"by_code": dict(sorted(counts.errors.items())), "sample": [asdict(x) for x in counts.samples]},
        "rejected_items": batch.rejected_count,
        "duplicate_items": batch.duplicate_items,
        "options": batch.options,
        "reason": batch.stop_reason,  # why it stopped early (tolerated_failure_exceeded), else null
        **_family(batch),
        "results_url": None,  # set once the ended batch's export is published (services/batches.py)
        "results_csv_url": None,
    }
    if batch.kind == "profile":
        view["detected"] = counts.detected  # items whose state is present
    return view


def _pace(
    counts: ShardCounts, finished: int, total: int, duration: float | None, now: float, terminal: bool
) -> tuple[float | None, float | None]:
    """Items per minute so far and the estimated completion time; the throughput counts the items that were
    worked on (cancelled ones were not)."""
    processed_here = finished - counts.cancelled
    if not duration or duration <= 0 or processed_here <= 0:
        return None, None
    rate = processed_here / duration
    eta = now + (total - finished) / rate if not terminal and finished < total else None
    return round(rate * 60, 2), eta
