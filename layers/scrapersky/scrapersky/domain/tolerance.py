"""Tolerated failures, as in a Step Functions map: when a batch has failed too much to go on."""

from __future__ import annotations

from typing import Any

REASON = "tolerated_failure_exceeded"
JUDGED_FROM = 20  # items finished before the tolerance is judged (or all of them, in a smaller batch)


def tolerates(options: dict[str, Any]) -> bool:
    return options.get("tolerated_failure_pct") is not None or options.get("tolerated_failure_count") is not None


def exceeded(options: dict[str, Any], succeeded: int, failed: int, cancelled: int, total: int) -> bool:
    """`failed > count` or `failed > pct / 100 * (succeeded + failed)`, once 20 items (or all) have finished."""
    finished = succeeded + failed + cancelled
    if finished < min(JUDGED_FROM, total):
        return False
    count, pct = options.get("tolerated_failure_count"), options.get("tolerated_failure_pct")
    if count is not None and failed > count:
        return True
    # multiplied out (failed * 100 > pct * finished-or-failed): no division, so no rounding at the boundary
    return pct is not None and failed * 100 > float(pct) * (succeeded + failed)
