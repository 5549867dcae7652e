"""A target's history: how one finished check changes the target's record, and which event it fires.

Pure rules; the store writes the new record in the same atomic write as the item's final transition, so a
redelivered item never applies twice. Results may arrive out of order (retries, parallel workers): one older
than the recorded `last_checked_at` still counts (`checks`, `detections`) but never rolls the state back, and a
failure older than the last success leaves the errors alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from scrapersky.checks.outcome import CheckState
from scrapersky.records import ItemError


class TargetEventType(StrEnum):
    BECAME_ACTIVE = "target.became_active"
    BECAME_INACTIVE = "target.became_inactive"


@dataclass(frozen=True)
class FinishedCheck:
    """One finished item of the check: its state when it succeeded, else its error; `at` is the `checked_at` of
    the fetch the state or the error was read from."""

    batch_id: str | None
    at: float
    state: CheckState | None = None
    error: TargetError | None = None


@dataclass(frozen=True)
class TargetRecord:
    """One (tenant, check, target)'s history, as GET /checks/{name}/targets/{target} shows it (times in epoch
    seconds). `active` is None until the first present, absent or not_found."""

    target: str
    check: str
    active: bool | None = None
    active_since: float | None = None
    last_detected_at: float | None = None
    last_checked_at: float | None = None
    last_state: CheckState | None = None
    checks: int = 0
    detections: int = 0
    consecutive_errors: int = 0
    last_error: TargetError | None = None
    last_batch_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetRecord:
        error, state = data.get("last_error"), data.get("last_state")
        last = {
            "last_error": TargetError(**error) if error else None,
            "last_state": CheckState(state) if state else None,
        }
        return cls(**{**data, **last})


@dataclass(frozen=True)
class TargetError(ItemError):
    """A target's `last_error`: the failed item's final error and the time of the fetch it was read from."""

    at: float


@dataclass(frozen=True)
class TargetEvent:
    """`target.became_active` / `target.became_inactive` without its `event_id` (the sender makes it stable)."""

    event: TargetEventType
    check: str
    target: str
    previous_state: CheckState | None
    state: CheckState
    batch_id: str | None
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Applied:
    record: TargetRecord
    event: TargetEvent | None = None


def apply_check(record: TargetRecord, finished: FinishedCheck) -> Applied:
    """The record after `finished`, and the event it fires (only on a false↔true flip of `active`)."""
    if finished.state is None:
        return Applied(_failed(record, finished))
    return _succeeded(record, finished, finished.state)


def _is_stale(record: TargetRecord, at: float) -> bool:
    return record.last_checked_at is not None and at < record.last_checked_at


def _failed(record: TargetRecord, finished: FinishedCheck) -> TargetRecord:
    counted = replace(record, checks=record.checks + 1)
    if _is_stale(record, finished.at):
        return counted  # a success after it already cleared the errors it belongs to
    newest = record.last_error is None or finished.at >= record.last_error.at
    return replace(
        counted,
        consecutive_errors=record.consecutive_errors + 1,
        last_error=finished.error if newest else record.last_error,
        last_batch_id=finished.batch_id if newest else record.last_batch_id,
    )


def _succeeded(record: TargetRecord, finished: FinishedCheck, state: CheckState) -> Applied:
    present = state is CheckState.PRESENT
    detected = _latest(record.last_detected_at, finished.at) if present else record.last_detected_at
    counted = replace(
        record, checks=record.checks + 1, detections=record.detections + present, last_detected_at=detected
    )
    if _is_stale(record, finished.at):
        return Applied(counted)
    clears = record.last_error is None or finished.at >= record.last_error.at
    updated = replace(
        counted,
        active=present,
        active_since=(record.active_since if record.active else finished.at) if present else None,
        last_checked_at=finished.at,
        last_state=state,
        last_batch_id=finished.batch_id,
        consecutive_errors=0 if clears else record.consecutive_errors,
        last_error=None if clears else record.last_error,
    )
    return Applied(updated, _flip(record, finished, state))


def _latest(recorded: float | None, at: float) -> float:
    return at if recorded is None else max(recorded, at)


def _flip(before: TargetRecord, finished: FinishedCheck, state: CheckState) -> TargetEvent | None:
    """The event of a false↔true change of `active` (none from null: a first observation is no change)."""
    active = state is CheckState.PRESENT
    if before.active is None or before.active == active:
        return None
    kind = TargetEventType.BECAME_ACTIVE if active else TargetEventType.BECAME_INACTIVE
    return TargetEvent(kind, before.check, before.target, before.last_state, state, finished.batch_id, finished.at)
