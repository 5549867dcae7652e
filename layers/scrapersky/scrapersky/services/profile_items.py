"""A profile item's claims: as a page item's, but its end also changes its target's history, in the same atomic
write (profile_ports.TargetHistory.finish), and a false<->true flip of the target fires its event."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from scrapersky.checks import CheckState, FinishedCheck, TargetError
from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.kinds.base import Unit
from scrapersky.kinds.profile import CHECKED_AT, check_spec
from scrapersky.profile_ports import TargetKey
from scrapersky.records import BatchRecord, ItemEnd, ItemError, ItemRef
from scrapersky.services.claims import ItemClaims, Result
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done
from scrapersky.services.target_events import emit_target_event


def finished_check(batch_id: str | None, o: Outcome, at: float) -> FinishedCheck:
    """What a finished item tells its target: its state (and the time of the fetch it was read from), or its error."""
    if o.kind is OutcomeKind.SUCCESS and o.result is not None:
        return FinishedCheck(batch_id, float(o.result.get(CHECKED_AT, at)), state=CheckState(o.result["state"]))
    code = o.code or "failed"
    return FinishedCheck(batch_id, at, error=TargetError(code, o.message or code, at))


def item_end(item: str, o: Outcome, result: dict[str, Any] | None) -> ItemEnd:
    succeeded = o.kind is OutcomeKind.SUCCESS
    error = None if succeeded else ItemError(o.code or "failed", o.message or o.code or "failed")
    return ItemEnd(succeeded=succeeded, item=item, error=error, http_status=o.http_status, result=result)


def record_checked_end(
    deps: Deps, batch: BatchRecord, ref: ItemRef, owner: str, end: ItemEnd, key: TargetKey, finished: FinishedCheck
) -> bool:
    """Ends the item claimed by `owner` with its target's history, then fires the target's event (if it flipped)."""
    detected = finished.state is CheckState.PRESENT
    shard_last = batch.shard_share(ref.shard) - 1
    done = deps.targets.finish(ref, owner, end, deps.clock.now(), shard_last, key, finished, detected)
    if done.applied and done.applied.shard_done:
        finish_if_done(deps, ref.batch_id)
    if done.event is not None:
        emit_target_event(deps, batch, done.event)
    return bool(done.applied)


def dead_letter_checked(deps: Deps, batch: BatchRecord, item: str, error: ItemError) -> None:
    """A profile item that ended failed from the dead-letter queue: its target counts the failure. Written after
    the item's end (which only a first settling wins), not with it: a crash in between misses one count."""
    if batch.kind != "profile":
        return
    now = deps.clock.now()
    key = TargetKey(batch.tenant_id, check_spec(batch.options).name, item)
    finished = FinishedCheck(batch.batch_id, now, error=TargetError(error.code, error.message, now))
    deps.targets.record(key, finished, now)


@dataclass
class ProfileClaims(ItemClaims):
    """The profile kind's item claims (services/worker.py picks them for kind profile)."""

    def __post_init__(self) -> None:
        self.key = TargetKey(self.batch.tenant_id, check_spec(self.batch.options).name, self.msg.item)

    def bind(self, owner: str, unit: Unit) -> Unit:
        deps = self.deps
        job = replace(unit.job, sessions=deps.sessions, fetcher=deps.check_fetcher, sleep=deps.clock.sleep)
        return replace(unit, job=job)

    def finish(self, owner: str, o: Outcome, metrics: dict[str, float]) -> Result:
        now = self.deps.clock.now()
        end = item_end(self.msg.item, o, self.processor.render(o.result))
        finished = finished_check(self.msg.batch_id, o, now)
        if record_checked_end(self.deps, self.batch, self.ref, owner, end, self.key, finished):
            metrics["succeeded" if end.succeeded else "failed"] = 1
        return Result("succeeded" if end.succeeded else f"failed:{o.code}", metrics=metrics)

    def record_given_up(self, owner: str, end: ItemEnd, error: ItemError) -> bool:
        now = self.deps.clock.now()
        finished = FinishedCheck(self.msg.batch_id, now, error=TargetError(error.code, error.message, now))
        return record_checked_end(self.deps, self.batch, self.ref, owner, end, self.key, finished)
