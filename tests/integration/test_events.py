"""Events on moto with real loopback servers: batch.finished POSTed, signed, to a real receiver that fails the
first try; put on EventBridge's default bus (a rule forwards it to a queue); tenants' webhook secrets; a batch
past its tolerated failures."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from scrapersky.domain import events as ev

from tests.loopback import WebhookReceiver


@pytest.fixture
def events_harness(harness):
    """The harness with webhook retries after 1 s (the deployed 30 s would only slow the test)."""
    harness.deps = replace(harness.deps, settings=harness.deps.settings.model_copy(update={"webhook_first_retry_s": 1}))
    return harness


@pytest.fixture
def bus_puts(events_harness) -> list[dict]:
    """Every PutEvents entry the events consumer's EventBridge client sends to moto (seen by a botocore hook on
    the real client: moto keeps no events on a bus without rules, and its rule matching needs a package we do
    not install)."""
    puts: list[dict] = []

    def record(params: dict, **_: object) -> None:
        puts.extend(params["Entries"])

    events_harness.deps.events.bus.events.meta.events.register("provide-client-params.events.PutEvents", record)
    return puts


def drain_events(harness, until, timeout: float = 120.0) -> None:
    """Runs the events consumer (delayed messages included) until `until()` holds."""
    end = time.time() + timeout
    while time.time() < end and not until():
        msgs = harness.receive("EventsQueue")
        if msgs:
            harness.deliver("EventsQueue", "events", msgs)
        else:
            time.sleep(0.2)
    assert until(), "the condition did not hold within the bound"


def secret_of(harness) -> str:
    status, body = harness.api("batches", "POST", "/tenant/webhook-secret", tenant="t_local")
    assert status == 200, body
    return body["webhook_secret"]


def test_batch_finished_reaches_a_receiver_that_failed_the_first_try_signed_and_the_bus(
    events_harness, pool, site, bus_puts
):
    harness = events_harness
    secret = secret_of(harness)
    with WebhookReceiver(script=[500]) as receiver:
        status, created = harness.api(
            "batches", "POST", "/batches", {"items": [f"{site.base_url}/page/1"], "callback_url": receiver.url}
        )
        assert status == 201, created
        harness.drain()
        drain_events(harness, lambda: len(receiver.got) >= 2)

    (raw1, h1, s1), (raw2, h2, s2) = receiver.got[:2]
    assert (s1, s2) == (500, 200) and len(receiver.got) == 2  # a 2xx ends it
    body = json.loads(raw2)
    assert raw1 == raw2 and body["event_id"] == json.loads(raw1)["event_id"]
    assert (body["event"], body["batch_id"], body["status"], body["succeeded"]) == (
        "batch.finished", created["batch_id"], "completed", 1,
    )  # fmt: skip
    for raw, headers in ((raw1, h1), (raw2, h2)):
        assert ev.verify(secret, headers[ev.SIGNATURE_HEADER], raw, time.time())
    (entry,) = bus_puts
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == ("scrapersky", "batch.finished", "default")
    assert json.loads(entry["Detail"]) == body


def test_an_invalid_callback_url_is_a_422_and_creates_nothing(harness):
    for url in ("http://hooks.example.com/x", "ftp://example.com/", "not a url"):  # private ones are allowed here
        status, body = harness.api(
            "batches", "POST", "/batches", {"items": ["https://example.com/"], "callback_url": url}
        )
        assert status == 422 and "callback_url" in body["message"], body
    status, listed = harness.api("status", "GET", "/batches")
    assert status == 200 and listed["batches"] == []
    assert harness.receive("FanoutQueue") == []


def test_a_new_tenant_gets_a_webhook_secret_that_get_tenant_masks_and_rotation_replaces(harness):
    status, created = harness.api("admin", "POST", "/tenants", {"name": "acme"}, tenant="t_admin", role="admin")
    assert status == 201 and created["webhook_secret"].startswith("whsec_"), created
    tid = created["tenant_id"]
    status, view = harness.api("batches", "GET", "/tenant", tenant=tid)
    assert status == 200 and view == {
        "tenant_id": tid,
        "name": "acme",
        "webhook_secret": "****" + created["webhook_secret"][-4:],
    }
    status, rotated = harness.api("batches", "POST", "/tenant/webhook-secret", tenant=tid)
    assert status == 200 and rotated["webhook_secret"] != created["webhook_secret"]
    _, view = harness.api("batches", "GET", "/tenant", tenant=tid)
    assert view["webhook_secret"] == "****" + rotated["webhook_secret"][-4:]


def test_a_batch_past_its_tolerated_failures_ends_failed_with_cancelled_leftovers(harness, pool, site):
    items = [f"{site.base_url}/missing/{i}" for i in range(25)] + [f"{site.base_url}/page/{i}" for i in range(15)]
    body = {"items": items, "options": {"tolerated_failure_count": 0, "max_attempts": 1}}
    status, created = harness.api("batches", "POST", "/batches", body)
    assert status == 201, created
    harness.drain()
    status, view = harness.api("status", "GET", f"/batches/{created['batch_id']}")
    assert status == 200
    assert (view["status"], view["reason"]) == ("failed", "tolerated_failure_exceeded")
    assert view["failed"] >= 20 and view["cancelled"] > 0
    assert view["succeeded"] + view["failed"] + view["cancelled"] == 40
    msgs = harness.receive("EventsQueue")
    assert [json.loads(m["Body"])["event"] for m in msgs] == ["batch.finished"]


def test_the_sample_events_run_through_their_handlers(harness):
    from tests.conftest import load_event

    # the sample names a batch this stack never had: the consumer drops it without failing the record
    result = harness.handler("events")(load_event("sqs_event_batch_finished.json"), harness.context)
    assert result == {"batchItemFailures": []}
    for name, status in (("api_get_tenant.json", 200), ("api_rotate_webhook_secret.json", 200)):
        ev = load_event(name)
        ev["requestContext"]["authorizer"] = {"tenant_id": "t_local", "role": "tenant"}
        out = harness.handler("batches")(ev, harness.context)
        assert out["statusCode"] == status, out
