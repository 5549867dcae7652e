"""A total rate on a host, summed over the whole pool, on the local stack: a batch through several real proxies to
a site that records when each request reached it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from devstack.paced_site import PacedSite
from tests.e2e.conftest import dump

pytestmark = pytest.mark.e2e

WAIT_S = 300  # a bound for a busy machine, not a throughput expectation: the wait returns once the batch ended
TOTAL_RATE = 2.0  # requests/s to the host across the pool
TOLERANCE_S = 0.1  # how much earlier than 1/TOTAL_RATE a request may reach the site (timing jitter on loopback)


@pytest.fixture
def paced_site() -> Iterator[PacedSite]:
    with PacedSite(host="127.0.0.77") as s:  # a host of its own: no other test's limit or pace applies to it
        yield s


def test_a_batch_through_several_proxies_never_reaches_the_host_faster_than_its_total_rate(
    admin, client, proxies, paced_site
):
    host = "127.0.0.77"
    # each proxy alone may send 10/s: only the total rate can hold the pool to 2/s
    view = admin.configure_host(host, rate=10, total_rate=TOTAL_RATE)
    assert (view["total_rate"], view["total_limit"], view["total_limit_source"]) == (2.0, 2.0, "total_rate")
    try:
        created = client.submit([f"{paced_site.base_url}/page/{i}" for i in range(16)], options={"max_attempts": 1})
        final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
        listed = admin.hosts()["hosts"]
        paced = [p["proxy_id"] for p in admin.proxies()["proxies"] if host in p["pace"]]  # the proxies it went through
    finally:
        admin.forget_host(host)

    assert (final["status"], final["succeeded"], final["failed"]) == ("completed", 16, 0), dump(final)
    times = paced_site.times("/page/")
    assert len(times) == 16
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / TOTAL_RATE - TOLERANCE_S, [round(g, 3) for g in gaps]
    assert len(paced) >= 2, paced  # through more than one proxy
    (shown,) = [h for h in listed if h["host"] == host]
    assert shown["next_slot_at"] is not None and shown["total_limit"] == 2.0


@pytest.fixture
def delayed_site() -> Iterator[PacedSite]:
    with PacedSite(host="127.0.0.78", crawl_delay_s=1.5) as s:  # robots.txt: Crawl-delay: 1.5
        yield s


def test_a_sitemap_items_robots_txt_crawl_delay_becomes_the_hosts_limit_across_the_pool(
    admin, client, proxies, delayed_site
):
    host = "127.0.0.78"
    try:
        created = client.submit([f"{delayed_site.base_url}/"], kind="sitemap")
        final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
        (shown,) = [h for h in admin.hosts()["hosts"] if h["host"] == host]
    finally:
        admin.forget_host(host)

    assert (final["status"], final["succeeded"]) == ("completed", 1), dump(final)
    (robots,), (sitemap,) = delayed_site.times("/robots.txt"), delayed_site.times("/sitemap.xml")
    assert sitemap - robots >= 1.5 - TOLERANCE_S  # the sitemap waited out the delay its robots.txt asked
    assert (shown["crawl_delay_s"], shown["total_limit"], shown["total_limit_source"]) == (1.5, 0.6667, "crawl_delay")
    assert shown["crawl_delay_learnt_at"] < shown["crawl_delay_expires_at"]
