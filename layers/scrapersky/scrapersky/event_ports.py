"""Ports of the events (batch.finished, target flips) and of stopping a batch for its failures."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from scrapersky.models import EventMessage


@dataclass(frozen=True)
class TenantSecret:
    """A tenant as GET /tenant shows it, with the secret its webhooks are signed with."""

    tenant_id: str
    name: str
    webhook_secret: str | None


class EventQueue(abc.ABC):
    """The events queue (SQS) and its dead-letter queue."""

    @abc.abstractmethod
    def send_event(self, messages: list[EventMessage], delay_s: int = 0) -> None:
        """Sends to the events queue; a delay is capped at SQS's 900 s."""

    @abc.abstractmethod
    def send_dead_event(self, message: EventMessage) -> None:
        """An event whose webhook was given up (retried for a day): kept on the DLQ, which raises an alarm."""


class WebhookSender(abc.ABC):
    """POSTs to a callback URL under the SSRF guard, no redirects followed, a total deadline."""

    @abc.abstractmethod
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int | None:
        """The answer's status code, or None when there was no answer (refused, timeout, blocked address)."""


class EventBus(abc.ABC):
    """EventBridge's default bus."""

    @abc.abstractmethod
    def put(self, source: str, detail_type: str, detail: str) -> None:
        """Puts one event; raises when it was not accepted (the message is then retried)."""


class WebhookSecrets(abc.ABC):
    """Each tenant's webhook secret, kept on its tenant record."""

    @abc.abstractmethod
    def tenant(self, tenant_id: str) -> TenantSecret | None: ...

    @abc.abstractmethod
    def set_secret(self, tenant_id: str, secret: str, now: float) -> bool:
        """Replaces the tenant's secret; False when there is no such tenant."""


class BatchStops(abc.ABC):
    """Stopping a running batch early, with its reason (its unfinished items are then cancelled)."""

    @abc.abstractmethod
    def stop(self, batch_id: str, reason: str, now: float) -> bool:
        """Sets the batch's stop reason if it is still running and has none; True for the one caller that did."""


@dataclass
class EventPorts:
    queue: EventQueue
    webhooks: WebhookSender
    bus: EventBus
    secrets: WebhookSecrets
    stops: BatchStops
