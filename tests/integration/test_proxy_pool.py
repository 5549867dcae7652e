"""Leases, fencing, cooldowns and health of the DynamoDB proxy pool."""

from __future__ import annotations

import itertools

import pytest
from scrapersky.errors import NoProxyAvailable
from scrapersky.services import maintenance

NOW = 1_900_000_000.0


@pytest.fixture
def one_proxy(harness):
    pool = harness.deps.pool
    pool.add("p_a", "http://u:p@127.0.0.1:9", "http://u***@127.0.0.1:9", {}, NOW)
    return pool


def test_a_leased_proxy_cannot_be_leased_again_until_released(one_proxy):
    lease = one_proxy.lease("example.com", "w1", NOW, 30)
    with pytest.raises(NoProxyAvailable):
        one_proxy.lease("example.com", "w2", NOW + 1, 30)
    one_proxy.release(lease, "example.com", NOW + 2, "success", None, False)
    again = one_proxy.lease("example.com", "w2", NOW + 3, 30)
    assert again.fence == lease.fence + 1


def test_a_crashed_workers_lease_lapses_and_its_late_release_changes_nothing(one_proxy):
    stale = one_proxy.lease("example.com", "crashed", NOW, 30)
    fresh = one_proxy.lease("example.com", "w2", NOW + 31, 30)  # expired: taken over
    one_proxy.release(stale, "example.com", NOW + 32, "success", None, False)  # fenced off: no effect
    with pytest.raises(NoProxyAvailable):
        one_proxy.lease("example.com", "w3", NOW + 33, 30)
    one_proxy.release(fresh, "example.com", NOW + 34, "success", None, False)
    assert one_proxy.lease("example.com", "w3", NOW + 35, 30).fence == fresh.fence + 1


def test_a_429_cools_the_proxy_for_that_host_only(one_proxy):
    lease = one_proxy.lease("slow.example", "w1", NOW, 30)
    one_proxy.release(lease, "slow.example", NOW + 1, "rate_limited", 20.0, False)
    with pytest.raises(NoProxyAvailable) as waited:
        one_proxy.lease("slow.example", "w2", NOW + 2, 30)
    assert waited.value.retry_at == pytest.approx(NOW + 21, abs=1e-3)
    other = one_proxy.lease("fast.example", "w2", NOW + 2, 30)
    one_proxy.release(other, "fast.example", NOW + 3, "success", None, False)
    assert one_proxy.lease("slow.example", "w3", NOW + 22, 30)


def test_proxy_errors_quarantine_the_proxy_and_the_health_check_brings_it_back(harness, one_proxy):
    for i in range(3):
        lease = one_proxy.lease("example.com", f"w{i}", NOW + i, 30)
        one_proxy.release(lease, "example.com", NOW + i, "failed", None, True)
    [rec] = one_proxy.list_all()
    assert rec["state"] == "quarantined"
    with pytest.raises(NoProxyAvailable):
        one_proxy.lease("example.com", "w9", NOW + 10, 30)
    report = maintenance.check_quarantined(harness.deps, probe=lambda url: False)
    assert report["still_quarantined"] == ["p_a"]
    [rec] = one_proxy.list_all()
    assert rec["checks"] == 1 and rec["next_check_at"] > harness.deps.clock.now() - 1
    one_proxy.set_state("p_a", "quarantined", NOW, {"next_check_at": 0})
    report = maintenance.check_quarantined(harness.deps, probe=lambda url: True)
    assert report["restored"] == ["p_a"]
    assert one_proxy.lease("example.com", "w10", NOW + 20, 30)


