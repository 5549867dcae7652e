"""Emitting events: batch.finished when a batch ends, and any event another use case raises (target flips).

An event is one message on the events queue; the events consumer (services/event_delivery.py) puts it on
EventBridge and POSTs it, signed, to the callback URL, retrying for a day. Emitting is cheap and never fails a
use case's own write: the message is sent after the change it reports."""

from __future__ import annotations

from typing import Any, Literal

from scrapersky.domain.events import event_id
from scrapersky.models import EventMessage
from scrapersky.records import BatchRecord
from scrapersky.services.context import Deps

BATCH_FINISHED = "batch.finished"

Destination = Literal["webhook", "bus"]


def destinations(event: str, batch: BatchRecord) -> list[Destination]:
    """batch.finished goes to the callback URL and the bus; other events to the callback URL, else the bus."""
    if event == BATCH_FINISHED:
        return ["webhook", "bus"] if batch.callback_url else ["bus"]
    return ["webhook"] if batch.callback_url else ["bus"]


def emit(deps: Deps, event: dict[str, Any], batch: BatchRecord) -> None:
    """Sends a rendered event (`{"event": name, "event_id": stable id, ...}`) raised by one of the batch's items,
    e.g. target.became_active. Delivered at least once with its event_id."""
    name = str(event["event"])
    msg = EventMessage(
        event=name,
        event_id=str(event["event_id"]),
        tenant_id=batch.tenant_id,
        batch_id=batch.batch_id,
        callback_url=batch.callback_url,
        destinations=destinations(name, batch),
        body=event,
    )
    deps.events.queue.send_event([msg])


def batch_finished(deps: Deps, batch: BatchRecord) -> None:
    """The batch just ended (one caller wins its end): batch.finished, rendered by the consumer once the counts
    are final (a cancelled batch's running items end within their lease), so every try sends the same body."""
    msg = EventMessage(
        event=BATCH_FINISHED,
        event_id=event_id(BATCH_FINISHED, batch.batch_id),
        tenant_id=batch.tenant_id,
        batch_id=batch.batch_id,
        callback_url=batch.callback_url,
        destinations=destinations(BATCH_FINISHED, batch),
    )
    deps.events.queue.send_event([msg])
