"""Every batch ends: an item that waits past its max_wait_s for a proxy or for a site that keeps refusing
ends failed (`no_proxy`, `rate_limited`), counted once, and the batch ends with it."""

from __future__ import annotations

import pytest
from scrapersky.models import BatchStatus, ItemStatus, WorkMessage
from scrapersky.services.worker import Deferred, InvocationCache, Result, handle_record

from tests.fakes import FakeDeps, make_deps, page
from tests.unit.seeding import seed_batch, urls, work

URL = "https://a.test/0"


def deliver(deps: FakeDeps, msg: WorkMessage, first: float, receive_count: int = 1) -> Result | Deferred:
    try:
        return handle_record(deps, msg, "rh", receive_count, InvocationCache(), None, first_received_at=first)
    except Deferred as d:
        return d


def test_a_site_that_always_refuses_ends_the_item_rate_limited_after_max_wait_s():
    deps = make_deps(proxies=2)
    batch = seed_batch(deps, urls(1), options={"max_wait_s": 600})
    deps.fetcher.script(URL, lambda call: page(call.url, 429, retry_after="30"))
    first = deps.clock.now()
    msg = work(batch, 0)
    assert msg.max_wait_s == 600
    got = deliver(deps, msg, first)
    assert isinstance(got, Deferred)  # a deferral, not a failure, while it has time left
    deps.clock.advance(601)
    got = deliver(deps, msg, first)
    assert isinstance(got, Result) and got.outcome == "failed:rate_limited"
    rec = deps.items.record(batch.batch_id, 0)
    assert rec.status is ItemStatus.FAILED and rec.error is not None and rec.error.code == "rate_limited"
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.FAILED
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.failed, totals.in_progress) == (1, 0)
    assert deps.pool.unreleased() == []


def test_an_empty_pool_ends_the_item_no_proxy_after_max_wait_s_and_the_batch_ends():
    deps = make_deps(proxies=0)
    batch = seed_batch(deps, urls(2), options={"max_wait_s": 120})
    first = deps.clock.now()
    for seq in (0, 1):
        assert isinstance(deliver(deps, work(batch, seq, f"https://a.test/{seq}"), first), Deferred)
    deps.clock.advance(121)
    outcomes = [deliver(deps, work(batch, seq, f"https://a.test/{seq}"), first) for seq in (0, 1)]
    assert [o.outcome for o in outcomes if isinstance(o, Result)] == ["failed:no_proxy", "failed:no_proxy"]
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.FAILED
    assert deps.batches.totals(batch.batch_id).errors == {"no_proxy": 2}


def test_the_wait_survives_a_re_send_near_max_receive_count():
    deps = make_deps(proxies=0)
    batch = seed_batch(deps, urls(1), options={"max_wait_s": 300})
    first = deps.clock.now()
    resent = deliver(deps, work(batch, 0), first, receive_count=deps.settings.work_max_receive_count)
    assert isinstance(resent, Result)
    [fresh] = deps.queue.pop_work_sent()
    assert fresh.message.waiting_since == first  # the fresh message carries when the wait began
    deps.clock.advance(301)
    got = deliver(deps, fresh.message, first=deps.clock.now())  # its own first receipt is new: not what counts
    assert isinstance(got, Result) and got.outcome == "failed:no_proxy"


def test_an_item_that_finished_meanwhile_is_left_alone():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1), options={"max_wait_s": 10})
    deps.fetcher.script(URL, page(URL))
    assert deliver(deps, work(batch, 0), deps.clock.now()).outcome == "succeeded"
    deps.clock.advance(60)
    got = deliver(deps, work(batch, 0), deps.clock.now() - 60)  # a duplicate delivery, long after
    assert isinstance(got, Result) and got.outcome == "duplicate_delivery"
    assert deps.items.record(batch.batch_id, 0).status is ItemStatus.SUCCEEDED


@pytest.mark.parametrize("bad", [0, -1, 7 * 86_400 + 1])
def test_max_wait_s_out_of_range_is_refused(bad):
    from pydantic import ValidationError
    from scrapersky.models import BatchOptions

    with pytest.raises(ValidationError):
        BatchOptions(max_wait_s=bad)


def test_a_deferral_never_sleeps_past_the_items_deadline():
    deps = make_deps(proxies=0)
    batch = seed_batch(deps, urls(1), options={"max_wait_s": 10})
    got = deliver(deps, work(batch, 0), deps.clock.now())
    assert isinstance(got, Deferred) and got.seconds <= 10  # the pool said 30 s; the item has 10 left


def test_an_item_whose_place_in_line_is_beyond_15_minutes_keeps_it_instead_of_queuing_again():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1), options={"max_wait_s": 86_400})
    host = "a.test"
    deps.hosts.tickets[host] = deps.clock.now() + 2_000  # 2,000 s of items already in line for the host
    deps.pool.proxy("p_1").lease_until = deps.clock.now() + 10_000  # the only proxy is busy
    first = deps.clock.now()
    resent = deliver(deps, work(batch, 0), first)
    assert isinstance(resent, Result) and resent.outcome == "deferred_no_proxy"
    [sent] = deps.queue.pop_work_sent()
    ticket = sent.message.ticket
    assert ticket is not None and ticket > deps.clock.now() + 900 and sent.delay_s == 900
    tail = deps.hosts.tickets[host]

    deps.clock.advance(900)  # back after SQS's longest delay, still well before its place
    again = deliver(deps, sent.message, first)
    assert isinstance(again, Result) and again.outcome == "waiting_in_line"  # no lease tried, re-sent again
    assert deps.hosts.tickets[host] == tail  # no second place taken: the line did not grow
    [kept] = deps.queue.pop_work_sent()
    assert kept.message.ticket == ticket
