"""The fakes keep the port contracts the use cases rely on (the integration tests prove the real adapters)."""

from __future__ import annotations

import pytest
from scrapersky.domain.outcomes import FetchFailure, FetchResponse
from scrapersky.errors import InvalidCursor, NoProxyAvailable, RetryableStoreError
from scrapersky.host_ports import HostConfig
from scrapersky.models import BatchStatus, FanoutMessage, ItemStatus, WorkMessage
from scrapersky.ports import Claim, ClaimRefused, Release
from scrapersky.records import ItemEnd, ItemError, ItemRef
from scrapersky.services.context import Deps

from tests.fakes import (
    EPOCH,
    FakeBatchStore,
    FakeClock,
    FakeFetcher,
    FakeItemStore,
    FakeProxyPool,
    FakeQueue,
    UnscriptedFetch,
    batch_id,
    batch_record,
    failure,
    make_deps,
    page,
)
from tests.fakes.records import shard_totals

NOW = EPOCH
OK = ItemEnd(succeeded=True, item="https://a.test/", http_status=200, result={"title": "A"})


def stores(total: int = 3, shards: int = 1) -> tuple[FakeBatchStore, FakeItemStore]:
    batches = FakeBatchStore()
    items = FakeItemStore(batches)
    batch = batch_record(total_items=total, shards=shards)
    batches.create(batch, shard_totals(total, shards), None, take_group=False)
    items.put_pending(batch, 0, [f"https://a.test/{i}" for i in range(total)], NOW)
    return batches, items


def ref(seq: int, shards: int = 1) -> ItemRef:
    return ItemRef(batch_id(1), seq, seq % shards)


def claimed(items: FakeItemStore, seq: int, token: str = "tok", shards: int = 1) -> Claim:
    got = items.claim(ref(seq, shards), token, NOW + 90, NOW)
    assert isinstance(got, Claim)
    return got


# ---- items and counters ----------------------------------------------------------------------------------------
def test_a_duplicate_finish_counts_the_item_once():
    batches, items = stores()
    claimed(items, 0)
    assert items.finish(ref(0), "tok", OK, NOW + 1)
    assert not items.finish(ref(0), "tok", OK, NOW + 2)
    shard = batches.totals(batch_id(1))
    assert (shard.succeeded, shard.in_progress, shard.finished) == (1, 0, 1)
    assert items.record(batch_id(1), 0).attempts == 1


def test_a_finish_by_a_token_that_does_not_hold_the_claim_changes_nothing():
    batches, items = stores()
    claimed(items, 0, token="first")
    assert not items.finish(ref(0), "other", OK, NOW + 1)
    assert items.record(batch_id(1), 0).status is ItemStatus.IN_PROGRESS
    assert batches.totals(batch_id(1)).in_progress == 1


def test_shard_done_only_on_the_shards_last_item():
    _, items = stores(total=4, shards=2)  # shard 0: seqs 0, 2; shard 1: seqs 1, 3
    done = []
    for seq in (0, 1, 2, 3):
        claimed(items, seq, shards=2)
        applied = items.finish(ref(seq, 2), "tok", OK, NOW, shard_last=2 - 1)
        done.append(applied.shard_done)
    assert done == [False, False, True, True]


def test_shard_done_counts_cancelled_and_dead_lettered_items_as_finished():
    _, items = stores(total=3)
    assert not items.cancel(ref(0), NOW).shard_done
    error = ItemError("dlq", "dead-lettered")
    assert not items.fail_from_dead_letter(ref(1), "https://a.test/1", error, NOW).shard_done
    claimed(items, 2)
    assert items.finish(ref(2), "tok", OK, NOW, shard_last=2).shard_done


def test_a_failed_finish_counts_its_error_code_and_keeps_three_samples_per_shard():
    batches, items = stores(total=5)
    for seq in range(5):
        claimed(items, seq)
        end = ItemEnd(succeeded=False, item=f"https://a.test/{seq}", error=ItemError("http_404", "x" * 900))
        items.finish(ref(seq), "tok", end, NOW)
    (counts,) = batches.counts(batch_id(1))
    assert counts.failed == 5 and counts.errors == {"http_404": 5}
    assert [s.item for s in counts.samples] == [f"https://a.test/{i}" for i in range(3)]
    error = items.record(batch_id(1), 0).error
    assert error is not None and len(error.message) == 500


