"""The events consumer: one events-queue message -> EventBridge, and the signed webhook with retries for a day.

batch.finished is rendered here, once the batch's counts are final and its results are published (both come
within seconds of its end; a cancelled batch's running items end within their lease), at most RENDER_WAIT_S after
the end; past that it is rendered as it stands. The rendered body is kept in the message, so every try POSTs the
same bytes with the same event_id; each try is signed when sent, with the tenant's secret of that moment.

A failed try (no 2xx, no answer within 10 s) re-sends the message with a delay (domain/events.retry_delay: the
first retry after 30 s, then doubling up to an hour; a wait longer than SQS's 900 s delay is made of several
messages, `next_try_at` holding the moment). A try that fails a day after the first goes to the DLQ."""

from __future__ import annotations

import json
import math
from typing import Any

from scrapersky.domain import events as ev
from scrapersky.domain.progress import iso_at
from scrapersky.errors import NotFound
from scrapersky.models import TERMINAL_BATCH, EventMessage
from scrapersky.services import batches
from scrapersky.services.context import Deps
from scrapersky.services.events import BATCH_FINISHED
from scrapersky.services.export import settle_s

RENDER_LOOK_S = 10  # how soon a batch.finished that waits for final counts looks again
EXPORT_S = 120.0  # beyond the running items' settling, how long the results export may take to publish
MAX_DELAY_S = 900  # SQS DelaySeconds
FINISHED_FIELDS = ("batch_id", "status", "total_items", "succeeded", "failed", "cancelled", "results_url")


def handle(deps: Deps, msg: EventMessage) -> str:
    now = deps.clock.now()
    if msg.next_try_at is not None and msg.next_try_at > now + 1:
        return _later(deps, msg, msg.next_try_at - now, "waiting")
    if msg.body is None:
        try:
            body = _render_finished(deps, msg)
        except NotFound:
            return "batch_gone"  # expired (retention) before its event could be rendered
        if body is None:
            waited = msg.model_copy(update={"waits": msg.waits + 1})
            return _later(deps, waited, RENDER_LOOK_S, "waiting_for_final_counts")
        msg = msg.model_copy(update={"body": body})
    return _deliver(deps, msg, now)


def _deliver(deps: Deps, msg: EventMessage, now: float) -> str:
    if "bus" in msg.destinations:
        deps.events.bus.put(ev.SOURCE, msg.event, json.dumps(msg.body, separators=(",", ":"), sort_keys=True))
        msg = msg.model_copy(update={"destinations": [d for d in msg.destinations if d != "bus"]})
    if "webhook" not in msg.destinations or not msg.callback_url:
        return "published"
    return _try_webhook(deps, msg, now)


def _later(deps: Deps, msg: EventMessage, wait_s: float, outcome: str) -> str:
    deps.events.queue.send_event([msg], delay_s=min(MAX_DELAY_S, max(0, math.ceil(wait_s))))
    return outcome


def _render_finished(deps: Deps, msg: EventMessage) -> dict[str, Any] | None:
    """batch.finished with the batch's final counts, or None while they may still change (bounded)."""
    assert msg.batch_id is not None
    view = batches.get_batch(deps, msg.tenant_id, msg.batch_id)
    if not _settled(deps, view, msg.waits):
        return None
    body: dict[str, Any] = {"event": BATCH_FINISHED, "event_id": msg.event_id}
    body |= {k: view.get(k) for k in FINISHED_FIELDS}
    body["reason"] = view.get("reason")
    if "detected" in view:  # profile batches only
        body["detected"] = view["detected"]
    body["at"] = view.get("completed_at") or iso_at(deps.clock.now())
    return body


def _settled(deps: Deps, view: dict[str, Any], waits: int) -> bool:
    """Ended, every item finished and the results published; or waited long enough for that."""
    if view["status"] not in {s.value for s in TERMINAL_BATCH}:
        return False
    final = view["pending"] == 0 and view["in_progress"] == 0 and view.get("results_url") is not None
    return final or waits >= (settle_s(deps) + EXPORT_S) / RENDER_LOOK_S


def _try_webhook(deps: Deps, msg: EventMessage, now: float) -> str:
    assert msg.callback_url is not None and msg.body is not None
    tenant = deps.events.secrets.tenant(msg.tenant_id)
    raw = ev.raw_body(msg.body)
    headers = {
        "Content-Type": "application/json",
        "X-ScraperSky-Event": msg.event,
        "X-ScraperSky-Event-Id": msg.event_id,
    }
    if tenant is not None and tenant.webhook_secret:
        headers[ev.SIGNATURE_HEADER] = ev.signature(tenant.webhook_secret, int(now), raw)
    status = deps.events.webhooks.post(msg.callback_url, raw, headers, ev.WEBHOOK_TIMEOUT_S)
    if status is not None and 200 <= status < 300:
        return "delivered"
    first = msg.first_try_at if msg.first_try_at is not None else now
    tries = msg.attempt + 1
    failed = msg.model_copy(update={"attempt": tries, "first_try_at": first, "destinations": ["webhook"]})
    if ev.gives_up(first, now):
        deps.events.queue.send_dead_event(failed)
        return "given_up"
    wait = ev.retry_delay(tries, deps.settings.webhook_first_retry_s)
    return _later(deps, failed.model_copy(update={"next_try_at": now + wait}), wait, f"retry:{status or 'no_answer'}")
