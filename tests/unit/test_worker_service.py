"""The worker on the fakes: what each outcome of a fetch does to the item, its batch, the queue and the lease."""

from __future__ import annotations

import random

import pytest
from scrapersky.errors import RetryableStoreError
from scrapersky.models import BatchStatus, ItemStatus, WorkMessage
from scrapersky.ports import Release
from scrapersky.records import ItemRef
from scrapersky.services.worker import Deferred, InvocationCache, Result, handle_record, process

from tests.fakes import FakeDeps, SentWork, make_deps, page
from tests.unit.seeding import seed_batch, urls, work

P1, P2 = "http://proxy-1.test:8080", "http://proxy-2.test:8080"
URL = "https://a.test/0"


def deliver(deps: FakeDeps, msg: WorkMessage, receive_count: int = 1, remaining_ms: int | None = None) -> Result:
    return handle_record(deps, msg, f"rh-{msg.seq}", receive_count, InvocationCache(), remaining_ms)


def deferred(deps: FakeDeps, msg: WorkMessage, **kwargs: int) -> Deferred:
    with pytest.raises(Deferred) as e:
        deliver(deps, msg, **kwargs)
    return e.value


def assert_no_lease_held(deps: FakeDeps) -> None:
    assert deps.pool.unreleased() == []
    assert {p.proxy_id: p.lease_owner for p in deps.pool.proxies.values()} == dict.fromkeys(deps.pool.proxies)


def by_proxy(answers: dict[str, int]):
    """A target answering each proxy with its own status."""
    return lambda call: page(call.url, answers[call.proxy_url])