def test_requeue_is_a_retry_or_a_deferral_and_counts_a_retry_either_way():
    batches, items = stores()
    claimed(items, 0)
    items.requeue(ref(0), "tok", NOW, attempt_spent=True, proxy_id="p_1", error=ItemError("timeout", "slow"))
    claimed(items, 0)
    items.requeue(ref(0), "tok", NOW, attempt_spent=False, proxy_id="p_2", error=None)
    again = claimed(items, 0)
    assert (again.attempts, again.deferrals, again.last_proxy) == (1, 1, "p_2")
    shard = batches.totals(batch_id(1))
    assert (shard.retries, shard.in_progress) == (2, 1)


def test_a_live_claim_is_refused_until_it_lapses_then_taken_over_without_counting_again():
    batches, items = stores()
    claimed(items, 0, token="crashed")
    assert items.claim(ref(0), "second", NOW + 30, NOW + 10) == ClaimRefused(terminal=False, busy_until=NOW + 90)
    took = items.claim(ref(0), "second", NOW + 200, NOW + 91)
    assert isinstance(took, Claim) and took.token == "second"
    assert batches.totals(batch_id(1)).in_progress == 1
    assert not items.finish(ref(0), "crashed", OK, NOW + 92)  # the old claim lost the item
    assert items.finish(ref(0), "second", OK, NOW + 92)


def test_a_claim_of_a_finished_or_missing_item_is_refused_as_terminal():
    _, items = stores()
    claimed(items, 0)
    items.finish(ref(0), "tok", OK, NOW)
    assert items.claim(ref(0), "again", NOW + 90, NOW) == ClaimRefused(terminal=True)
    assert items.claim(ref(7), "again", NOW + 90, NOW) == ClaimRefused(terminal=True)


def test_cancel_takes_a_pending_item_or_one_this_delivery_claimed():
    batches, items = stores()
    assert items.cancel(ref(0), NOW)
    claimed(items, 1, token="mine")
    assert not items.cancel(ref(1), NOW)  # not pending any more
    assert not items.cancel(ref(1), NOW, claimed_by="theirs")
    assert items.cancel(ref(1), NOW, claimed_by="mine")
    shard = batches.totals(batch_id(1))
    assert (shard.cancelled, shard.in_progress, shard.finished) == (2, 0, 2)


def test_fail_from_dead_letter_ends_any_non_terminal_item_once_creating_a_missing_one():
    batches, items = stores(total=4)
    error = ItemError("dead_letter", "gave up")
    claimed(items, 1)
    del items.items[batch_id(1), 3]  # its chunk was dead-lettered before it was written
    results = [items.fail_from_dead_letter(ref(s), f"https://a.test/{s}", error, NOW) for s in (0, 1, 3, 1)]
    assert [bool(r) for r in results] == [True, True, True, False]
    assert items.record(batch_id(1), 3).status is ItemStatus.FAILED
    shard = batches.totals(batch_id(1))
    assert (shard.failed, shard.in_progress, shard.errors) == (3, 0, {"dead_letter": 3})


def test_put_pending_never_overwrites_and_returns_what_is_still_pending():
    batches, items = stores(total=3)
    claimed(items, 1)
    batch = batches.batches[batch_id(1)]
    assert items.put_pending(batch, 0, ["https://a.test/0", "https://a.test/1", "https://a.test/2"], NOW) == [
        (0, "https://a.test/0"),
        (2, "https://a.test/2"),
    ]
    assert items.record(batch_id(1), 1).status is ItemStatus.IN_PROGRESS


def test_item_cursors_page_exactly_and_a_forged_or_foreign_cursor_is_rejected():
    _, items = stores(total=7)
    seen, cursor, pages = [], None, 0
    while True:
        rows, cursor = items.query(batch_id(1), None, 3, cursor)
        seen += [r.seq for r in rows]
        pages += 1
        if cursor is None:
            break
    assert seen == list(range(7)) and pages == 3
    _, cursor = items.query(batch_id(1), None, 3, None)
    with pytest.raises(InvalidCursor):
        items.query(batch_id(1), None, 3, "eyJwayI6IkIjYl8xIn0")
    with pytest.raises(InvalidCursor):
        items.query(batch_id(2), None, 3, cursor)
    rows, _ = items.pending(batch_id(1), cursor, 10)
    assert [r.seq for r in rows] == [3, 4, 5, 6]


