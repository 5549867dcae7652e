"""A limit on a host summed over the whole pool (total_rate, a robots.txt Crawl-delay) on moto: leases through
different proxies and containers share one host-wide line; clearing the limit frees them; a sitemap item's
robots.txt teaches its Crawl-delay to the pool."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from scrapersky.adapters.dynamo_hosts import DynamoHostBook
from scrapersky.adapters.dynamo_proxies import DynamoProxyPool
from scrapersky.errors import NoProxyAvailable
from scrapersky.host_ports import HostConfig
from scrapersky.ports import Release

from devstack.paced_site import PacedSite
from tests.integration.test_proxy_pool import Meter

NOW = 1_900_000_000.0
HOST = "polite.example"


@pytest.fixture
def book(ddb) -> DynamoHostBook:
    return DynamoHostBook("proxies", ddb)


def _pool(ddb, book: DynamoHostBook | None = None, proxies: int = 0) -> DynamoProxyPool:
    pool = DynamoProxyPool("proxies", ddb, hosts=book or DynamoHostBook("proxies", ddb))
    for i in range(proxies):
        pool.add(f"p_{i}", f"http://u:p@127.0.0.1:{9 + i}", "x", {}, NOW)
    return pool


def test_leases_through_two_proxies_and_two_containers_are_spaced_by_the_total_rate(ddb, book):
    _pool(ddb, book, proxies=2)
    book.configure(HOST, HostConfig(rate=4.0, total_rate=2.0), NOW)  # each proxy alone could send 4/s
    containers = [_pool(ddb), _pool(ddb)]  # each its own snapshot, as two Lambda containers
    starts, proxies, t = [], ["none"], NOW
    for i in range(12):  # rotating proxies, request after request
        lease = containers[i % 2].lease(HOST, f"w{i}", t, 30, avoid=proxies[-1], max_wait_s=1.0)
        starts.append(lease.start_at)
        proxies.append(lease.proxy_id)
        containers[i % 2].release(lease, lease.start_at + 0.01, Release.SUCCESS)
        t = lease.start_at + 0.01

    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.5 - 1e-6, gaps  # 2 requests/s in total, whichever proxy and container
    assert max(gaps) <= 0.5 + 1e-6, gaps  # and no slower: the line is kept full
    assert proxies[1:] == ["p_0", "p_1"] * 6 or proxies[1:] == ["p_1", "p_0"] * 6  # each request another proxy
    assert book.hosts()[HOST].next_at == pytest.approx(starts[-1] + 0.5)


def test_a_container_with_a_stale_view_of_the_line_still_gets_a_slot_of_its_own(ddb, book):
    _pool(ddb, book, proxies=3)
    book.configure(HOST, HostConfig(total_rate=2.0), NOW)
    stale, fresh = _pool(ddb), _pool(ddb)
    stale.capacity(HOST, NOW)  # reads its view of the host now: an idle line
    first = fresh.lease(HOST, "a", NOW, 30, max_wait_s=1.0)
    second = fresh.lease(HOST, "b", NOW, 30, max_wait_s=1.0)
    meter = Meter(ddb)

    third = stale.lease(HOST, "c", NOW, 30, max_wait_s=1.5)

    assert [first.start_at, second.start_at, third.start_at] == [NOW, NOW + 0.5, NOW + 1.0]
    # its view said "idle": that booking was refused, and the refusal told it the line's end, where it booked
    assert meter.keys.count(f"host#{HOST}") == 2
    assert len({first.proxy_id, second.proxy_id, third.proxy_id}) == 3


def test_a_line_running_past_the_wait_defers_the_lease_and_gives_the_proxy_back(ddb, book):
    pool = _pool(ddb, book, proxies=4)
    book.configure(HOST, HostConfig(total_rate=2.0), NOW)
    held = [pool.lease(HOST, f"w{i}", NOW, 30, max_wait_s=1.0) for i in range(3)]  # slots at +0, +0.5, +1.0
    assert [h.start_at - NOW for h in held] == [0.0, 0.5, 1.0]

    with pytest.raises(NoProxyAvailable) as waited:
        _pool(ddb).lease(HOST, "w3", NOW, 30, max_wait_s=1.0)

    assert waited.value.retry_at == pytest.approx(NOW + 1.5)  # when the host's line has room again
    free = [p for p in pool.list_all(NOW) if p.lease_until < NOW]
    assert len(free) == 1  # the fourth proxy went back at once
    assert pool.capacity(HOST, NOW) == 2.0  # the waiting line is spaced at the total rate, not the proxies' sum


def test_clearing_the_total_rate_frees_the_proxies_at_once(ddb, book):
    pool = _pool(ddb, book, proxies=2)
    book.configure(HOST, HostConfig(rate=4.0, total_rate=0.5), NOW)
    assert pool.lease(HOST, "a", NOW, 30, max_wait_s=5).start_at == NOW
    assert pool.lease(HOST, "b", NOW, 30, max_wait_s=5).start_at == NOW + 2.0

    book.configure(HOST, HostConfig(rate=4.0), NOW + 1)  # a PUT without total_rate clears it
    fresh = _pool(ddb, proxies=0)
    fresh.add("p_2", "http://u:p@127.0.0.1:20", "x", {}, NOW)
    fresh.add("p_3", "http://u:p@127.0.0.1:21", "x", {}, NOW)

    starts = [fresh.lease(HOST, f"c{i}", NOW + 1, 30).start_at for i in range(2)]
    assert starts == [NOW + 1, NOW + 1]  # two proxies, no line between them
    rec = book.hosts()[HOST]
    assert (rec.total_rate, rec.rate, rec.limit(NOW + 1)) == (None, 4.0, None)


def test_a_host_without_a_total_limit_costs_no_more_than_the_lease_it_always_took(ddb, book):
    _pool(ddb, book, proxies=2).lease("warm.example", "w", NOW - 60, 30)  # the list of proxies is built once
    book.configure("plain.example", HostConfig(rate=2.0), NOW)
    book.configure(HOST, HostConfig(rate=2.0, total_rate=2.0), NOW)
    meter = Meter(ddb)

    def one_cold_lease(host: str) -> list[str]:
        meter.reset()
        _pool(ddb).lease(host, "w", NOW, 30)
        return list(meter.calls)

    plain, limited = one_cold_lease("plain.example"), one_cold_lease(HOST)
    # the list of proxies, one BatchGetItem of the proxies with the host's row and pacing rows, the claim, the
    # proxy's slot: nothing more for a host without a total limit; one conditional write more for a host with one
    assert plain == ["GetItem", "BatchGetItem", "UpdateItem", "UpdateItem"]
    assert limited == [*plain, "UpdateItem"]


def test_a_crawl_delay_is_the_hosts_limit_for_a_day_and_a_robots_txt_without_one_drops_it(ddb, book):
    pool = _pool(ddb, book, proxies=2)
    book.learn_crawl_delay(HOST, 3.0, NOW, read_at=NOW - 1)  # read by a request that left a second ago
    rec = book.hosts()[HOST]
    assert (rec.crawl_delay_s, rec.crawl_delay_at, rec.crawl_delay_until) == (3.0, NOW, NOW + 86_400)
    starts = [pool.lease(HOST, f"w{i}", NOW, 30, max_wait_s=5).start_at for i in range(2)]
    assert starts == [NOW + 2, NOW + 5]  # the delay counts from the robots.txt request, then between any two
    item = ddb.get_item(TableName="proxies", Key={"proxy_id": {"S": f"host#{HOST}"}})["Item"]
    assert float(item["expires_at"]["N"]) > NOW + 86_400  # a row only learnt goes by itself after its delay

    book.configure(HOST, HostConfig(total_rate=1.0), NOW + 1)  # the operator's word keeps the row...
    book.learn_crawl_delay(HOST, 3.0, NOW + 2, NOW + 2)  # ...and a later read refreshes the delay without an expiry
    item = ddb.get_item(TableName="proxies", Key={"proxy_id": {"S": f"host#{HOST}"}})["Item"]
    assert "expires_at" not in item and float(item["crawl_delay_until"]["N"]) == NOW + 2 + 86_400
    assert book.hosts()[HOST].limit(NOW + 3).rate == pytest.approx(1 / 3)  # the stricter wins

    book.learn_crawl_delay(HOST, None, NOW + 4, NOW + 4)  # robots.txt read again, no Crawl-delay now
    rec = book.hosts()[HOST]
    assert (rec.crawl_delay_s, rec.limit(NOW + 4).rate) == (None, 1.0)
    book.learn_crawl_delay("silent.example", None, NOW, NOW)  # a site that never asked one gets no row
    assert "silent.example" not in book.hosts()


# ---- through the pipeline: a sitemap item's robots.txt ---------------------------------------------------------
@pytest.fixture
def paced_site() -> Iterator[PacedSite]:
    with PacedSite(crawl_delay_s=1.5, pages=3) as s:
        yield s


def test_a_sitemap_items_robots_txt_crawl_delay_paces_its_documents_across_the_pool(harness, pool, paced_site):
    status, created = harness.api(
        "batches", "POST", "/batches", {"kind": "sitemap", "items": [f"{paced_site.base_url}/"]}
    )
    assert status == 201, created

    harness.drain()

    status, view = harness.api("status", "GET", f"/batches/{created['batch_id']}")
    assert (view["status"], view["succeeded"]) == ("completed", 1), view
    robots, sitemap = paced_site.times("/robots.txt"), paced_site.times("/sitemap.xml")
    assert len(robots) == 1 and len(sitemap) == 1
    assert sitemap[0] - robots[0] >= 1.5 - 0.05  # the document waited out the Crawl-delay the robots.txt asked
    status, hosts = harness.api("admin", "GET", "/hosts", tenant="t_admin", role="admin")
    (host,) = [h for h in hosts["hosts"] if h["host"] == "127.0.0.1"]
    assert (host["crawl_delay_s"], host["total_limit"], host["total_limit_source"]) == (1.5, 0.6667, "crawl_delay")
    assert host["crawl_delay_learnt_at"] is not None and host["crawl_delay_expires_at"] is not None


# ---- the admin API -----------------------------------------------------------------------------------------------
def test_an_admin_sets_shows_and_clears_a_total_rate_and_bad_values_change_nothing(harness):
    def admin(method, path, body=None):
        return harness.api("admin", method, path, body, tenant="t_admin", role="admin")

    status, view = admin("PUT", "/hosts/Shop.Example.com", {"rate": 2, "total_rate": 0.5})
    assert status == 200, view
    assert (view["rate"], view["total_rate"], view["total_limit"], view["total_limit_source"]) == (
        2,
        0.5,
        0.5,
        "total_rate",
    )
    assert (view["crawl_delay_s"], view["crawl_delay_learnt_at"], view["next_slot_at"]) == (None, None, None)
    assert admin("GET", "/hosts") == (200, {"hosts": [view]})
    assert harness.api("admin", "PUT", "/hosts/shop.example.com", {"total_rate": 9})[0] == 403  # tenants cannot
    for body in (
        {"total_rate": 0},
        {"total_rate": -2},
        {"total_rate": 1e-200},
        {"total_rate": 1e300},
        {"total_rate": True},
        {"total_rate": "2"},
        {"total_rate": [2]},
        {"total_rate": 2, "total": 1},
    ):
        status, err = admin("PUT", "/hosts/shop.example.com", body)
        assert status == 422 and err["message"], (body, err)
    status, err = harness.api(
        "admin", "PUT", "/hosts/shop.example.com", tenant="t_admin", role="admin", raw_body='{"total_rate": NaN}'
    )
    assert status in (400, 422), err
    assert admin("GET", "/hosts") == (200, {"hosts": [view]})  # nothing changed by the bad requests

    status, cleared = admin("PUT", "/hosts/shop.example.com", {"rate": 2, "total_rate": None})
    assert (status, cleared["rate"], cleared["total_rate"], cleared["total_limit"]) == (200, 2, None, None)


def test_a_request_late_for_its_slot_books_again_at_the_end_of_the_line_however_far(ddb, book):
    pool = _pool(ddb, book, proxies=3)
    book.configure(HOST, HostConfig(total_rate=2.0), NOW)
    late, *_ = [pool.lease(HOST, f"w{i}", NOW, 30, max_wait_s=1.0) for i in range(3)]  # the line: +0, +0.5, +1.0
    assert late.host_gap_s == 0.5

    again = book.book_again(HOST, late.host_gap_s, NOW + 0.3)

    assert again == NOW + 1.5 and book.hosts()[HOST].next_at == NOW + 2.0
    assert book.book_again(HOST, 0.5, NOW + 9) == NOW + 9  # a line that ran dry: at once
