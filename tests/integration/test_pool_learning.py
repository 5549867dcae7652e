"""What the DynamoDB pool learns of a host as a whole (moto): a slot a lease did not use is given back, one proxy
probes a host nothing is known of while the others follow behind it and take the ceiling it learnt, and a refusal
soon after a refusal bounds the ceiling by what the site admitted in between (kept on the pacing row)."""

from __future__ import annotations

import pytest
from scrapersky.adapters.dynamo_hosts import DynamoHostBook
from scrapersky.adapters.dynamo_proxies import DynamoProxyPool
from scrapersky.ports import Lease, Release

NOW = 1_900_000_000.0
HOST = "shop.example"
SEEN_AGAIN_S = 2.5  # past the pool snapshot's lifetime: every lease below reads the table again


def pool_of(ddb, *proxy_ids: str) -> DynamoProxyPool:
    pool = DynamoProxyPool("proxies", ddb, hosts=DynamoHostBook("proxies", ddb))
    for pid in proxy_ids:
        pool.add(pid, f"http://u:p@127.0.0.{len(pid)}:9", "http://u***@127.0.0.1:9", {}, NOW)
    return pool


def lease(pool: DynamoProxyPool, at: float, avoid: str | None = None) -> Lease:
    return pool.lease(HOST, f"w@{at}", at, 30, avoid=avoid, max_wait_s=1.0)


def answered(pool: DynamoProxyPool, at: float, times: int, avoid: str | None = None) -> float:
    """`times` leases (avoiding `avoid` when another is free) each answered 0.1 s after it; the time after them."""
    for _ in range(times):
        held = lease(pool, at, avoid)
        pool.release(held, held.start_at + 0.1, Release.SUCCESS)
        at = held.start_at + SEEN_AGAIN_S
    return at


def test_a_lease_handed_back_unused_gives_its_slot_back(ddb):
    pool = pool_of(ddb, "p_a")
    held = lease(pool, NOW)
    pool.release(held, NOW + 0.1, Release.UNUSED)  # the claim was refused: no request went out
    again = lease(pool, NOW + 0.2)
    assert again.proxy_id == "p_a" and again.start_at == pytest.approx(NOW + 0.2)  # not one interval after NOW


def test_followers_probe_behind_the_leader_then_take_the_ceiling_it_learnt(ddb):
    pool = pool_of(ddb, "p_a", "p_b")  # p_a is the leader: the first usable proxy by id
    t = answered(pool, NOW, 3, avoid="p_b")  # the leader in slow start: 1 -> 1.5 -> 2.25 -> 3.375 req/s
    t = answered(pool, t, 2, avoid="p_a")  # the follower's own slow start would be at 2.25 now
    follower = lease(pool, t, avoid="p_a")
    assert follower.proxy_id == "p_b"
    assert follower.pace is not None and follower.pace.rate == pytest.approx(3.375 / 1.5**2)  # two steps behind
    pool.release(follower, t + 0.1, Release.SUCCESS)
    refused = lease(pool, t + SEEN_AGAIN_S, avoid="p_b")
    assert refused.proxy_id == "p_a"
    pool.release(refused, refused.start_at + 0.1, Release.RATE_LIMITED, 1.0)
    after = lease(DynamoProxyPool("proxies", ddb), refused.start_at + SEEN_AGAIN_S, avoid="p_a")  # another container
    assert after.proxy_id == "p_b" and after.pace is not None
    assert after.pace.ceiling == pytest.approx(3.375 * 0.85)  # the leader's, before this proxy ever overshot


def test_a_refusal_soon_after_a_refusal_sets_the_ceiling_from_what_the_site_admitted_in_between(ddb):
    pool = pool_of(ddb, "p_a")
    t = answered(pool, NOW, 3)
    first = lease(pool, t)
    pool.release(first, first.start_at + 0.1, Release.RATE_LIMITED, 1.0)
    t = answered(pool, first.start_at + SEEN_AGAIN_S, 3)  # three answers since the refusal...
    second = lease(pool, t)
    pool.release(second, second.start_at + 0.1, Release.RATE_LIMITED, 1.0)  # ...then refused again
    pace = lease(pool, second.start_at + SEEN_AGAIN_S).pace
    between = second.start_at - first.start_at
    assert pace is not None and pace.ceiling == pytest.approx((3 + 1) / between, rel=1e-3)


@pytest.mark.parametrize("function", ["worker", "fanout"])
def test_a_warm_up_invocation_with_no_records_answers_no_failures_and_touches_nothing(harness, function):
    calls = harness.deps.api_calls.count
    assert harness.handler(function)({"Records": []}, harness.context) == {"batchItemFailures": []}
    assert harness.deps.api_calls.count == calls  # no AWS call: nothing read, nothing sent
