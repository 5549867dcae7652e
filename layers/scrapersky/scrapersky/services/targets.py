"""GET /checks/{name}/targets[/{target}]: each profile target's history, for its tenant only."""

from __future__ import annotations

from typing import Any

from scrapersky.checks import TargetRecord
from scrapersky.domain.progress import iso
from scrapersky.errors import NotFound
from scrapersky.profile_ports import TargetKey
from scrapersky.services.context import Deps


def target_view(rec: TargetRecord) -> dict[str, Any]:
    error = rec.last_error
    return {
        "target": rec.target,
        "check": rec.check,
        "active": rec.active,
        "active_since": iso(rec.active_since),
        "last_detected_at": iso(rec.last_detected_at),
        "last_checked_at": iso(rec.last_checked_at),
        "last_state": rec.last_state.value if rec.last_state else None,
        "checks": rec.checks,
        "detections": rec.detections,
        "consecutive_errors": rec.consecutive_errors,
        "last_error": {"code": error.code, "message": error.message, "at": iso(error.at)} if error else None,
        "last_batch_id": rec.last_batch_id,
    }


def _unknown(check: str) -> NotFound:
    return NotFound(f"check '{check}' not found")


def list_targets(
    deps: Deps, tenant_id: str, check: str, active: bool | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    found, next_cursor = deps.targets.list(tenant_id, check, active, limit, cursor)
    if not found and cursor is None and not deps.targets.known_check(tenant_id, check):
        raise _unknown(check)
    return {"targets": [target_view(r) for r in found], "next_cursor": next_cursor}


def get_target(deps: Deps, tenant_id: str, check: str, target: str) -> dict[str, Any]:
    rec = deps.targets.get(TargetKey(tenant_id, check, target))
    if rec is None:
        if not deps.targets.known_check(tenant_id, check):
            raise _unknown(check)
        raise NotFound(f"target '{target}' of check '{check}' not found")
    return target_view(rec)
