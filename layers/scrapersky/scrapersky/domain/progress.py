"""Batch progress from the batch record and its counter shards: O(shards), never O(items)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scrapersky.models import BatchStatus

COUNTERS = ("succeeded", "failed", "cancelled", "in_progress", "retries")
ERROR_PREFIX = "e_"
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
    def from_shards(cls, shards: list[dict[str, Any]]) -> Counts:
        c = cls()
        for s in shards:
            for name in COUNTERS:
                setattr(c, name, getattr(c, name) + int(s.get(name, 0)))
            for k, v in s.items():
                if k.startswith(ERROR_PREFIX) and int(v):
                    code = k[len(ERROR_PREFIX) :]
                    c.by_code[code] = c.by_code.get(code, 0) + int(v)
            c.samples.extend(s.get("error_samples", []))
            if s.get("updated_at") is not None:
                c.updated_at = max(c.updated_at or 0.0, float(s["updated_at"]))
        c.samples.sort(key=lambda x: x.get("at", ""))
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


def batch_view(meta: dict[str, Any], counts: Counts, now: float) -> dict[str, Any]:
    """The public shape of GET /batches/{id}."""
    total = int(meta["total_items"])
    status = BatchStatus(meta["status"])
    finished = min(total, counts.finished)
    in_progress = min(counts.in_progress, total - finished)
    pending = total - finished - in_progress
    started = _f(meta.get("started_at"))
    completed = _f(meta.get("completed_at"))
    end = completed or now
    duration = round(end - started, 3) if started else None
    throughput = None
    eta = None
    processed_here = finished - counts.cancelled  # throughput counts the items that were worked on
    if started and duration and duration > 0 and processed_here > 0:
        throughput = round(processed_here / duration * 60, 2)
        if not status.terminal and finished < total:
            eta = now + (total - finished) / (processed_here / duration)
    if status.terminal:
        eta = completed
    return {
        "batch_id": meta["batch_id"],
        "kind": meta.get("kind", "page"),
        "group": meta.get("group"),
        "status": status.value,
        "total_items": total,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "in_progress": in_progress,
        "pending": pending,
        "retries": counts.retries,
        "progress_pct": round(finished / total * 100, 2) if total else 100.0,
        "created_at": iso(_f(meta.get("created_at"))),
        "started_at": iso(started),
        "updated_at": iso(max(_f(meta.get("updated_at")) or 0.0, counts.updated_at or 0.0) or None),
        "completed_at": iso(completed),
        "duration_s": duration,
        "throughput_per_min": throughput,
        "estimated_completion_time": iso(eta),
        "errors": {"by_code": dict(sorted(counts.by_code.items())), "sample": counts.samples},
        "rejected_items": int(meta.get("rejected_count", 0)),
        "duplicate_items": int(meta.get("duplicate_items", 0)),
        "options": meta.get("options", {}),
        "results_url": None,
    }


def _f(v: Any) -> float | None:
    return None if v is None else float(v)
