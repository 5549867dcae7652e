"""Leases, fencing, cooldowns and health of the DynamoDB proxy pool, and the host book beside it."""

from __future__ import annotations

import itertools
import json

import pytest
from scrapersky.adapters.ddb import ser_item
from scrapersky.adapters.dynamo_hosts import DynamoHostBook
from scrapersky.adapters.dynamo_proxies import DynamoProxyPool
from scrapersky.adapters.proxy_rows import new_proxy_row
from scrapersky.errors import NoProxyAvailable
from scrapersky.host_ports import HostConfig
from scrapersky.models import ProxyState
from scrapersky.ports import Release

from devstack.cfn_yaml import load_template
from tests.conftest import ROOT

NOW = 1_900_000_000.0


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
    book.configure("known.example", HostConfig(4.0, None), NOW)
    first = one_proxy.lease("known.example", "w1", NOW, 30)
    one_proxy.release(first, NOW + 0.004, Release.SUCCESS)
    nxt = one_proxy.lease("known.example", "w2", NOW + 0.02, 30, max_wait_s=1.0)
    # a step under the known 4 req/s (never at it: requests do not arrive exactly on time), no slow start
    assert nxt.start_at == pytest.approx(NOW + 1 / (4 * 0.97), abs=1e-3)


def test_a_configured_cap_is_never_exceeded_however_many_successes(one_proxy, book):
    book.configure("polite.example", HostConfig(None, 2.0), NOW)
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
    book.configure("old.example", HostConfig(3.0, 5.0), NOW)
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
    book.configure("strict.example", HostConfig(4.0, None), NOW)
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
    book.configure("known.example", HostConfig(4.0, None), NOW)
    assert one_proxy.capacity("known.example", NOW + 0.1) == pytest.approx(2 * 4.0 * 0.97)
    for i in range(3):
        lease = one_proxy.lease("other.example", f"w{i}", NOW + 1 + i, 30, avoid="p_b")
        one_proxy.release(lease, NOW + 1 + i, Release.FAILED, proxy_fault=True)
    assert one_proxy.capacity("known.example", NOW + 4) == pytest.approx(4.0 * 0.97)  # p_a quarantined


# ---- per-(proxy, host) state is bounded ------------------------------------------------------------------------
class Meter:
    """Counts what a client's DynamoDB calls cost: calls, bytes sent and returned, the capacity DynamoDB reports
    (ReturnConsumedCapacity=TOTAL on every call that takes it) and every key a read asked for."""

    TAKES_CAPACITY = {"GetItem", "BatchGetItem", "UpdateItem", "PutItem", "DeleteItem", "Query", "Scan"}

    def __init__(self, client) -> None:
        self.calls: list[str] = []
        self.keys: list[str] = []
        self.sent = self.received = 0
        self.capacity = 0.0
        client.meta.events.register("provide-client-params.dynamodb.*", self._params)
        client.meta.events.register("before-send.dynamodb.*", self._sent)
        client.meta.events.register("after-call.dynamodb.*", self._received)

    def _params(self, params, model, **_) -> None:
        if model.name in self.TAKES_CAPACITY:
            params["ReturnConsumedCapacity"] = "TOTAL"
        self.calls.append(model.name)
        asked = params.get("RequestItems", {}).values() if model.name == "BatchGetItem" else []
        keys = [params.get("Key")] + [k for t in asked for k in t["Keys"]]
        self.keys += [k["proxy_id"]["S"] for k in keys if k]

    def _sent(self, request, **_) -> None:
        self.sent += len(request.body or b"")

    def _received(self, http_response, parsed, **_) -> None:
        self.received += len(http_response.content or b"")
        used = parsed.get("ConsumedCapacity") or []
        self.capacity += sum(c.get("CapacityUnits", 0) for c in ([used] if isinstance(used, dict) else used))

    def reset(self) -> None:
        self.calls, self.keys, self.sent, self.received, self.capacity = [], [], 0, 0, 0.0


def _learn_hosts(ddb, proxy_id: str, hosts: range) -> None:
    """Pacing state for many hosts on one proxy, as releases leave it (written in batches: the test's own setup)."""
    rows = [
        {
            "proxy_id": {"S": f"ph#{proxy_id}#h{i:07d}.example"},
            **{k: {"N": v} for k, v in (("n", "1900000000.5"), ("r", "2.25"), ("c", "1.9"), ("a", "0.031"))},
            **{"fence": {"N": "7"}, "lease_until": {"N": "0"}, "expires_at": {"N": "1900021600"}},
        }
        for i in hosts
    ]
    for i in range(0, len(rows), 25):
        ddb.batch_write_item(RequestItems={"proxies": [{"PutRequest": {"Item": r}} for r in rows[i : i + 25]]})