# ---- batches ---------------------------------------------------------------------------------------------------
def test_a_repeated_client_token_returns_the_earlier_batch():
    batches = FakeBatchStore()
    first, created = batches.create(batch_record(1), [3], "tok-1", take_group=False)
    again, created_again = batches.create(batch_record(2), [3], "tok-1", take_group=False)
    assert created and not created_again and again == first
    assert list(batches.batches) == [batch_id(1)]


def test_a_busy_group_queues_new_batches_in_id_order_and_hands_over():
    batches = FakeBatchStore()
    running, _ = batches.create(batch_record(1, group="g"), [1], None, take_group=True)
    for n in (3, 2):
        queued, _ = batches.create(batch_record(n, group="g"), [1], None, take_group=True)
        assert queued.status is BatchStatus.QUEUED and queued.auto_start
    assert running.status is BatchStatus.PENDING
    assert batches.next_waiting_in_group("t_acme", "g") == batch_id(2)
    assert not batches.take_group("t_acme", "g", batch_id(2))
    assert batches.release_group("t_acme", "g", batch_id(1))
    assert batches.take_group("t_acme", "g", batch_id(2)) and batches.start(batch_id(2), NOW)
    assert batches.next_waiting_in_group("t_acme", "g") == batch_id(3)
    assert not batches.release_group("t_acme", "g", batch_id(1))  # not the holder any more


def test_batch_status_changes_are_conditional():
    batches = FakeBatchStore()
    batches.create(batch_record(1, status=BatchStatus.PENDING), [1], None, take_group=False)
    assert not batches.start(batch_id(1), NOW)  # not queued
    assert batches.begin_processing(batch_id(1), NOW + 1)
    assert not batches.begin_processing(batch_id(1), NOW + 2)
    assert batches.end(batch_id(1), BatchStatus.COMPLETED, NOW + 3, (BatchStatus.PENDING, BatchStatus.PROCESSING))
    assert not batches.end(batch_id(1), BatchStatus.CANCELLED, NOW + 4, (BatchStatus.PROCESSING,))
    b = batches.get(batch_id(1))
    assert b is not None and (b.status, b.started_at, b.completed_at) == (BatchStatus.COMPLETED, NOW + 1, NOW + 3)


def test_batches_list_newest_first_with_exact_pages_and_filters():
    batches = FakeBatchStore()
    for n in range(1, 6):
        batches.create(batch_record(n, group="g" if n % 2 else None), [1], None, take_group=False)
    batches.create(batch_record(9, tenant_id="t_other"), [1], None, take_group=False)
    first, cursor = batches.list("t_acme", 2, None, None, None)
    second, cursor2 = batches.list("t_acme", 2, cursor, None, None)
    last, end = batches.list("t_acme", 2, cursor2, None, None)
    assert [b.batch_id for b, _ in first + second + last] == [batch_id(n) for n in (5, 4, 3, 2, 1)]
    assert end is None
    grouped, _ = batches.list("t_acme", 10, None, None, "g")
    assert [b.batch_id for b, _ in grouped] == [batch_id(n) for n in (5, 3, 1)]
    with pytest.raises(InvalidCursor):
        batches.list("t_other", 2, cursor, None, None)
    with pytest.raises(InvalidCursor):
        batches.list("t_acme", 2, "forged", None, None)


# ---- faults and records ----------------------------------------------------------------------------------------
def test_an_injected_fault_is_raised_before_or_after_the_change_and_calls_are_recorded():
    batches, items = stores()
    claimed(items, 0)
    items.fail_next("finish", RetryableStoreError("throttled"))
    with pytest.raises(RetryableStoreError):
        items.finish(ref(0), "tok", OK, NOW)
    assert batches.totals(batch_id(1)).finished == 0  # nothing happened
    items.fail_next("finish", TimeoutError("answer lost"), after=True)
    with pytest.raises(TimeoutError):
        items.finish(ref(0), "tok", OK, NOW)
    assert batches.totals(batch_id(1)).finished == 1  # the write was made, its answer lost
    assert not items.finish(ref(0), "tok", OK, NOW)  # a retry is told it lost
    assert len(items.calls_to("finish")) == 3
    with pytest.raises(AttributeError):
        items.fail_next("finnish", RuntimeError())
    with pytest.raises(AttributeError):
        items.fail_next("record", RuntimeError())  # a test helper, not a port method