def test_a_lease_books_the_hosts_next_slot_at_the_learnt_pace(one_proxy):
    first = one_proxy.lease("paced.example", "w1", NOW, 30)
    one_proxy.release(first, "paced.example", NOW + 0.004, "success", None, False)  # a quick answer
    with pytest.raises(NoProxyAvailable) as early:
        one_proxy.lease("paced.example", "w2", NOW + 0.2, 30)
    assert early.value.retry_at == pytest.approx(NOW + 1 / 1.5, abs=1e-3)  # 1 req/s, sped up by the success
    second = one_proxy.lease("paced.example", "w2", NOW + 0.2, 30, max_wait_s=1.0)
    assert second.start_at == pytest.approx(NOW + 1 / 1.5, abs=1e-3)  # booked the slot, waits for it
    one_proxy.release(second, "paced.example", NOW + 1 / 1.5 + 0.004, "success", None, False)
    third = one_proxy.lease("paced.example", "w3", NOW + 0.75, 30, max_wait_s=1.0)
    assert third.start_at == pytest.approx(NOW + 1 / 1.5 + 1 / 2.25, abs=1e-3)  # faster after each success


def test_waiting_items_get_spread_tickets_in_line(one_proxy):
    tickets = [one_proxy.take_ticket("busy.example", NOW, NOW + 5) for _ in range(4)]
    assert tickets[0] == NOW + 5
    assert tickets == sorted(tickets) and len(set(tickets)) == 4
    assert tickets[1] - tickets[0] == pytest.approx(1.0, abs=1e-3)  # one proxy at 1 req/s


def test_a_request_that_reached_the_site_late_pushes_the_next_slot_so_the_site_still_sees_the_pace(one_proxy):
    lease = one_proxy.lease("cold.example", "w1", NOW, 30)
    one_proxy.release(lease, "cold.example", NOW + 0.08, "success", None, False)  # a cold connection: 80 ms
    nxt = one_proxy.lease("cold.example", "w2", NOW + 0.1, 30, max_wait_s=2.0)
    # nothing known of its usual answer time yet: it reached the site just before the answer left
    assert nxt.start_at == pytest.approx(NOW + 0.075 + 1 / 1.5, abs=1e-3)


def test_a_site_that_always_takes_long_to_answer_does_not_slow_the_pace(one_proxy):
    """Time the site spends thinking comes after the request reached it: once the pool knows the usual
    answer time, the next request counts from the arrival, not from the answer."""
    host, t, starts = "thinker.example", NOW, []
    for i in range(2):
        lease = one_proxy.lease(host, f"w{i}", t, 30, max_wait_s=2.0)
        starts.append(lease.start_at)
        t = lease.start_at + 0.6  # every answer takes 0.6 s
        one_proxy.release(lease, host, t, "success", None, False)
    assert starts[1] == pytest.approx(NOW + 0.595 + 1 / 1.5, abs=1e-3)  # the first answer: a cold start?
    learnt = one_proxy.hosts()[host]["proxies"]["p_a"]
    assert learnt["answer_s"] == pytest.approx(0.6)
    assert learnt["next_at"] == pytest.approx(starts[1] + 1 / 2.25, abs=1e-3)  # usual by now: from the arrival


def test_a_configured_rate_starts_a_new_host_there_without_slow_start(one_proxy):
    one_proxy.configure_host("known.example", 4.0, None, NOW)
    first = one_proxy.lease("known.example", "w1", NOW, 30)
    one_proxy.release(first, "known.example", NOW + 0.004, "success", None, False)
    nxt = one_proxy.lease("known.example", "w2", NOW + 0.02, 30, max_wait_s=1.0)
    # a step under the known 4 req/s (never at it: requests do not arrive exactly on time), no slow start
    assert nxt.start_at == pytest.approx(NOW + 1 / (4 * 0.97), abs=1e-3)


def test_a_configured_cap_is_never_exceeded_however_many_successes(one_proxy):
    one_proxy.configure_host("polite.example", None, 2.0, NOW)
    t, starts = NOW, []
    for i in range(12):
        lease = one_proxy.lease("polite.example", f"w{i}", t, 30, max_wait_s=5.0)
        starts.append(lease.start_at)
        t = lease.start_at + 0.01
        one_proxy.release(lease, "polite.example", t, "success", None, False)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(0.5, abs=1e-3)  # slow start climbed to the cap and stayed there
    assert one_proxy.hosts()["polite.example"]["proxies"]["p_a"]["rate"] <= 2.0


