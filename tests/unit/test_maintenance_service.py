"""Scheduled upkeep on the fakes: a quarantined proxy that answers its check is returned, else looked at later."""

from __future__ import annotations

import random

from scrapersky.models import ProxyState
from scrapersky.ports import Release
from scrapersky.services.maintenance import BASE_S, CAP_S, check_quarantined

from tests.fakes import FakeDeps, make_deps

P1 = "http://proxy-1.test:8080"


class Highest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def quarantine(deps: FakeDeps, *proxy_ids: str) -> None:
    for pid in proxy_ids:
        p = deps.pool.proxy(pid)
        p.state, p.consecutive_errors, p.next_check_at = ProxyState.QUARANTINED, 3, deps.clock.now()


def test_a_quarantined_proxy_answering_its_check_is_available_again_with_its_errors_cleared():
    deps = make_deps(proxies=2)
    quarantine(deps, "p_1")

    assert check_quarantined(deps) == {"restored": ["p_1"], "still_quarantined": []}

    p = deps.pool.proxy("p_1")
    assert (p.state, p.consecutive_errors) == (ProxyState.AVAILABLE, 0)
    assert deps.fetcher.probed == [P1]  # the available proxy is not checked
    assert deps.pool.lease("a.test", "w", deps.clock.now(), 90).proxy_id == "p_1"


def test_a_quarantined_proxy_failing_its_check_is_looked_at_again_later_each_time_later():
    deps = make_deps(proxies=1)
    quarantine(deps, "p_1")
    deps.fetcher.probes[P1] = False
    waits = []
    for _ in range(9):
        assert check_quarantined(deps, rng=Highest()) == {"restored": [], "still_quarantined": ["p_1"]}
        p = deps.pool.proxy("p_1")
        waits.append(p.next_check_at - deps.clock.now())
        deps.clock.t = p.next_check_at
    assert waits == [BASE_S * 2**n for n in range(1, 7)] + [CAP_S] * 3  # 60 s doubling, up to an hour
    assert deps.pool.proxy("p_1").checks == 9
    assert deps.pool.proxy("p_1").state is ProxyState.QUARANTINED


def test_the_next_check_is_jittered_within_its_backoff():
    deps = make_deps(proxies=1)
    quarantine(deps, "p_1")
    deps.fetcher.probes[P1] = False
    check_quarantined(deps, rng=random.Random(7))
    assert 0 <= deps.pool.proxy("p_1").next_check_at - deps.clock.now() <= BASE_S * 2


def test_a_proxy_whose_next_check_is_not_due_is_left_alone():
    deps = make_deps(proxies=1)
    quarantine(deps, "p_1")
    deps.pool.proxy("p_1").next_check_at = deps.clock.now() + 60
    assert check_quarantined(deps) == {"restored": [], "still_quarantined": []}
    assert deps.fetcher.probed == []
    deps.clock.advance(60)
    assert check_quarantined(deps)["restored"] == ["p_1"]


def test_a_proxy_quarantined_by_repeated_faults_comes_back_after_a_good_check():
    deps = make_deps(proxies=1, quarantine_after=2)
    for _ in range(2):
        lease = deps.pool.lease("a.test", "w", deps.clock.now(), 90)
        deps.pool.release(lease, deps.clock.now(), Release.FAILED, proxy_fault=True)
        deps.clock.advance(2)
    assert deps.pool.capacity("a.test", deps.clock.now()) == 0

    assert check_quarantined(deps, probe=lambda url: url == P1)["restored"] == ["p_1"]
    assert deps.pool.capacity("a.test", deps.clock.now()) == 1.0


def test_the_scheduled_run_reports_the_pools_gauges_and_what_it_swept():
    from scrapersky.models import ProxyState
    from scrapersky.services.maintenance import run

    deps = make_deps(proxies=3)
    deps.pool.proxy("p_2").state = ProxyState.QUARANTINED
    deps.pool.proxy("p_2").next_check_at = deps.clock.now() + 3600  # not due: stays quarantined
    report = run(deps)
    assert report["proxies"] == {"available": 2, "cooling": 0, "quarantined": 1}
    assert report["sweeps"] == {"redriven": [], "after_end": [], "released": [], "started": []}