def _one_lease_from_a_cold_container(ddb, meter: Meter, host: str, t: float) -> tuple[Meter, int]:
    pool = DynamoProxyPool("proxies", ddb)  # a cold container: it reads its snapshot first
    meter.reset()
    lease = pool.lease(host, "w1", t, 30, avoid="p_b")  # the proxy with the hosts
    pool.release(lease, t + 0.01, Release.SUCCESS)
    record = ddb.get_item(TableName="proxies", Key={"proxy_id": {"S": "p_a"}})["Item"]
    return meter, len(json.dumps(record))


def test_a_lease_costs_the_same_on_a_proxy_that_has_seen_ten_thousand_hosts_as_on_one_that_has_seen_ten(one_proxy):
    ddb = one_proxy.ddb
    one_proxy.add("p_b", "http://u:p@127.0.0.1:10", "http://u***@127.0.0.1:10", {}, NOW)
    for proxy in ("p_a", "p_b"):  # both records as used proxies' are (counters, times), the list of proxies built
        warm = one_proxy.lease("warm.example", "w0", NOW - 10, 30, avoid="p_b" if proxy == "p_a" else "p_a")
        one_proxy.release(warm, NOW - 9.99, Release.SUCCESS)
    meter = Meter(ddb)
    _learn_hosts(ddb, "p_a", range(10))
    few, few_size = _one_lease_from_a_cold_container(ddb, meter, "h9000001.example", NOW)
    cost_few = (list(few.calls), few.sent, few.received, few.capacity, sorted(few.keys))
    _learn_hosts(ddb, "p_a", range(10, 10_000))
    many, many_size = _one_lease_from_a_cold_container(ddb, meter, "h9000002.example", NOW + 5)
    cost_many = (list(many.calls), many.sent, many.received, many.capacity, sorted(many.keys))

    assert cost_many[0] == cost_few[0] and "Scan" not in cost_many[0]  # the same calls, and never a scan
    assert cost_many[3] == cost_few[3]  # the same capacity reported
    assert abs(cost_many[1] - cost_few[1]) < 40 and abs(cost_many[2] - cost_few[2]) < 40  # bytes: digits differ
    # every key read is the list of proxies, a proxy, or this host's row and pacing rows: no other host's state
    assert all(k == "index#proxies" or k.startswith("p_") or k.endswith("#h9000002.example") for k in many.keys)
    assert many_size == few_size < 1024  # the proxy record does not grow with its hosts: one write unit (1 KB)
    # and a host it has learnt of still starts from what it learnt
    learnt = DynamoProxyPool("proxies", ddb).lease("h0004321.example", "w2", NOW + 10, 30, avoid="p_b")
    assert learnt.proxy_id == "p_a" and learnt.pace is not None and learnt.pace.rate == 2.25