class Highest(random.Random):
    """Full jitter at its top: the backoff's upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


# ---- outcomes --------------------------------------------------------------------------------------------------
def test_a_successful_fetch_stores_the_result_and_completes_a_one_item_batch():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, page(URL, title="Hello"))

    result = deliver(deps, work(batch, 0))

    assert result.outcome == "succeeded"
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts, rec.http_status) == (ItemStatus.SUCCEEDED, 1, 200)
    assert rec.result is not None and rec.result["title"] == "Hello"
    stored = deps.batches.batches[batch.batch_id]
    assert stored.status is BatchStatus.COMPLETED and stored.started_at is not None
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.succeeded, totals.in_progress) == (1, 0)
    assert deps.pool.proxy("p_1").succeeded == 1
    assert deps.queue.visibility == []  # done: the message is deleted, not put back
    assert_no_lease_held(deps)


def test_the_first_success_of_a_larger_batch_moves_it_to_processing_only():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(3))
    deps.fetcher.script(URL, page(URL))
    deliver(deps, work(batch, 0))
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.PROCESSING
    assert deps.items.statuses(batch.batch_id) == {
        0: ItemStatus.SUCCEEDED,
        1: ItemStatus.PENDING,
        2: ItemStatus.PENDING,
    }


def test_a_404_fails_the_item_at_once_with_its_code_and_fails_a_one_item_batch():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, page(URL, 404))

    assert deliver(deps, work(batch, 0)).outcome == "failed:http_404"

    rec = deps.items.record(batch.batch_id, 0)
    assert rec.status is ItemStatus.FAILED and rec.attempts == 1
    assert rec.error is not None and rec.error.code == "http_404" and rec.http_status == 404
    assert len(deps.fetcher.fetches) == 1
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.FAILED
    assert deps.batches.totals(batch.batch_id).errors == {"http_404": 1}
    assert_no_lease_held(deps)


def test_a_batch_over_two_counter_shards_ends_partial_only_when_its_last_item_finishes():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(4), shards=2)  # shard 0: seqs 0, 2; shard 1: seqs 1, 3
    deps.fetcher.default = lambda call: page(call.url, 404 if call.url.endswith("/2") else 200)
    statuses = []
    for seq in (1, 3, 0, 2):  # shard 1 finishes first
        deliver(deps, work(batch, seq))
        statuses.append(deps.batches.batches[batch.batch_id].status)
    assert statuses == [BatchStatus.PROCESSING] * 3 + [BatchStatus.PARTIAL]
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.succeeded, totals.failed, totals.in_progress) == (3, 1, 0)


def test_a_transient_failure_puts_the_item_back_pending_with_a_backoff_and_an_attempt_spent():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, page(URL, 500))

    d = deferred(deps, work(batch, 0))

    assert d.reason == "retry" and 1.0 <= d.seconds <= 60.0
    assert deps.queue.visibility == [("rh-0", int(d.seconds))]
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts, rec.deferrals, rec.last_proxy) == (ItemStatus.PENDING, 1, 0, "p_1")
    assert rec.error is not None and rec.error.code == "http_500"
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.retries, totals.in_progress, totals.failed) == (1, 0, 0)
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.PROCESSING
    assert_no_lease_held(deps)


def test_a_transient_failure_on_the_last_attempt_fails_the_item_and_the_batch():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))  # max_attempts 3
    deps.fetcher.script(URL, page(URL, 503))
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(deliver(deps, work(batch, 0)).outcome)
        except Deferred as d:
            outcomes.append(d.reason)
        deps.clock.advance(60)
    assert outcomes == ["retry", "retry", "failed:http_503"]
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts) == (ItemStatus.FAILED, 3)
    assert len(deps.fetcher.fetches) == 3
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.FAILED
    assert deps.batches.totals(batch.batch_id).retries == 2
    assert_no_lease_held(deps)


def test_the_retry_backoff_doubles_with_each_attempt_up_to_a_minute():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1), options={"max_attempts": 10})
    deps.fetcher.script(URL, page(URL, 502))
    waits = []
    for _ in range(9):
        waits.append(process(deps, work(batch, 0), InvocationCache(), rng=Highest()).retry_in_s)
        deps.clock.advance(120)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert process(deps, work(batch, 0), InvocationCache(), rng=Highest()).outcome == "failed:http_502"


def test_a_rate_limit_defers_the_item_without_spending_an_attempt_and_it_comes_back_at_once():
    deps = make_deps(proxies=2)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, by_proxy({P1: 429, P2: 200}))

    d = deferred(deps, work(batch, 0))

    assert (d.reason, d.seconds) == ("rate_limited", 0.0)
    assert deps.queue.visibility == [("rh-0", 0)]
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts, rec.deferrals) == (ItemStatus.PENDING, 0, 1)
    assert deps.pool.proxy("p_1").rate_limited == 1
    # the next delivery, at once, goes through the proxy the site has not pushed back on
    assert deliver(deps, work(batch, 0)).outcome == "succeeded"
    assert [f.proxy_url for f in deps.fetcher.fetches] == [P1, P2]
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts, rec.deferrals) == (ItemStatus.SUCCEEDED, 1, 1)
    assert_no_lease_held(deps)


def test_rate_limits_however_many_never_fail_the_item():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))  # max_attempts 3
    deps.fetcher.script(URL, page(URL, 429, retry_after="30"))
    for _ in range(6):
        assert deferred(deps, work(batch, 0)).reason == "rate_limited"
        deps.clock.advance(31)
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts, rec.deferrals) == (ItemStatus.PENDING, 0, 6)
    assert deps.batches.totals(batch.batch_id).failed == 0


# ---- waiting for a proxy ---------------------------------------------------------------------------------------
def test_items_finding_no_free_proxy_come_back_one_by_one_in_the_hosts_waiting_line():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(2))
    deps.pool.lease("a.test", "another-worker", deps.clock.now(), 90)

    waits = [deferred(deps, work(batch, seq)) for seq in (0, 1)]

    assert [(d.reason, d.seconds) for d in waits] == [("deferred_no_proxy", 1.0), ("deferred_no_proxy", 2.0)]
    assert deps.queue.visibility == [("rh-0", 1), ("rh-1", 2)]
    assert deps.fetcher.fetches == []
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts, rec.deferrals, rec.started_at) == (ItemStatus.PENDING, 0, 0, None)


def test_with_no_usable_proxy_an_item_comes_back_after_no_proxy_retry_s():
    deps = make_deps(proxies=0, no_proxy_retry_s=30)
    batch = seed_batch(deps, urls(1))
    d = deferred(deps, work(batch, 0))
    assert (d.reason, d.seconds) == ("deferred_no_proxy", 30.0)
    assert deps.items.record(batch.batch_id, 0).status is ItemStatus.PENDING


def test_a_proxy_failing_its_verify_probe_is_handed_back_at_fault_and_the_item_is_not_claimed():
    deps = make_deps(proxies=1, quarantine_after=1)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.probes[P1] = False

    d = deferred(deps, work(batch, 0))

    assert (d.reason, d.seconds) == ("proxy_failed_check", 1.0)
    assert deps.fetcher.fetches == []
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts, rec.started_at) == (ItemStatus.PENDING, 0, None)
    p = deps.pool.proxy("p_1")
    assert (p.failed, p.consecutive_errors, p.state) == (1, 1, "quarantined")
    assert_no_lease_held(deps)


def test_a_proxy_is_probed_before_use_only_when_its_last_success_is_stale():
    deps = make_deps(proxies=1, verify_after_s=900)
    batch = seed_batch(deps, urls(3))
    deps.fetcher.default = lambda call: page(call.url)
    deliver(deps, work(batch, 0))
    deps.clock.advance(5)
    deliver(deps, work(batch, 1))
    assert deps.fetcher.probed == [P1]  # the first use; the second came 5 s after a success
    deps.clock.advance(901)
    deliver(deps, work(batch, 2))
    assert deps.fetcher.probed == [P1, P1]


# ---- redeliveries and claims -----------------------------------------------------------------------------------
def test_a_duplicate_delivery_of_a_finished_item_fetches_nothing_and_counts_it_once():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(2))
    deps.fetcher.script(URL, page(URL))
    deliver(deps, work(batch, 0))
    deps.clock.advance(5)

    assert deliver(deps, work(batch, 0)).outcome == "duplicate_delivery"

    assert len(deps.fetcher.fetches) == 1
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.succeeded, totals.finished, totals.in_progress) == (1, 1, 0)
    assert deps.items.record(batch.batch_id, 0).attempts == 1
    assert_no_lease_held(deps)


def test_a_duplicate_delivery_closes_the_batch_a_crash_left_open_after_the_items_last_write():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, page(URL))
    deps.batches.fail_next("get_with_counts", RuntimeError("container killed"))
    with pytest.raises(RuntimeError):
        deliver(deps, work(batch, 0))
    assert deps.items.record(batch.batch_id, 0).status is ItemStatus.SUCCEEDED
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.PROCESSING

    assert deliver(deps, work(batch, 0)).outcome == "duplicate_delivery"

    assert deps.batches.batches[batch.batch_id].status is BatchStatus.COMPLETED
    assert len(deps.fetcher.fetches) == 1
    assert_no_lease_held(deps)


def test_an_item_claimed_by_a_live_delivery_is_put_back_until_that_claim_lapses():
    deps = make_deps(proxies=1, lease_seconds=90)
    batch = seed_batch(deps, urls(1))
    now = deps.clock.now()
    deps.items.claim(ItemRef(batch.batch_id, 0, 0), "other-delivery", now + 90, now)

    d = deferred(deps, work(batch, 0))

    assert (d.reason, d.seconds) == ("busy_elsewhere", 91.0)
    assert deps.fetcher.fetches == []
    assert deps.items.record(batch.batch_id, 0).claim == "other-delivery"
    assert deps.batches.totals(batch.batch_id).in_progress == 1
    assert_no_lease_held(deps)


def test_an_item_whose_worker_crashed_is_taken_over_once_its_claim_lapses_and_counted_once():
    deps = make_deps(proxies=1, lease_seconds=90)
    batch = seed_batch(deps, urls(1))
    now = deps.clock.now()
    deps.items.claim(ItemRef(batch.batch_id, 0, 0), "crashed", now + 90, now)
    deps.clock.advance(91)
    deps.fetcher.script(URL, page(URL))

    assert deliver(deps, work(batch, 0)).outcome == "succeeded"

    totals = deps.batches.totals(batch.batch_id)
    assert (totals.succeeded, totals.in_progress, totals.finished) == (1, 0, 1)
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.COMPLETED


def test_a_message_for_an_unknown_batch_is_dropped_without_a_lease():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))
    msg = work(batch, 0, batch_id="b_" + "9" * 20)
    assert deliver(deps, msg).outcome == "dropped_unknown_batch"
    assert deps.pool.leases == [] and deps.queue.visibility == []


# ---- cancel ----------------------------------------------------------------------------------------------------
def test_a_pending_item_of_a_cancelled_batch_ends_cancelled_without_a_lease_or_a_fetch():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(2), status=BatchStatus.CANCELLED)

    assert deliver(deps, work(batch, 0)).outcome == "cancelled"

    assert deps.items.statuses(batch.batch_id) == {0: ItemStatus.CANCELLED, 1: ItemStatus.PENDING}
    assert deps.batches.totals(batch.batch_id).cancelled == 1
    assert deps.pool.leases == [] and deps.fetcher.fetches == []


def test_an_item_of_a_crashed_worker_in_a_cancelled_batch_ends_cancelled_once_its_claim_lapses():
    deps = make_deps(proxies=1, lease_seconds=90)
    batch = seed_batch(deps, urls(1))
    now = deps.clock.now()
    deps.items.claim(ItemRef(batch.batch_id, 0, 0), "crashed", now + 90, now)
    deps.batches.end(batch.batch_id, BatchStatus.CANCELLED, now, (BatchStatus.PENDING,))

    deps.clock.advance(10)
    assert deferred(deps, work(batch, 0)).reason == "busy_elsewhere"  # the worker may still be alive
    deps.clock.advance(90)
    assert deliver(deps, work(batch, 0)).outcome == "cancelled"

    assert deps.items.record(batch.batch_id, 0).status is ItemStatus.CANCELLED
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.cancelled, totals.in_progress, totals.finished) == (1, 0, 1)
    assert deps.fetcher.fetches == []


# ---- the invocation's clock and the queue's receive count ------------------------------------------------------
def test_with_too_little_time_left_in_the_invocation_the_record_goes_back_at_once_untouched():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))  # timeout_s 20: a fetch needs 30 s of invocation left
    deps.fetcher.script(URL, page(URL))

    d = deferred(deps, work(batch, 0), remaining_ms=29_999)

    assert (d.reason, d.seconds) == ("invocation_time_low", 0.0)
    assert deps.queue.visibility == [("rh-0", 0)]
    assert deps.pool.leases == [] and deps.fetcher.fetches == []
    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.attempts, rec.claim) == (ItemStatus.PENDING, 0, None)
    assert deliver(deps, work(batch, 0), remaining_ms=30_000).outcome == "succeeded"


def test_near_max_receive_count_a_waiting_item_is_resent_as_a_fresh_message_and_the_old_one_deleted():
    deps = make_deps(proxies=0, no_proxy_retry_s=30, work_max_receive_count=8)
    batch = seed_batch(deps, urls(1))
    msg = work(batch, 0)

    assert isinstance(deferred(deps, msg, receive_count=5), Deferred)  # still far: the same message waits
    assert deps.queue.pop_work_sent() == []
    deps.clock.advance(60)  # that delivery's place in the host's waiting line has passed

    result = deliver(deps, msg, receive_count=6)

    assert result.outcome == "deferred_no_proxy"  # returned, not raised: the old message is deleted
    assert deps.queue.pop_work_sent() == [SentWork(msg.model_copy(update={"deferrals": 1}), 30)]
    assert deps.queue.visibility == [("rh-0", 30)]  # only the first delivery's


def test_a_rate_limited_item_near_max_receive_count_is_resent_at_once():
    deps = make_deps(proxies=1, work_max_receive_count=8)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, page(URL, 429))
    msg = work(batch, 0, deferrals=2)
    assert deliver(deps, msg, receive_count=7).outcome == "rate_limited"
    assert deps.queue.pop_work_sent() == [SentWork(msg.model_copy(update={"deferrals": 3}), 0)]
    assert deps.items.record(batch.batch_id, 0).status is ItemStatus.PENDING


# ---- proxies on retries and leases on every path ---------------------------------------------------------------
def test_a_retry_goes_through_another_proxy_when_one_is_free():
    deps = make_deps(proxies=2)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, [page(URL, 500), page(URL)])
    deferred(deps, work(batch, 0))
    deps.clock.advance(10)  # both proxies' slots are open: p_1 would be leased first

    assert deliver(deps, work(batch, 0)).outcome == "succeeded"

    assert [f.proxy_url for f in deps.fetcher.fetches] == [P1, P2]
    _first_try, second_try, switched_to = deps.pool.leases
    assert second_try.proxy_id == "p_1" and switched_to.proxy_id == "p_2"
    assert [r.outcome for r in deps.pool.release_calls(second_try)] == [Release.UNUSED]
    assert deps.pool.proxy("p_2").succeeded == 1
    assert_no_lease_held(deps)


def test_a_retry_goes_through_the_same_proxy_when_it_is_the_only_one():
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, [page(URL, 500), page(URL)])
    deferred(deps, work(batch, 0))
    deps.clock.advance(10)
    assert deliver(deps, work(batch, 0)).outcome == "succeeded"
    assert [f.proxy_url for f in deps.fetcher.fetches] == [P1, P1]
    assert_no_lease_held(deps)


def test_a_fetcher_exception_releases_the_lease_and_a_later_delivery_finishes_the_item():
    deps = make_deps(proxies=1, lease_seconds=90)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, [RuntimeError("bug in the fetcher"), page(URL)])
    with pytest.raises(RuntimeError):
        deliver(deps, work(batch, 0))
    assert_no_lease_held(deps)

    deps.clock.advance(91)  # the visibility timeout is longer than the claim
    assert deliver(deps, work(batch, 0)).outcome == "succeeded"
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.succeeded, totals.in_progress) == (1, 0)


def test_a_fetcher_exception_after_switching_proxy_releases_every_lease():
    deps = make_deps(proxies=2)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, [page(URL, 500), RuntimeError("bug in the fetcher")])
    deferred(deps, work(batch, 0))
    deps.clock.advance(10)
    with pytest.raises(RuntimeError):
        deliver(deps, work(batch, 0))
    assert len(deps.pool.leases) == 3
    assert_no_lease_held(deps)


@pytest.mark.parametrize("method", ["claim", "finish", "requeue"])
def test_a_store_error_mid_delivery_never_leaks_the_lease(method):
    deps = make_deps(proxies=1)
    batch = seed_batch(deps, urls(1))
    deps.fetcher.script(URL, page(URL, 500 if method == "requeue" else 200))
    deps.items.fail_next(method, RetryableStoreError("throttled"))
    with pytest.raises(RetryableStoreError):
        deliver(deps, work(batch, 0))
    assert_no_lease_held(deps)
