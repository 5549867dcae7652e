"""What a delivery holds while its unit of work runs, and how it records the unit's end.

For most kinds the unit is the item: the item record is claimed, requeued and finished (ItemClaims). A kind whose
item spans many units (sitemap: one per document) claims each unit on a row of its own and ends the item when
its last unit is done (services/documents.py). The delivery (services/worker.py) leases, paces, defers and
retries the same way for both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from scrapersky.domain.outcomes import Outcome, OutcomeKind
from scrapersky.kinds.base import KindProcessor, Unit
from scrapersky.models import WorkMessage
from scrapersky.ports import Claim, ClaimRefused
from scrapersky.records import BatchRecord, ItemEnd, ItemError, ItemRef
from scrapersky.services import tolerance
from scrapersky.services.context import Deps
from scrapersky.services.lifecycle import finish_if_done


@dataclass
class Result:
    """What became of one message: `done` (delete it) or `retry_in_s` (put it back that much later)."""

    outcome: str
    retry_in_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    host: str | None = None
    waiting_for: str | None = None  # a wait that is no attempt: the code the item fails with past max_wait_s
    ticket: float | None = None  # the place in the host's waiting line it waits for (no_proxy)


class UnitClaims(Protocol):
    """The claim a delivery takes on its unit of work, and every way the unit can end or go back."""

    def claim(self, owner: str, until: float, now: float) -> Claim | ClaimRefused: ...

    def refused(self, refused: ClaimRefused, now: float, ended: str) -> Result: ...

    def bind(self, owner: str, unit: Unit) -> Unit:
        """The unit as the claimed delivery runs it."""
        ...

    def requeue(self, owner: str, o: Outcome, proxy_id: str, attempt_spent: bool) -> None: ...

    def finish(self, owner: str, o: Outcome, metrics: dict[str, float]) -> Result: ...

    def give_up(self, owner: str, error: ItemError) -> Result:
        """Ends the unit failed without a fetch (it waited past max_wait_s), if no live delivery holds it."""
        ...

    def cancel(self, owner: str) -> Result: ...


def refused_item(deps: Deps, ref: ItemRef, claim: ClaimRefused, now: float, ended: str = "already_finished") -> Result:
    if claim.terminal:
        # a delivery that crashed after the item's final write may not have closed the batch: do it now
        finish_if_done(deps, ref.batch_id)
        return Result(ended)
    return Result("busy_elsewhere", retry_in_s=max(1.0, (claim.busy_until or now) - now + 1.0))


def record_end(deps: Deps, batch: BatchRecord, ref: ItemRef, owner: str, end: ItemEnd) -> bool:
    """Finishes the item claimed by `owner`; only the last item of a counter shard looks at the whole batch."""
    won = deps.items.finish(ref, owner, end, deps.clock.now(), shard_last=batch.shard_share(ref.shard) - 1)
    if won and won.shard_done:
        finish_if_done(deps, ref.batch_id)
    if won and not end.succeeded:
        tolerance.judge(deps, batch)  # a failure may take the batch past its tolerated failures
    return bool(won)


@dataclass
class ItemClaims:
    """The unit is the item: its record is claimed, requeued and finished (the page kind)."""

    deps: Deps
    msg: WorkMessage
    batch: BatchRecord
    processor: KindProcessor

    @property
    def ref(self) -> ItemRef:
        return ItemRef(self.msg.batch_id, self.msg.seq, self.msg.shard)

    def claim(self, owner: str, until: float, now: float) -> Claim | ClaimRefused:
        return self.deps.items.claim(self.ref, owner, until, now)

    def refused(self, refused: ClaimRefused, now: float, ended: str) -> Result:
        return refused_item(self.deps, self.ref, refused, now, ended)

    def bind(self, owner: str, unit: Unit) -> Unit:
        return unit

    def requeue(self, owner: str, o: Outcome, proxy_id: str, attempt_spent: bool) -> None:
        error = ItemError(o.code, o.message or "") if o.code else None
        self.deps.items.requeue(
            self.ref, owner, self.deps.clock.now(), attempt_spent=attempt_spent, proxy_id=proxy_id, error=error
        )

    def finish(self, owner: str, o: Outcome, metrics: dict[str, float]) -> Result:
        succeeded = o.kind is OutcomeKind.SUCCESS
        end = ItemEnd(
            succeeded=succeeded,
            item=self.msg.item,
            error=None if succeeded else ItemError(o.code or "failed", o.message or o.code or "failed"),
            http_status=o.http_status,
            result=self.processor.render(o.result),
        )
        if record_end(self.deps, self.batch, self.ref, owner, end):
            metrics["succeeded" if succeeded else "failed"] = 1
        return Result("succeeded" if succeeded else f"failed:{o.code}", metrics=metrics)

    def give_up(self, owner: str, error: ItemError) -> Result:
        deps, ref = self.deps, self.ref
        now = deps.clock.now()
        claim = deps.items.claim(ref, owner, now + deps.settings.lease_seconds, now)
        if isinstance(claim, ClaimRefused):
            return refused_item(deps, ref, claim, now)
        end = ItemEnd(succeeded=False, item=self.msg.item, error=error, attempt_spent=False)
        won = self.record_given_up(owner, end, error)
        return Result(f"failed:{error.code}", metrics={"failed": 1} if won else {})

    def record_given_up(self, owner: str, end: ItemEnd, error: ItemError) -> bool:
        """Ends the item that waited past max_wait_s (claimed by `owner`)."""
        return record_end(self.deps, self.batch, self.ref, owner, end)

    def cancel(self, owner: str) -> Result:
        """An item of a cancelled batch ends cancelled, also one whose worker crashed (its claim lapsed)."""
        deps, ref = self.deps, self.ref
        now = deps.clock.now()
        if deps.items.cancel(ref, now):
            return Result("cancelled")
        claim = deps.items.claim(ref, owner, now + deps.settings.lease_seconds, now)
        if isinstance(claim, ClaimRefused):
            return refused_item(deps, ref, claim, now)
        deps.items.cancel(ref, deps.clock.now(), claimed_by=owner)
        return Result("cancelled")
