"""EventBus on EventBridge: PutEvents on the default bus."""

from __future__ import annotations

from typing import Any

from scrapersky.event_ports import EventBus


class EventBusRefused(RuntimeError):
    """EventBridge did not take the event (the message is retried by the queue)."""


class EventBridgeBus(EventBus):
    """`client` is a boto3 EventBridge (`events`) client."""

    def __init__(self, client: Any, bus_name: str = "default") -> None:
        self.events = client
        self.bus_name = bus_name

    def put(self, source: str, detail_type: str, detail: str) -> None:
        entry = {"Source": source, "DetailType": detail_type, "Detail": detail, "EventBusName": self.bus_name}
        got = self.events.put_events(Entries=[entry])
        if got.get("FailedEntryCount"):
            failed = got.get("Entries", [{}])[0]
            raise EventBusRefused(
                f"EventBridge refused the event: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
            )
