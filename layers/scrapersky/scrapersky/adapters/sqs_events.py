"""EventQueue on SQS: the events queue and its dead-letter queue."""

from __future__ import annotations

from typing import Any

from scrapersky.adapters.sqs_queue import send_bodies
from scrapersky.event_ports import EventQueue
from scrapersky.models import EventMessage


class SqsEventQueue(EventQueue):
    """`client` is a boto3 SQS client."""

    def __init__(self, events_url: str, dlq_url: str, client: Any) -> None:
        self.events_url = events_url
        self.dlq_url = dlq_url
        self.sqs = client

    def send_event(self, messages: list[EventMessage], delay_s: int = 0) -> None:
        bodies = [m.model_dump_json(exclude_none=True) for m in messages]
        send_bodies(self.sqs, self.events_url, bodies, min(900, max(0, int(delay_s))))

    def send_dead_event(self, message: EventMessage) -> None:
        send_bodies(self.sqs, self.dlq_url, [message.model_dump_json(exclude_none=True)])