def test_forgetting_a_host_drops_what_was_learnt_and_configured_but_not_a_running_cooldown(one_proxy):
    one_proxy.configure_host("old.example", 3.0, 5.0, NOW)
    lease = one_proxy.lease("old.example", "w1", NOW, 30)
    one_proxy.release(lease, "old.example", NOW + 0.01, "rate_limited", 60.0, False)
    assert one_proxy.hosts()["old.example"]["ceiling"] < 3.0  # learnt from the 429, shared with the pool
    assert one_proxy.forget_host("old.example") is True
    assert "old.example" not in one_proxy.hosts()
    assert one_proxy.forget_host("old.example") is False
    with pytest.raises(NoProxyAvailable) as waiting:  # the site said Retry-After: 60; forgetting is no excuse
        one_proxy.lease("old.example", "w2", NOW + 0.02, 30)
    assert waiting.value.retry_at == pytest.approx(NOW + 60.01, abs=1e-3)
    fresh = one_proxy.lease("old.example", "w2", NOW + 61, 30)
    assert fresh.pace is not None and fresh.pace.rate == 1.0 and fresh.pace.ceiling is None  # learns anew


def test_a_worker_does_not_wait_for_its_own_proxy_while_another_is_free_by_now(harness, one_proxy):
    """Containers see the pool through snapshots; one showing a proxy leased a while ago is read again
    before waiting for a slot, so the end of a batch is not left to the proxy a worker just released."""
    from scrapersky.adapters.dynamo_proxies import DynamoProxyPool

    one_proxy.add("p_b", "http://u:p@127.0.0.1:10", "http://u***@127.0.0.1:10", {}, NOW)
    other = DynamoProxyPool("proxies", one_proxy.ddb)  # another container, with its own snapshot
    host = "end.example"
    theirs = other.lease(host, "w2", NOW - 1.0, 30, avoid="p_a")  # books its next slot at NOW
    assert theirs.proxy_id == "p_b"
    one_proxy._proxies(NOW - 0.99, refresh=True)  # my snapshot: p_b leased
    other.release(theirs, host, NOW - 0.95, "success", None, False)  # ...and released right after
    mine = one_proxy.lease(host, "w1", NOW - 0.5, 30)
    assert mine.proxy_id == "p_a"
    one_proxy.release(mine, host, NOW - 0.45, "success", None, False)  # my next slot: NOW + 1/1.5 - 0.5
    again = one_proxy.lease(host, "w1", NOW, 30, max_wait_s=1.0)
    assert again.proxy_id == "p_b" and again.start_at == pytest.approx(NOW, abs=1e-3)  # no wait at all


def test_a_configured_limit_is_not_crept_past_however_many_successes(one_proxy):
    one_proxy.configure_host("strict.example", 4.0, None, NOW)
    t = NOW
    for i in range(300):
        lease = one_proxy.lease("strict.example", f"w{i}", t, 30, max_wait_s=5.0)
        t = lease.start_at + 0.001
        one_proxy.release(lease, "strict.example", t, "success", None, False)
    learnt = one_proxy.hosts()["strict.example"]["proxies"]["p_a"]
    assert learnt["rate"] <= 4.0 * 0.97 and learnt["ceiling"] <= 4.0 * 0.97


def test_a_failed_request_that_left_late_spaces_the_next_one_from_when_it_left(one_proxy):
    from dataclasses import replace

    lease = one_proxy.lease("late.example", "w1", NOW, 30)  # booked for NOW, 1 req/s
    sent = replace(lease, start_at=NOW + 0.3)  # a probe and the item claim came first: it left 0.3 s late
    one_proxy.release(sent, "late.example", NOW + 0.304, "failed", None, False)
    nxt = one_proxy.lease("late.example", "w2", NOW + 0.4, 30, max_wait_s=2.0)
    assert nxt.start_at == pytest.approx(NOW + 1.3, abs=1e-3)