# ---- proxies and hosts -----------------------------------------------------------------------------------------
def pool_of(n: int, rate: float = 2.0, quarantine_after: int = 3, no_proxy_retry_s: float = 30.0) -> FakeProxyPool:
    pool = FakeProxyPool(quarantine_after=quarantine_after, no_proxy_retry_s=no_proxy_retry_s)
    pool.book.configure("a.test", HostConfig(rate, None), NOW)
    pool.add_proxies(n, NOW)
    return pool


def test_a_stale_release_changes_nothing_and_every_release_is_recorded():
    pool = pool_of(1)
    old = pool.lease("a.test", "w1", NOW, lease_s=10)
    new = pool.lease("a.test", "w2", NOW + 11, lease_s=10)  # the first lease lapsed
    pool.release(old, NOW + 12, Release.SUCCESS)
    assert pool.proxy("p_1").lease_owner == "w2" and pool.proxy("p_1").succeeded == 0
    pool.release(new, NOW + 12, Release.SUCCESS)
    pool.release(new, NOW + 13, Release.UNUSED)  # a second release of the same lease
    assert pool.proxy("p_1").succeeded == 1 and pool.proxy("p_1").lease_owner is None
    assert [r.applied for r in pool.release_calls(new)] == [True, False]
    assert pool.unreleased() == []


def test_unreleased_names_a_leaked_lease():
    pool = pool_of(2)
    kept = pool.lease("a.test", "w1", NOW, lease_s=10)
    assert pool.unreleased() == [kept]


def test_each_proxy_paces_each_host_at_its_rate_and_max_wait_takes_a_slot_soon_enough():
    pool = pool_of(1, rate=2.0)
    first = pool.lease("a.test", "w1", NOW, lease_s=10)
    pool.release(first, NOW, Release.SUCCESS)
    with pytest.raises(NoProxyAvailable) as e:
        pool.lease("a.test", "w2", NOW, lease_s=10)
    assert e.value.retry_at == NOW + 0.5
    second = pool.lease("a.test", "w2", NOW, lease_s=10, max_wait_s=1.0)
    assert second.start_at == NOW + 0.5 and second.fence == first.fence + 1
    with pytest.raises(NoProxyAvailable) as busy:  # leased: another host must wait for the lease too
        pool.lease("b.test", "w3", NOW + 0.1, lease_s=10, max_wait_s=1.0)
    assert busy.value.retry_at == NOW + 0.1 + pool.busy_retry_s


def test_avoid_prefers_another_proxy_but_takes_the_avoided_one_when_alone():
    pool = pool_of(2)
    assert pool.lease("a.test", "w1", NOW, lease_s=10, avoid="p_1").proxy_id == "p_2"
    assert pool.lease("a.test", "w2", NOW, lease_s=10, avoid="p_1").proxy_id == "p_1"


def test_a_rate_limited_release_cools_the_proxy_for_retry_after():
    pool = pool_of(1, rate=2.0)
    lease = pool.lease("a.test", "w1", NOW, lease_s=10)
    pool.release(lease, NOW + 1, Release.RATE_LIMITED, retry_after_s=30)
    with pytest.raises(NoProxyAvailable) as e:
        pool.lease("a.test", "w2", NOW + 29, lease_s=10, max_wait_s=0.5)
    assert e.value.retry_at == NOW + 31
    (rec,) = pool.list_all(NOW + 2)
    assert rec.cooldowns == {"a.test": NOW + 31} and rec.rate_limited == 1
    assert pool.lease("b.test", "w3", NOW + 2, lease_s=10).proxy_id == "p_1"  # other hosts are not cooled
    assert pool.list_all(NOW + 40)[0].cooldowns == {}


def test_no_usable_proxy_retries_after_no_proxy_retry_s():
    pool = pool_of(0, no_proxy_retry_s=30.0)
    with pytest.raises(NoProxyAvailable) as e:
        pool.lease("a.test", "w1", NOW, lease_s=10)
    assert e.value.retry_at == NOW + 30


def test_proxy_faults_quarantine_after_n_and_a_restore_clears_them():
    pool = pool_of(1, quarantine_after=2)
    for i in range(2):
        lease = pool.lease("a.test", "w", NOW + i, lease_s=10)
        pool.release(lease, NOW + i, Release.FAILED, proxy_fault=True)
    assert pool.proxy("p_1").state == "quarantined"
    assert pool.capacity("a.test", NOW) == 0
    with pytest.raises(NoProxyAvailable):
        pool.lease("a.test", "w", NOW + 5, lease_s=10)
    pool.keep_quarantined("p_1", NOW, checks=1, next_check_at=NOW + 60)
    assert pool.proxy("p_1").next_check_at == NOW + 60
    pool.restore("p_1", NOW + 60)
    assert pool.proxy("p_1").consecutive_errors == 0 and pool.capacity("a.test", NOW) == 2.0


