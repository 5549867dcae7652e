"""Item transitions as the domain speaks of them; each is one conditional write with its counters."""

from __future__ import annotations

from typing import Any

from scrapersky.domain.progress import ERROR_PREFIX, iso
from scrapersky.ports import Applied, Transition
from scrapersky.services.context import Deps


def finish(
    deps: Deps,
    batch_id: str,
    seq: int,
    shard: int,
    token: str | None,
    from_status: str,
    *,
    succeeded: bool,
    item: str,
    code: str | None = None,
    message: str | None = None,
    http_status: int | None = None,
    result: dict[str, Any] | None = None,
    attempts_add: int = 1,
    create_if_missing: dict[str, Any] | None = None,
    shard_last: int | None = None,
) -> Applied:
    now = deps.clock.now()
    counters = {"succeeded" if succeeded else "failed": 1}
    if from_status == "in_progress":
        counters["in_progress"] = -1
    fields: dict[str, Any] = {"finished_at": now}
    if http_status is not None:
        fields["http_status"] = http_status
    if result is not None:
        fields["result"] = result
    sample = None
    if not succeeded:
        code = code or "failed"
        fields["error_code"] = code
        fields["error_message"] = (message or code)[:500]
        counters[ERROR_PREFIX + code] = 1
        sample = {"item": item, "code": code, "message": fields["error_message"], "at": iso(now)}
    return deps.store.transition(
        Transition(
            batch_id,
            seq,
            shard,
            "succeeded" if succeeded else "failed",
            (from_status,),
            token,
            set_fields=fields,
            add_fields={"attempts": attempts_add} if attempts_add else {},
            remove_fields=("claim", "claim_until"),
            counters=counters,
            error_sample=sample,
            now=now,
            create_if_missing=create_if_missing,
            shard_last=shard_last,
        )
    )


def back_to_pending(
    deps: Deps,
    batch_id: str,
    seq: int,
    shard: int,
    token: str,
    *,
    attempt_spent: bool,
    proxy_id: str | None,
    code: str | None,
    message: str | None,
) -> Applied:
    """A retry (attempt_spent) or a rate-limit deferral: the item waits in the queue again."""
    now = deps.clock.now()
    fields: dict[str, Any] = {}
    if proxy_id:
        fields["last_proxy"] = proxy_id
    if code:
        fields["last_error"] = f"{code}: {message or ''}"[:300]
    return deps.store.transition(
        Transition(
            batch_id,
            seq,
            shard,
            "pending",
            ("in_progress",),
            token,
            set_fields=fields,
            add_fields={"attempts" if attempt_spent else "deferrals": 1},
            remove_fields=("claim", "claim_until"),
            counters={"in_progress": -1, "retries": 1},
            now=now,
        )
    )


def cancel(deps: Deps, batch_id: str, seq: int, shard: int, claimed_by: str | None = None) -> Applied:
    """Ends an item cancelled: one that has not started, or one this delivery holds the claim of (taken over
    from a crashed worker)."""
    now = deps.clock.now()
    return deps.store.transition(
        Transition(
            batch_id,
            seq,
            shard,
            "cancelled",
            ("in_progress",) if claimed_by else ("pending",),
            claimed_by,
            set_fields={"finished_at": now},
            remove_fields=("claim", "claim_until") if claimed_by else (),
            counters={"cancelled": 1, "in_progress": -1} if claimed_by else {"cancelled": 1},
            now=now,
        )
    )


def fail_whatever_state(
    deps: Deps, batch_id: str, seq: int, shard: int, item: str, tenant_id: str, code: str, message: str
) -> bool:
    """Ends an item as failed from whatever non-terminal state it is in (the DLQ path). Never double-counts."""
    for _ in range(8):
        rec = deps.store.get_item(batch_id, seq)
        if rec is None:
            template = {
                "seq": seq,
                "item": item,
                "shard": shard,
                "attempts": 0,
                "deferrals": 0,
                "created_at": deps.clock.now(),
            }
            if finish(
                deps,
                batch_id,
                seq,
                shard,
                None,
                "pending",
                succeeded=False,
                item=item,
                code=code,
                message=message,
                attempts_add=0,
                create_if_missing=template,
            ):
                return True
            continue
        if rec["status"] in ("succeeded", "failed", "cancelled"):
            return False
        if finish(
            deps,
            batch_id,
            seq,
            shard,
            rec.get("claim") if rec["status"] == "in_progress" else None,
            rec["status"],
            succeeded=False,
            item=item,
            code=code,
            message=message,
            attempts_add=0,
        ):
            return True
    return False
