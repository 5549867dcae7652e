"""Events on the fakes: the signature, the retry schedule, batch.finished emitted once per ending and delivered
at least once with the same event_id, each try signed with the secret of that moment; webhook secrets."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from scrapersky.domain import events as ev
from scrapersky.errors import InvalidInput
from scrapersky.models import CreateBatchRequest, CreateTenantRequest, EventMessage
from scrapersky.services import admin, batches, event_delivery, events

from tests.fakes import FakeDeps, make_deps, page
from tests.unit.seeding import drain, urls

TENANT = "t_acme"
HOOK = "https://hooks.example.com/scrapersky"


# ---- pure -----------------------------------------------------------------------------------------------------
def test_the_signature_is_hmac_sha256_of_the_time_a_dot_and_the_raw_body():
    raw = b'{"event":"batch.finished"}'
    expected = hmac.new(b"s3cret", b"1700000000." + raw, hashlib.sha256).hexdigest()
    assert ev.signature("s3cret", 1_700_000_000, raw) == f"t=1700000000,v1={expected}"


def test_a_receiver_accepts_a_fresh_signature_and_refuses_another_body_secret_or_an_old_one():
    raw = b'{"a":1}'
    header = ev.signature("s3cret", 1000, raw)
    assert ev.verify("s3cret", header, raw, now=1010)
    assert not ev.verify("s3cret", header, b'{"a":2}', now=1010)
    assert not ev.verify("other", header, raw, now=1010)
    assert not ev.verify("s3cret", header, raw, now=1000 + 301)  # a replay minutes later
    assert not ev.verify("s3cret", "garbage", raw, now=1000)


def test_retries_start_within_a_minute_double_up_to_an_hour_and_last_at_least_a_day():
    delays = [ev.retry_delay(n) for n in range(1, 12)]
    assert delays[:7] == [30, 60, 120, 240, 480, 960, 1920]
    assert delays[7:] == [3600] * 4
    elapsed, tries = 0.0, 0
    while not ev.gives_up(0.0, elapsed):  # a receiver that never answers
        tries += 1
        elapsed += ev.retry_delay(tries)
    assert elapsed >= 86_400 and tries < 40  # a day of tries, not thousands


@pytest.mark.parametrize(
    ("secret", "shown"),
    [("whsec_abcdefghijklmnop", "****mnop"), ("short", "****"), ("12345678", "****"), (None, None)],
)
def test_a_masked_secret_shows_at_most_its_last_4_characters(secret, shown):
    assert ev.masked(secret) == shown


def test_the_event_id_is_stable_per_event_and_batch():
    assert ev.event_id("batch.finished", "b_1") == ev.event_id("batch.finished", "b_1")
    assert ev.event_id("batch.finished", "b_1") != ev.event_id("batch.finished", "b_2")


# ---- callback_url -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/x", "https://10.0.0.5/x", "https://169.254.169.254/latest", "ftp://x.example/", "x"],
)
def test_a_callback_url_that_is_not_public_https_is_a_422_and_nothing_is_created(url):
    deps = make_deps()
    with pytest.raises(InvalidInput, match="callback_url"):
        batches.create_batch(deps, TENANT, CreateBatchRequest(items=urls(1), callback_url=url))
    assert deps.batches.batches == {} and deps.queue.fanout == []


def test_the_local_stack_also_allows_a_loopback_http_callback_but_not_another_http_one():
    deps = make_deps(allow_private_targets=True, any_target_port=True)
    got = batches.create_batch(deps, TENANT, CreateBatchRequest(items=urls(1), callback_url="http://127.0.0.1:8123/h"))
    assert deps.batches.batches[got["batch_id"]].callback_url == "http://127.0.0.1:8123/h"
    with pytest.raises(InvalidInput):
        batches.create_batch(deps, TENANT, CreateBatchRequest(items=urls(1), callback_url="http://hooks.example.com/"))


# ---- batch.finished -----------------------------------------------------------------------------------------------
def _tenant(deps: FakeDeps) -> str:
    """The tenant with its webhook secret, as POST /tenants creates it; returns the secret."""
    created = admin.create_tenant(deps, CreateTenantRequest(name="acme"), tenant_id=TENANT)
    return created["webhook_secret"]


def _finished_batch(deps: FakeDeps, callback_url: str | None = HOOK) -> str:
    deps.fetcher.default = lambda call: page(call.url)
    got = batches.create_batch(deps, TENANT, CreateBatchRequest(items=urls(3), callback_url=callback_url))
    drain(deps)
    return got["batch_id"]


def _deliver(deps: FakeDeps) -> list[str]:
    """Runs the events consumer on what the events queue holds now (one pass), each after its delay."""
    outcomes = []
    for msg, delay in deps.events.queue.pop():
        deps.clock.advance(delay)
        outcomes.append(event_delivery.handle(deps, msg))
    return outcomes


def test_a_batch_that_ends_emits_batch_finished_once_with_its_final_counts_to_the_bus_and_the_callback():
    deps = make_deps(proxies=2)
    secret = _tenant(deps)
    batch_id = _finished_batch(deps)
    sent = [m for m, _ in deps.events.queue.sent]
    assert [(m.event, m.batch_id, m.destinations) for m in sent] == [("batch.finished", batch_id, ["webhook", "bus"])]

    assert _deliver(deps) == ["delivered"]

    (post,) = deps.events.webhooks.posts
    body = json.loads(post.body)
    assert body == {
        "event": "batch.finished",
        "event_id": ev.event_id("batch.finished", batch_id),
        "batch_id": batch_id,
        "status": "completed",
        "reason": None,
        "total_items": 3,
        "succeeded": 3,
        "failed": 0,
        "cancelled": 0,
        "results_url": body["results_url"],
        "at": body["at"],
    }
    assert body["results_url"]  # the export was published before the event was rendered
    assert ev.verify(secret, post.headers[ev.SIGNATURE_HEADER], post.body, deps.clock.now())
    assert post.timeout_s == 10 and post.url == HOOK
    (bus,) = deps.events.bus.events
    assert bus[:2] == ("scrapersky", "batch.finished") and json.loads(bus[2]) == body


def test_a_batch_without_callback_url_goes_to_the_bus_only():
    deps = make_deps(proxies=1)
    _tenant(deps)
    _finished_batch(deps, callback_url=None)
    assert _deliver(deps) == ["published"]
    assert deps.events.webhooks.posts == [] and len(deps.events.bus.events) == 1


def test_a_failed_try_is_retried_with_the_same_event_id_and_signed_with_the_secret_of_that_moment():
    deps = make_deps(proxies=1)
    old = _tenant(deps)
    _finished_batch(deps)
    deps.events.webhooks.script = [500, None]  # an error, then no answer, then 200

    assert _deliver(deps) == ["retry:500"]
    (retry, delay) = deps.events.queue.sent[0]
    assert delay == 30 and retry.attempt == 1 and retry.destinations == ["webhook"]  # the bus has it already
    new = admin.rotate_webhook_secret(deps, TENANT)["webhook_secret"]
    assert _deliver(deps) == ["retry:no_answer"]
    assert deps.events.queue.sent[0][1] == 60
    assert _deliver(deps) == ["delivered"]

    first, second, third = deps.events.webhooks.posts
    assert first.body == second.body == third.body  # the same event, the same bytes, on every try
    assert ev.verify(old, first.headers[ev.SIGNATURE_HEADER], first.body, deps.clock.now() - 90)
    assert ev.verify(new, third.headers[ev.SIGNATURE_HEADER], third.body, deps.clock.now())
    assert not ev.verify(old, third.headers[ev.SIGNATURE_HEADER], third.body, deps.clock.now())
    assert len(deps.events.bus.events) == 1
    assert deps.events.queue.sent == []


def test_a_receiver_down_for_a_day_gets_tries_for_a_day_then_the_event_goes_to_the_dlq():
    deps = make_deps(proxies=1)
    _tenant(deps)
    _finished_batch(deps)
    deps.events.webhooks.default = 503
    start = deps.clock.now()
    outcomes: list[str] = []
    while deps.events.queue.sent:
        outcomes += _deliver(deps)
    tries = len(deps.events.webhooks.posts)
    assert outcomes[-1] == "given_up" and outcomes.count("given_up") == 1
    assert deps.clock.now() - start >= 86_400 and 20 < tries < 40
    (dead,) = deps.events.queue.dead
    assert dead.attempt == tries and dead.body is not None


def test_a_wait_longer_than_sqs_allows_is_made_of_several_delayed_messages():
    deps = make_deps()
    msg = EventMessage(event="batch.finished", event_id="evt_x", tenant_id=TENANT, next_try_at=deps.clock.now() + 3600)
    assert event_delivery.handle(deps, msg) == "waiting"
    ((again, delay),) = deps.events.queue.sent
    assert delay == 900 and again.next_try_at == msg.next_try_at


def test_batch_finished_waits_for_a_cancelled_batchs_running_items_before_it_is_rendered():
    deps = make_deps(proxies=1)
    _tenant(deps)
    got = batches.create_batch(deps, TENANT, CreateBatchRequest(items=urls(3), callback_url=HOOK))
    for m in deps.queue.pop_fanout():  # stored, not yet worked on
        from scrapersky.services import fanout

        fanout.handle(deps, m)
    item = deps.items.items[got["batch_id"], 0]
    deps.items.claim(item.ref, "w1", deps.clock.now() + 60, deps.clock.now())  # one item is running
    batches.cancel_batch(deps, TENANT, got["batch_id"])
    assert [m.event for m, _ in deps.events.queue.sent] == ["batch.finished"]
    assert _deliver(deps) == ["waiting_for_final_counts"]
    assert deps.events.webhooks.posts == []


def test_emit_sends_a_rendered_event_to_the_callback_or_else_to_the_bus():
    deps = make_deps(proxies=1)
    _tenant(deps)
    batch_id = _finished_batch(deps)
    deps.events.queue.pop()
    flip = {"event": "target.became_active", "event_id": "evt_flip", "check": "stories", "target": "alice"}
    events.emit(deps, flip, deps.batches.batches[batch_id])
    assert _deliver(deps) == ["delivered"]
    assert json.loads(deps.events.webhooks.posts[0].body) == flip and deps.events.bus.events == []
    no_hook = _finished_batch(deps, callback_url=None)
    deps.events.queue.pop()
    events.emit(deps, flip, deps.batches.batches[no_hook])
    assert _deliver(deps) == ["published"]
    assert [e[1] for e in deps.events.bus.events] == ["target.became_active"]


# ---- the tenant's secret --------------------------------------------------------------------------------------------
def test_get_tenant_shows_the_secret_masked_and_rotation_replaces_it():
    deps = make_deps()
    secret = _tenant(deps)
    view = admin.get_tenant(deps, TENANT)
    assert view == {"tenant_id": TENANT, "name": "acme", "webhook_secret": "****" + secret[-4:]}
    new = admin.rotate_webhook_secret(deps, TENANT)["webhook_secret"]
    assert new != secret and admin.get_tenant(deps, TENANT)["webhook_secret"] == "****" + new[-4:]
