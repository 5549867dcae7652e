"""Leases, fencing, cooldowns and health of the DynamoDB proxy pool, and the host book beside it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from scrapersky.adapters.dynamo_hosts import DynamoHostBook
from scrapersky.adapters.dynamo_proxies import DynamoProxyPool
from scrapersky.errors import NoProxyAvailable
from scrapersky.models import ProxyState
from scrapersky.ports import Release

from devstack.cfn_yaml import load_template
from tests.conftest import ROOT

NOW = 1_900_000_000.0


@pytest.fixture
def ddb(monkeypatch) -> Iterator[object]:
    """moto's DynamoDB with the proxies table exactly as template.yaml declares it."""
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    props = load_template((ROOT / "template.yaml").read_text())["Resources"]["ProxiesTable"]["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        keys = {k: props[k] for k in ("AttributeDefinitions", "KeySchema")}
        client.create_table(TableName="proxies", BillingMode=props["BillingMode"], **keys)
        yield client


@pytest.fixture
def book(ddb) -> DynamoHostBook:
    return DynamoHostBook("proxies", ddb)


@pytest.fixture
def one_proxy(ddb, book) -> DynamoProxyPool:
    pool = DynamoProxyPool("proxies", ddb, hosts=book)
    pool.add("p_a", "http://u:p@127.0.0.1:9", "http://u***@127.0.0.1:9", {}, NOW)
    return pool


def test_a_leased_proxy_cannot_be_leased_again_until_released(one_proxy):
    lease = one_proxy.lease("example.com", "w1", NOW, 30)
    with pytest.raises(NoProxyAvailable):
        one_proxy.lease("example.com", "w2", NOW + 1, 30)
    one_proxy.release(lease, NOW + 2, Release.SUCCESS)
    again = one_proxy.lease("example.com", "w2", NOW + 3, 30)
    assert again.fence == lease.fence + 1


def test_a_crashed_workers_lease_lapses_and_its_late_release_changes_nothing(one_proxy):
    stale = one_proxy.lease("example.com", "crashed", NOW, 30)
    fresh = one_proxy.lease("example.com", "w2", NOW + 31, 30)  # expired: taken over
    one_proxy.release(stale, NOW + 32, Release.SUCCESS)  # fenced off: no effect
    with pytest.raises(NoProxyAvailable):
        one_proxy.lease("example.com", "w3", NOW + 33, 30)
    one_proxy.release(fresh, NOW + 34, Release.SUCCESS)
    assert one_proxy.lease("example.com", "w3", NOW + 35, 30).fence == fresh.fence + 1


def test_a_429_cools_the_proxy_for_that_host_only(one_proxy):
    lease = one_proxy.lease("slow.example", "w1", NOW, 30)
    one_proxy.release(lease, NOW + 1, Release.RATE_LIMITED, 20.0)
    with pytest.raises(NoProxyAvailable) as waited:
        one_proxy.lease("slow.example", "w2", NOW + 2, 30)
    assert waited.value.retry_at == pytest.approx(NOW + 21, abs=1e-3)
    other = one_proxy.lease("fast.example", "w2", NOW + 2, 30)
    one_proxy.release(other, NOW + 3, Release.SUCCESS)
    assert one_proxy.lease("slow.example", "w3", NOW + 22, 30)


def test_proxy_errors_quarantine_the_proxy_and_a_passed_check_brings_it_back(one_proxy):
    for i in range(3):
        lease = one_proxy.lease("example.com", f"w{i}", NOW + i, 30)
        one_proxy.release(lease, NOW + i, Release.FAILED, proxy_fault=True)
    [rec] = one_proxy.list_all(NOW + 3)
    assert rec.state == ProxyState.QUARANTINED and rec.consecutive_errors == 3 and rec.checks == 0
    with pytest.raises(NoProxyAvailable):
        one_proxy.lease("example.com", "w9", NOW + 10, 30)
    one_proxy.keep_quarantined("p_a", NOW + 11, checks=1, next_check_at=NOW + 40)  # failed its check
    [rec] = one_proxy.list_all(NOW + 11)
    assert rec.state == ProxyState.QUARANTINED and rec.checks == 1 and rec.next_check_at == NOW + 40
    with pytest.raises(NoProxyAvailable):
        one_proxy.lease("example.com", "w9", NOW + 12, 30)
    one_proxy.restore("p_a", NOW + 41)  # answered its next check
    [rec] = one_proxy.list_all(NOW + 41)
    assert rec.state == ProxyState.AVAILABLE and rec.consecutive_errors == 0 and rec.checks == 0
    assert one_proxy.lease("example.com", "w10", NOW + 42, 30)


def test_a_lease_books_the_hosts_next_slot_at_the_learnt_pace(one_proxy):
    first = one_proxy.lease("paced.example", "w1", NOW, 30)
    one_proxy.release(first, NOW + 0.004, Release.SUCCESS)  # a quick answer
    with pytest.raises(NoProxyAvailable) as early:
        one_proxy.lease("paced.example", "w2", NOW + 0.2, 30)
    assert early.value.retry_at == pytest.approx(NOW + 1 / 1.5, abs=1e-3)  # 1 req/s, sped up by the success
    second = one_proxy.lease("paced.example", "w2", NOW + 0.2, 30, max_wait_s=1.0)
    assert second.start_at == pytest.approx(NOW + 1 / 1.5, abs=1e-3)  # booked the slot, waits for it
    one_proxy.release(second, NOW + 1 / 1.5 + 0.004, Release.SUCCESS)
    third = one_proxy.lease("paced.example", "w3", NOW + 0.75, 30, max_wait_s=1.0)
    assert third.start_at == pytest.approx(NOW + 1 / 1.5 + 1 / 2.25, abs=1e-3)  # faster after each success


def test_waiting_items_get_spread_tickets_in_line(one_proxy, book):
    gap = 1 / one_proxy.capacity("busy.example", NOW)
    tickets = [book.take_ticket("busy.example", NOW, NOW + 5, gap) for _ in range(4)]
    assert tickets[0] == NOW + 5
    assert tickets == sorted(tickets) and len(set(tickets)) == 4
    assert tickets[1] - tickets[0] == pytest.approx(1.0, abs=1e-3)  # one proxy at 1 req/s


def test_a_request_that_reached_the_site_late_pushes_the_next_slot_so_the_site_still_sees_the_pace(one_proxy):
    lease = one_proxy.lease("cold.example", "w1", NOW, 30)
    one_proxy.release(lease, NOW + 0.08, Release.SUCCESS)  # a cold connection: 80 ms
    nxt = one_proxy.lease("cold.example", "w2", NOW + 0.1, 30, max_wait_s=2.0)
    # nothing known of its usual answer time yet: it reached the site just before the answer left
    assert nxt.start_at == pytest.approx(NOW + 0.075 + 1 / 1.5, abs=1e-3)


def test_a_site_that_always_takes_long_to_answer_does_not_slow_the_pace(one_proxy, book):
    """Time the site spends thinking comes after the request reached it: once the pool knows the usual
    answer time, the next request counts from the arrival, not from the answer."""
    host, t, starts = "thinker.example", NOW, []
    for i in range(2):
        lease = one_proxy.lease(host, f"w{i}", t, 30, max_wait_s=2.0)
        starts.append(lease.start_at)
        t = lease.start_at + 0.6  # every answer takes 0.6 s
        one_proxy.release(lease, t, Release.SUCCESS)
    assert starts[1] == pytest.approx(NOW + 0.595 + 1 / 1.5, abs=1e-3)  # the first answer: a cold start?
    learnt = book.hosts()[host].proxies["p_a"]
    assert learnt.answer_s == pytest.approx(0.6)
    assert learnt.next_at == pytest.approx(starts[1] + 1 / 2.25, abs=1e-3)  # usual by now: from the arrival


def test_a_configured_rate_starts_a_new_host_there_without_slow_start(one_proxy, book):
    book.configure("known.example", 4.0, None, NOW)
    first = one_proxy.lease("known.example", "w1", NOW, 30)
    one_proxy.release(first, NOW + 0.004, Release.SUCCESS)
    nxt = one_proxy.lease("known.example", "w2", NOW + 0.02, 30, max_wait_s=1.0)
    # a step under the known 4 req/s (never at it: requests do not arrive exactly on time), no slow start
    assert nxt.start_at == pytest.approx(NOW + 1 / (4 * 0.97), abs=1e-3)


def test_a_configured_cap_is_never_exceeded_however_many_successes(one_proxy, book):
    book.configure("polite.example", None, 2.0, NOW)
    t, starts = NOW, []
    for i in range(12):
        lease = one_proxy.lease("polite.example", f"w{i}", t, 30, max_wait_s=5.0)
        starts.append(lease.start_at)
        t = lease.start_at + 0.01
        one_proxy.release(lease, t, Release.SUCCESS)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(0.5, abs=1e-3)  # slow start climbed to the cap and stayed there
    assert book.hosts()["polite.example"].proxies["p_a"].rate <= 2.0


def test_forgetting_a_host_drops_what_was_learnt_and_configured_but_not_a_running_cooldown(one_proxy, book):
    book.configure("old.example", 3.0, 5.0, NOW)
    lease = one_proxy.lease("old.example", "w1", NOW, 30)
    one_proxy.release(lease, NOW + 0.01, Release.RATE_LIMITED, 60.0)
    assert book.hosts()["old.example"].ceiling < 3.0  # learnt from the 429, shared with the pool
    assert book.forget("old.example") is True
    assert "old.example" not in book.hosts()
    assert book.forget("old.example") is False
    with pytest.raises(NoProxyAvailable) as waiting:  # the site said Retry-After: 60; forgetting is no excuse
        one_proxy.lease("old.example", "w2", NOW + 0.02, 30)
    assert waiting.value.retry_at == pytest.approx(NOW + 60.01, abs=1e-3)
    fresh = one_proxy.lease("old.example", "w2", NOW + 61, 30)
    assert fresh.pace is not None and fresh.pace.rate == 1.0 and fresh.pace.ceiling is None  # learns anew


def test_a_worker_does_not_wait_for_its_own_proxy_while_another_is_free_by_now(one_proxy):
    """Containers see the pool through snapshots; one showing a proxy leased a while ago is read again
    before waiting for a slot, so the end of a batch is not left to the proxy a worker just released."""
    one_proxy.add("p_b", "http://u:p@127.0.0.1:10", "http://u***@127.0.0.1:10", {}, NOW)
    other = DynamoProxyPool("proxies", one_proxy.ddb)  # another container, with its own snapshot
    host = "end.example"
    theirs = other.lease(host, "w2", NOW - 1.0, 30, avoid="p_a")  # books its next slot at NOW
    assert theirs.proxy_id == "p_b"
    one_proxy.snapshot.proxies(NOW - 0.99, refresh=True)  # my snapshot: p_b leased
    other.release(theirs, NOW - 0.95, Release.SUCCESS)  # ...and released right after
    mine = one_proxy.lease(host, "w1", NOW - 0.5, 30)
    assert mine.proxy_id == "p_a"
    one_proxy.release(mine, NOW - 0.45, Release.SUCCESS)  # my next slot: NOW + 1/1.5 - 0.5
    again = one_proxy.lease(host, "w1", NOW, 30, max_wait_s=1.0)
    assert again.proxy_id == "p_b" and again.start_at == pytest.approx(NOW, abs=1e-3)  # no wait at all


def test_a_configured_limit_is_not_crept_past_however_many_successes(one_proxy, book):
    book.configure("strict.example", 4.0, None, NOW)
    t = NOW
    for i in range(300):
        lease = one_proxy.lease("strict.example", f"w{i}", t, 30, max_wait_s=5.0)
        t = lease.start_at + 0.001
        one_proxy.release(lease, t, Release.SUCCESS)
    learnt = book.hosts()["strict.example"].proxies["p_a"]
    assert learnt.rate <= 4.0 * 0.97 and learnt.ceiling <= 4.0 * 0.97


def test_a_failed_request_that_left_late_spaces_the_next_one_from_when_it_left(one_proxy):
    from dataclasses import replace

    lease = one_proxy.lease("late.example", "w1", NOW, 30)  # booked for NOW, 1 req/s
    sent = replace(lease, start_at=NOW + 0.3)  # a probe and the item claim came first: it left 0.3 s late
    one_proxy.release(sent, NOW + 0.304, Release.FAILED)
    nxt = one_proxy.lease("late.example", "w2", NOW + 0.4, 30, max_wait_s=2.0)
    assert nxt.start_at == pytest.approx(NOW + 1.3, abs=1e-3)


def test_the_proxy_list_shows_learnt_paces_and_only_cooldowns_longer_than_the_pace(one_proxy):
    refused = one_proxy.lease("slow.example", "w1", NOW, 30)
    one_proxy.release(refused, NOW + 1, Release.RATE_LIMITED, 20.0)
    paced = one_proxy.lease("fast.example", "w2", NOW + 2, 30)
    one_proxy.release(paced, NOW + 2.004, Release.SUCCESS)  # its next slot is only the pace away
    [rec] = one_proxy.list_all(NOW + 2.1)
    assert rec.state == ProxyState.AVAILABLE and rec.lease_until == 0 and rec.succeeded == rec.rate_limited == 1
    assert rec.cooldowns == {"slow.example": pytest.approx(NOW + 21)}
    assert rec.paces["slow.example"].rate == pytest.approx(0.7) and rec.paces["fast.example"].rate == 1.5


def test_capacity_sums_the_usable_proxies_paces_for_the_host(one_proxy, book):
    one_proxy.add("p_b", "http://u:p@127.0.0.1:10", "http://u***@127.0.0.1:10", {}, NOW)
    assert one_proxy.capacity("new.example", NOW) == 2.0  # two proxies at the default 1 req/s
    book.configure("known.example", 4.0, None, NOW)
    assert one_proxy.capacity("known.example", NOW + 0.1) == pytest.approx(2 * 4.0 * 0.97)
    for i in range(3):
        lease = one_proxy.lease("other.example", f"w{i}", NOW + 1 + i, 30, avoid="p_b")
        one_proxy.release(lease, NOW + 1 + i, Release.FAILED, proxy_fault=True)
    assert one_proxy.capacity("known.example", NOW + 4) == pytest.approx(4.0 * 0.97)  # p_a quarantined
