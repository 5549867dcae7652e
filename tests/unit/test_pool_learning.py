"""What the pool learns of a host's limit as a whole: a refusal soon after a refusal bounds the ceiling by what the
site admitted in between (a site with a burst lets slow start overshoot far), one proxy probes while the others
follow a step behind, the pool's ceiling reaches the proxies that have not learnt one, and a slot a lease did not
use is given back."""

import math
from dataclasses import dataclass

import pytest
from scrapersky.domain.pacing import HostPace, PacingPolicy
from scrapersky.services import leasing

from devstack.site import RateLimiter
from tests.fakes import make_deps

POLICY = PacingPolicy(default_rate=1.0)


@dataclass(frozen=True)
class Host:
    rate: float | None = None
    max_rate: float | None = None
    ceiling: float | None = None


def test_a_refusal_soon_after_a_refusal_bounds_the_ceiling_by_what_the_site_admitted_in_between():
    # slow start ran to 5 req/s on a site with a burst before the first 429: the ceiling it set is far too high
    first = HostPace(rate=5.0).after_rate_limit(POLICY, now=10.0)
    assert first.ceiling == pytest.approx(4.25) and first.refused_at == 10.0
    pace = first
    for _ in range(3):  # three answers, then refused again 2 s after the first refusal
        pace = pace.after_success(POLICY)
    second = pace.after_rate_limit(POLICY, now=12.0)
    assert second.ceiling == pytest.approx((3 + 1) / 2.0)  # what the site let through between the two refusals
    assert second.since_refusal == 0 and second.refused_at == 12.0


def test_a_refusal_long_after_the_last_one_lowers_the_ceiling_only_a_little():
    pace = HostPace(rate=1.9, ceiling=1.9, refused_at=0.0, since_refusal=POLICY.overshoot_successes)
    assert pace.after_rate_limit(POLICY, now=100.0).ceiling == pytest.approx(1.9 * POLICY.ceiling_step)
    never_refused = HostPace(rate=1.9, ceiling=1.9)  # a ceiling the pool handed over: no refusal to count from
    assert never_refused.after_rate_limit(POLICY, now=100.0).ceiling == pytest.approx(1.9 * POLICY.ceiling_step)


def test_a_proxy_that_learnt_no_ceiling_or_one_far_above_the_pools_takes_the_pools():
    in_slow_start = HostPace(rate=3.0, answer_s=0.1)
    assert POLICY.pace_of(in_slow_start, Host(ceiling=1.9)) == HostPace(rate=1.9, ceiling=1.9, answer_s=0.1)
    overshot = HostPace(rate=3.5, ceiling=4.3)  # its own ceiling came from a slow start that ran far past the limit
    assert POLICY.pace_of(overshot, Host(ceiling=2.0)) == HostPace(rate=2.0, ceiling=2.0)
    crept = HostPace(rate=2.1, ceiling=2.1)  # a little above the pool's: learnt by success, it stands
    assert POLICY.pace_of(crept, Host(ceiling=2.0)) == crept


def test_followers_probe_two_steps_behind_the_leader_and_never_below_the_default_rate():
    mine = HostPace(rate=3.0)
    assert POLICY.pace_of(mine, None, leader=HostPace(rate=4.5)).rate == pytest.approx(4.5 / 1.5**2)
    assert POLICY.pace_of(mine, None, leader=HostPace(rate=1.0)).rate == 1.0
    assert POLICY.pace_of(mine, None, leader=HostPace(rate=2.0, ceiling=1.8)).rate == 1.8  # the leader was refused
    assert POLICY.pace_of(mine, Host(ceiling=2.5), leader=HostPace(rate=1.0)).rate == 2.5  # the pool knows: no leader
    learnt = HostPace(rate=1.9, ceiling=1.9)
    assert POLICY.pace_of(learnt, None, leader=HostPace(rate=1.0)) == learnt  # a proxy past slow start leads itself


def run_pool(share: bool, burst: float, pages: int, proxies: int = 4, stale_s: float = 1.0) -> tuple[int, float]:
    """Proxies pacing one host against the site's token bucket (2 req/s per client, escalating); each sees the
    pool's ceiling and the leader's pace as of its last look, at most `stale_s` old. (refusals, goodput)."""
    site = RateLimiter(2.0, burst, escalate=True)
    pool = Host()
    learnt: list[HostPace | None] = [None] * proxies
    seen: list[tuple[float, Host, HostPace | None]] = [(-1e9, Host(), None)] * proxies
    next_at = [0.0] * proxies
    admitted = refused = 0
    t = 0.0
    while admitted < pages:
        i = min(range(proxies), key=lambda k: next_at[k])
        t = next_at[i]
        if t - seen[i][0] > stale_s:
            seen[i] = (t, pool, learnt[0])
        _, host, leader = seen[i]
        pace = POLICY.pace_of(learnt[i], host if share else None, leader if share and i else None)
        retry = site.admit(f"proxy-{i}", t)
        if retry is None:
            admitted += 1
            step = POLICY.after_answer(pace, None, t, t + 0.005)
        else:
            refused += 1
            step = POLICY.after_refusal(pace, t + 0.005, math.ceil(retry))
            if step.shared_ceiling is not None and (pool.ceiling is None or pool.ceiling > step.shared_ceiling):
                pool = Host(ceiling=step.shared_ceiling)
        learnt[i], next_at[i] = step.pace, max(step.next_at, t + 0.001)
    return refused, pages / (t + 0.5) / (proxies * 2.0)


def test_a_pool_that_shares_what_it_learns_pays_few_refusals_on_a_site_with_a_burst():
    refused, goodput = run_pool(share=True, burst=2.0, pages=123)
    assert refused <= 6 and goodput >= 0.9
    alone, _ = run_pool(share=False, burst=2.0, pages=123)
    assert alone >= refused + 2  # each proxy paying its own learning 429s


def test_on_a_site_without_a_burst_only_the_leader_is_refused():
    refused, goodput = run_pool(share=True, burst=1.0, pages=200)
    assert refused == 1 and goodput >= 0.9


def test_a_lease_handed_back_unused_gives_its_slot_back():
    deps = make_deps(proxies=1)
    held = leasing.lease(deps, "example.com", "worker-1")
    leasing.hand_back(deps, held)  # e.g. the claim was refused: no request went out
    again = leasing.lease(deps, "example.com", "worker-2")
    assert again.proxy_id == held.proxy_id and again.start_at == held.start_at  # not one interval later