def test_hosts_configure_forget_and_hand_out_tickets_spaced_by_the_gap():
    pool = pool_of(2, rate=4.0)
    book = pool.book
    book.configure("a.test", HostConfig(4.0, 3.0), NOW)
    assert pool.capacity("a.test", NOW) == 6.0  # capped by max_rate
    lease = pool.lease("a.test", "w", NOW, lease_s=10)
    assert set(book.hosts()["a.test"].proxies) == {lease.proxy_id}
    assert book.forget("a.test") and not book.forget("a.test") and "a.test" not in book.hosts()
    assert [book.take_ticket("a.test", NOW, NOW + 5, 0.5) for _ in range(3)] == [NOW + 5, NOW + 5.5, NOW + 6]
    assert book.take_ticket("a.test", NOW + 20, NOW + 20, 0.5) == NOW + 20  # the line had emptied


def status_of(fetched: FetchResponse | FetchFailure) -> int:
    assert isinstance(fetched, FetchResponse)
    return fetched.status_code


# ---- edges -----------------------------------------------------------------------------------------------------
def test_the_fetcher_answers_as_scripted_and_records_calls():
    clock = FakeClock()
    boom = RuntimeError("socket closed")
    fetcher = FakeFetcher(
        {
            "https://a.test/": page("https://a.test/"),
            "https://b.test/": [page("https://b.test/", 429, retry_after="5"), failure("timeout")],
            "https://c.test/": lambda call: page(call.url, 500 if call.proxy_url else 200),
            "https://d.test/": boom,
        },
        probes={"http://bad:1": False},
        clock=clock,
        takes_s=0.25,
    )
    assert status_of(fetcher.fetch("https://a.test/", "http://p:1", 5, 1000)) == 200
    assert status_of(fetcher.fetch("https://b.test/", None, 5, 1000)) == 429
    assert fetcher.fetch("https://b.test/", None, 5, 1000) == failure("timeout")
    with pytest.raises(UnscriptedFetch):
        fetcher.fetch("https://b.test/", None, 5, 1000)
    assert status_of(fetcher.fetch("https://c.test/", "http://p:1", 5, 1000)) == 500
    with pytest.raises(RuntimeError):
        fetcher.fetch("https://d.test/", None, 5, 1000)
    assert [c.proxy_url for c in fetcher.fetches][:1] == ["http://p:1"]
    assert clock.now() == EPOCH + 6 * 0.25 and clock.sleeps == [0.25] * 6
    assert fetcher.probe("http://ok:1") and not fetcher.probe("http://bad:1")


def test_the_queue_keeps_copies_of_bodies_with_delays_clamped_as_sqs_does():
    queue = FakeQueue()
    work = WorkMessage(batch_id=batch_id(1), tenant_id="t_acme", seq=0, shard=0, kind="page", item="https://a.test/")
    queue.send_work([work], delay_s=2000)
    queue.send_fanout([FanoutMessage(type="dispatch", batch_id=batch_id(1), tenant_id="t_acme")])
    queue.change_visibility("rh-1", -5)
    (sent,) = queue.pop_work_sent()
    assert sent.message == work and sent.message is not work and sent.delay_s == 900
    assert [m.type for m in queue.pop_fanout()] == ["dispatch"] and queue.pop_fanout() == []
    assert queue.visibility == [("rh-1", 0)]


def test_the_clock_moves_only_when_told_or_slept():
    clock = FakeClock()
    clock.sleep(-1)
    clock.sleep(2)
    assert clock.advance(3) == EPOCH + 5 and clock.sleeps == [-1, 2]


def test_make_deps_wires_fakes_into_deps_with_dummy_required_settings():
    deps = make_deps(proxies=2, lease_seconds=30)
    assert isinstance(deps, Deps)
    assert deps.settings.lease_seconds == 30 and deps.settings.work_queue_url
    assert deps.items.batches is deps.batches and deps.pool.book is deps.hosts
    assert [p.proxy_id for p in deps.pool.list_all(deps.clock.now())] == ["p_1", "p_2"]
    assert deps.fetcher.clock is deps.clock