def test_pacing_rows_carry_the_ttl_and_outlive_their_cooldown(one_proxy, ddb):
    ttl = load_template((ROOT / "template.yaml").read_text())["Resources"]["ProxiesTable"]["Properties"]
    assert ttl["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    keep = one_proxy.pacing.keep_s
    used = one_proxy.lease("used.example", "w1", NOW, 30)
    one_proxy.release(used, NOW + 0.01, Release.SUCCESS)
    refused = one_proxy.lease("strict.example", "w1", NOW + 1, 30)
    one_proxy.release(refused, NOW + 1.01, Release.RATE_LIMITED, 86_400.0)  # Retry-After: a day

    def row(host: str) -> dict:
        return ddb.get_item(TableName="proxies", Key={"proxy_id": {"S": f"ph#p_a#{host}"}})["Item"]

    assert float(row("used.example")["expires_at"]["N"]) == pytest.approx(NOW + 0.01 + 1 / 1.5 + keep, abs=2)
    until = float(row("strict.example")["n"]["N"])
    assert until == pytest.approx(NOW + 1.01 + 86_400, abs=1e-3)
    assert float(row("strict.example")["expires_at"]["N"]) >= until + keep  # the cooldown outlives its row's use


def test_a_cooldown_for_one_host_is_honoured_while_another_host_leases_the_same_proxy_freely(one_proxy):
    refused = one_proxy.lease("a.example", "w1", NOW, 30)
    one_proxy.release(refused, NOW + 0.01, Release.RATE_LIMITED, 30.0)
    other = DynamoProxyPool("proxies", one_proxy.ddb)  # another container, its own snapshot
    t = NOW + 0.1
    for i in range(5):  # host B: one request after another through the same proxy, at B's own pace
        lease = other.lease("b.example", f"w{i}", t, 30, max_wait_s=2.0)
        assert lease.proxy_id == "p_a"
        t = lease.start_at + 0.01
        other.release(lease, t, Release.SUCCESS)
        with pytest.raises(NoProxyAvailable) as waiting:  # ...while host A still waits out its Retry-After
            other.lease("a.example", f"v{i}", t, 30, max_wait_s=2.0)
        assert waiting.value.retry_at == pytest.approx(NOW + 30.01, abs=1e-3)
    [rec] = other.list_all(t)
    assert rec.cooldowns == {"a.example": pytest.approx(NOW + 30.01)} and rec.succeeded == 5


def test_a_stale_view_never_starts_a_request_inside_a_slot_another_container_booked(one_proxy, book):
    host = "shared.example"
    first = one_proxy.lease(host, "x", NOW, 30)
    one_proxy.release(first, NOW + 0.004, Release.SUCCESS)  # my view: the slot opens at NOW + 1/1.5
    other = DynamoProxyPool("proxies", one_proxy.ddb)
    theirs = other.lease(host, "y", NOW + 0.7, 30)
    other.release(theirs, NOW + 0.704, Release.SUCCESS)
    true_slot = book.hosts()[host].proxies["p_a"].next_at
    assert true_slot > NOW + 0.8
    with pytest.raises(NoProxyAvailable) as refused:  # my view says "open now": the booking says otherwise
        one_proxy.lease(host, "x", NOW + 0.8, 30)
    assert refused.value.retry_at == pytest.approx(true_slot, abs=1e-3)
    assert one_proxy.stats["conflicts"] == 1
    [rec] = one_proxy.list_all(NOW + 0.8)
    assert rec.lease_until == 0  # the proxy went back at once
    theirs = other.lease(host, "y", true_slot, 30)  # my view is stale again...
    other.release(theirs, true_slot + 0.004, Release.SUCCESS)
    true_slot = book.hosts()[host].proxies["p_a"].next_at
    mine = one_proxy.lease(host, "x", true_slot - 0.2, 30, max_wait_s=1.0)  # ...so my lease waits for the true slot
    assert mine.start_at == pytest.approx(true_slot, abs=1e-6) and one_proxy.stats["conflicts"] == 1  # no conflict


def test_a_second_release_of_the_same_lease_changes_no_pace(one_proxy, book):
    lease = one_proxy.lease("twice.example", "w1", NOW, 30)
    one_proxy.release(lease, NOW + 0.01, Release.SUCCESS)
    before = book.hosts()["twice.example"].proxies["p_a"]
    one_proxy.release(lease, NOW + 5, Release.RATE_LIMITED, 60.0)
    assert book.hosts()["twice.example"].proxies["p_a"] == before
    [rec] = one_proxy.list_all(NOW + 6)
    assert rec.succeeded == 1 and rec.rate_limited == 0 and rec.cooldowns == {}


def test_proxies_written_before_the_pacing_rows_are_found_and_lose_their_per_host_attributes(ddb):
    legacy = {"n#old.example": 1.0, "r#old.example": 2.0, "c#old.example": 1.5, "a#old.example": 0.1}
    row = {**new_proxy_row("p_old", "http://u:p@127.0.0.1:9", "x", {}, NOW), **legacy}
    ddb.put_item(TableName="proxies", Item=ser_item(row))  # no list of proxies yet: a table from before
    pool = DynamoProxyPool("proxies", ddb)
    assert pool.lease("new.example", "w1", NOW, 30).proxy_id == "p_old"
    pool.list_all(NOW)
    item = ddb.get_item(TableName="proxies", Key={"proxy_id": {"S": "p_old"}})["Item"]
    assert not [k for k in item if "#" in k]
    pool.add("p_new", "http://u:p@127.0.0.1:10", "x", {}, NOW)
    assert {p.proxy_id for p in DynamoProxyPool("proxies", ddb).list_all(NOW)} == {"p_old", "p_new"}
    assert DynamoProxyPool("proxies", ddb).lease("new.example", "w2", NOW + 1, 30, avoid="p_old").proxy_id == "p_new"


def test_a_booking_that_fails_hands_the_proxy_back_instead_of_keeping_it(ddb, book):
    from botocore.exceptions import ClientError
    from scrapersky.errors import RetryableStoreError

    class ThrottlesPacingRows:
        """The client, but the first write to a pacing row is throttled (after the proxy was claimed)."""

        def __init__(self, client):
            self.client, self.armed = client, True

        def __getattr__(self, name):
            return getattr(self.client, name)

        def update_item(self, **kwargs):
            if self.armed and kwargs["Key"]["proxy_id"]["S"].startswith("ph#"):
                self.armed = False
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
            return self.client.update_item(**kwargs)

    pool = DynamoProxyPool("proxies", ThrottlesPacingRows(ddb), hosts=book)
    pool.add("p_a", "http://u:p@127.0.0.1:9", "http://u***@127.0.0.1:9", {}, NOW)
    with pytest.raises(RetryableStoreError):
        pool.lease("example.com", "w1", NOW, 30)
    again = DynamoProxyPool("proxies", ddb, hosts=book)  # another container: the proxy is free, not kept 30 s
    assert again.lease("example.com", "w2", NOW + 0.1, 30).proxy_id == "p_a"
