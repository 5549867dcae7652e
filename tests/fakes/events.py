"""Fakes of the event ports: the events queue and its DLQ, the webhook sender, EventBridge, secrets, stops."""

from __future__ import annotations

from dataclasses import dataclass, replace

from scrapersky.event_ports import (
    BatchStops,
    EventBus,
    EventPorts,
    EventQueue,
    TenantSecret,
    WebhookSecrets,
    WebhookSender,
)
from scrapersky.models import ACTIVE_BATCH, EventMessage

from tests.fakes.batches import FakeBatchStore
from tests.fakes.edges import FakeTenantStore
from tests.fakes.recording import Recorder, recorded


class FakeEventQueue(Recorder, EventQueue):
    """Messages go through their JSON bodies, as on SQS."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[EventMessage, int]] = []  # (message, delay)
        self.dead: list[EventMessage] = []

    @recorded
    def send_event(self, messages: list[EventMessage], delay_s: int = 0) -> None:
        delay = min(900, max(0, int(delay_s)))
        self.sent.extend((EventMessage.model_validate_json(m.model_dump_json()), delay) for m in messages)

    @recorded
    def send_dead_event(self, message: EventMessage) -> None:
        self.dead.append(EventMessage.model_validate_json(message.model_dump_json()))

    def pop(self) -> list[tuple[EventMessage, int]]:
        out, self.sent = self.sent, []
        return out


@dataclass(frozen=True)
class Posted:
    url: str
    body: bytes
    headers: dict[str, str]
    timeout_s: float


class FakeWebhookSender(Recorder, WebhookSender):
    """Answers each POST with the next scripted status (None: no answer), then `default`."""

    def __init__(self, default: int | None = 200) -> None:
        super().__init__()
        self.script: list[int | None] = []
        self.default = default
        self.posts: list[Posted] = []

    @recorded
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int | None:
        self.posts.append(Posted(url, body, dict(headers), timeout_s))
        return self.script.pop(0) if self.script else self.default


class FakeEventBus(Recorder, EventBus):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, str]] = []  # (source, detail-type, detail)

    @recorded
    def put(self, source: str, detail_type: str, detail: str) -> None:
        self.events.append((source, detail_type, detail))


class FakeWebhookSecrets(Recorder, WebhookSecrets):
    """Secrets on the fake tenant store's tenants, as on their records."""

    def __init__(self, tenants: FakeTenantStore) -> None:
        super().__init__()
        self.tenants = tenants
        self.secrets: dict[str, str] = {}

    @recorded
    def tenant(self, tenant_id: str) -> TenantSecret | None:
        rec = self.tenants.tenants.get(tenant_id)
        return None if rec is None else TenantSecret(tenant_id, rec.name, self.secrets.get(tenant_id))

    @recorded
    def set_secret(self, tenant_id: str, secret: str, now: float) -> bool:
        if tenant_id not in self.tenants.tenants:
            return False
        self.secrets[tenant_id] = secret
        return True


class FakeBatchStops(Recorder, BatchStops):
    """Sets the stop reason on the fake batch store's records."""

    def __init__(self, batches: FakeBatchStore) -> None:
        super().__init__()
        self.batches = batches

    @recorded
    def stop(self, batch_id: str, reason: str, now: float) -> bool:
        with self.batches._lock:
            rec = self.batches.batches.get(batch_id)
            if rec is None or rec.status not in ACTIVE_BATCH or rec.stop_reason:
                return False
            self.batches.batches[batch_id] = replace(rec, stop_reason=reason, updated_at=now)
            return True


@dataclass
class FakeEventPorts(EventPorts):
    queue: FakeEventQueue
    webhooks: FakeWebhookSender
    bus: FakeEventBus
    secrets: FakeWebhookSecrets
    stops: FakeBatchStops


def make_event_ports(batches: FakeBatchStore, tenants: FakeTenantStore) -> FakeEventPorts:
    return FakeEventPorts(
        queue=FakeEventQueue(),
        webhooks=FakeWebhookSender(),
        bus=FakeEventBus(),
        secrets=FakeWebhookSecrets(tenants),
        stops=FakeBatchStops(batches),
    )
