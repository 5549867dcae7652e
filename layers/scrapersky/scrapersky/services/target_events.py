"""Where a target's flip goes once its item's end is written: for now it is only logged (the events and webhooks
delivery, issue 9 item 5, connects here)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from scrapersky.checks import TargetEvent
from scrapersky.records import BatchRecord
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
