"""Where a target's flip goes once its item's end is written: logged (an audit trail), and sent as an event
(services/events.py): to the callback URL of the batch whose item changed the target, EventBridge only when it
has none (and for a POST /scrape check, which has no batch)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from scrapersky.checks import TargetEvent
from scrapersky.domain.events import event_id
from scrapersky.domain.progress import iso
from scrapersky.models import EventMessage
from scrapersky.records import BatchRecord
from scrapersky.services import events
from scrapersky.services.context import Deps

EVENT_LOG = "target_event"  # the log message a flip is logged under (the e2e tests read it)
# An audit trail of the flips, logged whatever LogLevel says (the local stack runs at WARNING): an explicit level
# takes precedence over POWERTOOLS_LOG_LEVEL.
events_log = Logger(service="scrapersky-events", level="INFO")  # its own logger: the service's keeps its level


def emit_target_event(deps: Deps, batch: BatchRecord | None, event: TargetEvent, tenant_id: str | None = None) -> None:
    """A target became active or inactive through an item of `batch` (None: a POST /scrape check of `tenant_id`,
    which has no callback_url: EventBridge only)."""
    tenant = batch.tenant_id if batch is not None else tenant_id
    events_log.info(EVENT_LOG, extra={"target_event": {**event.to_dict(), "tenant_id": tenant}})
    body = target_event_body(event, str(tenant))
    if batch is not None:
        events.emit(deps, body, batch)
        return
    msg = EventMessage(
        event=body["event"], event_id=body["event_id"], tenant_id=str(tenant), destinations=["bus"], body=body
    )
    deps.events.queue.send_event([msg])


def target_event_body(event: TargetEvent, tenant_id: str) -> dict[str, Any]:
    """API.md's event: `{"event", "event_id", "check", "target", "previous_state", "state", "batch_id", "at"}`;
    the id is stable for this flip (its tenant, check, target and the check's time)."""
    name = str(event.event)
    return {
        "event": name,
        "event_id": event_id(name, tenant_id, event.check, event.target, repr(event.at)),
        "check": event.check,
        "target": event.target,
        "previous_state": None if event.previous_state is None else str(event.previous_state),
        "state": str(event.state),
        "batch_id": event.batch_id,
        "at": iso(event.at),
    }
