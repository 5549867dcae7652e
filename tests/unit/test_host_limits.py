"""A limit on a host summed over the whole pool: which limit is in force, the host-wide slots it spaces, what a
robots.txt read teaches, and the pool's fake obeying it across proxies."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from scrapersky.domain.agent import USER_AGENT
from scrapersky.domain.host_limits import (
    ADMIN,
    ROBOTS,
    CrawlDelay,
    TotalLimit,
    host_slot,
    opens_at,
    total_limit,
)
from scrapersky.host_ports import HostConfig
from scrapersky.ports import Release
from scrapersky.services import leasing
from scrapersky.sitemaps import RobotsFile

from tests.fakes import EPOCH, make_deps

NOW = 1000.0


def test_without_total_rate_or_crawl_delay_there_is_no_limit():
    assert total_limit(None, None, None, NOW) is None


def test_the_stricter_of_total_rate_and_crawl_delay_wins():
    assert total_limit(2.0, None, None, NOW) == TotalLimit(2.0, ADMIN)
    assert total_limit(None, 4.0, NOW + 1, NOW) == TotalLimit(0.25, ROBOTS)
    assert total_limit(2.0, 4.0, NOW + 1, NOW) == TotalLimit(0.25, ROBOTS)  # one every 4 s is stricter than 2/s
    assert total_limit(0.1, 4.0, NOW + 1, NOW) == TotalLimit(0.1, ADMIN)


def test_a_crawl_delay_past_its_expiry_no_longer_holds():
    assert total_limit(None, 4.0, NOW, NOW) is None
    assert total_limit(3.0, 4.0, NOW - 1, NOW) == TotalLimit(3.0, ADMIN)


def test_slots_are_spaced_by_one_over_the_rate_from_the_later_of_ready_and_the_line():
    limit = TotalLimit(2.0, ADMIN)
    assert host_slot(None, NOW, limit.gap_s) == (NOW, NOW + 0.5)  # an idle line starts now
    assert host_slot(NOW - 5, NOW, limit.gap_s) == (NOW, NOW + 0.5)  # a line that ran dry long ago too
    assert host_slot(NOW + 0.3, NOW, limit.gap_s) == (NOW + 0.3, NOW + 0.8)  # a running line: at its end
    assert opens_at(NOW + 0.3, NOW, limit) == NOW + 0.3
    assert opens_at(NOW + 0.3, NOW, None) == NOW  # no limit: no line to wait for


@pytest.mark.parametrize(
    ("written", "kept"),
    [(2.5, 2.5), (0.0, None), (-1.0, None), (None, None), (float("nan"), None), (float("inf"), None), (1e9, 86_400)],
)
def test_a_crawl_delay_is_kept_as_written_within_sane_bounds(written, kept):
    assert CrawlDelay.of(written) == CrawlDelay(kept)


def test_a_robots_txt_teaches_the_crawl_delay_of_the_group_for_our_user_agent():
    body = b"User-agent: *\nCrawl-delay: 9\n\nUser-agent: ScraperSky\nCrawl-delay: 2\nDisallow: /private\n"
    assert "ScraperSky" in USER_AGENT
    assert RobotsFile.parse("https://a.test/robots.txt", body).learnt_delay() == CrawlDelay(2.0)
    other = b"User-agent: *\nCrawl-delay: 9\n\nUser-agent: SomeBot\nCrawl-delay: 2\n"
    assert RobotsFile.parse("https://a.test/robots.txt", other).learnt_delay() == CrawlDelay(9.0)


def test_a_robots_txt_without_crawl_delay_or_missing_teaches_none_and_an_unreadable_one_teaches_nothing():
    url = "https://a.test/robots.txt"
    assert RobotsFile.parse(url, b"User-agent: *\nDisallow:\n").learnt_delay() == CrawlDelay(None)
    assert RobotsFile.from_response(url, 404).learnt_delay() == CrawlDelay(None)  # no robots.txt: no delay asked
    assert RobotsFile.from_response(url, 503).learnt_delay() is None  # unreachable: what was learnt stays
    assert RobotsFile.from_response(url, None).learnt_delay() is None


def test_rotating_proxies_never_beats_the_total_rate():
    deps = make_deps(proxies=5)
    deps.hosts.configure("a.test", HostConfig(rate=10, total_rate=2), EPOCH)
    starts, used, t = [], [], EPOCH
    for i in range(20):
        lease = deps.pool.lease("a.test", f"w{i}", t, 90, avoid=used[-1] if used else None, max_wait_s=1.0)
        deps.pool.release(lease, lease.start_at + 0.05, Release.SUCCESS)
        starts.append(lease.start_at)
        used.append(lease.proxy_id)
        t = lease.start_at + 0.05
    assert all(a != b for a, b in itertools.pairwise(used))  # never the same proxy twice in a row
    assert all(b - a == pytest.approx(0.5) for a, b in itertools.pairwise(starts))
    assert deps.pool.capacity("a.test", t) == 2.0  # the waiting line is spaced at the total rate


def _two_leases_two_seconds_apart():
    deps = make_deps(proxies=2, pacing_max_wait_s=5.0)
    deps.hosts.configure("a.test", HostConfig(rate=10, total_rate=0.5), EPOCH)
    first, second = (leasing.lease(deps, "a.test", f"w{i}") for i in range(2))
    assert (first.start_at, second.start_at, first.host_gap_s) == (EPOCH, EPOCH + 2, 2.0)
    return deps, first, second


def test_a_request_on_time_for_its_slot_on_the_hosts_line_leaves_then():
    deps, _, second = _two_leases_two_seconds_apart()
    deps.clock.advance(1.9)  # the claim took a while, but the slot is still ahead
    assert leasing.wait_for_slot(deps, second).start_at == EPOCH + 2
    assert not [c for c in deps.hosts.calls if c.method == "book_again"]


def test_a_request_late_for_its_slot_on_the_hosts_line_books_again_behind_the_next_one():
    deps, first, _ = _two_leases_two_seconds_apart()
    deps.clock.advance(1.5)  # its claim took so long that leaving now would come 0.5 s before the next slot's request

    sent = leasing.wait_for_slot(deps, first)

    assert sent.start_at == EPOCH + 4 == deps.clock.now()  # at the line's end, two seconds after the next one
    slightly = leasing.wait_for_slot(deps, replace(first, start_at=EPOCH + 3.85))  # late by under a tenth of the gap
    assert slightly.start_at == EPOCH + 4  # leaves at once
    assert len([c for c in deps.hosts.calls if c.method == "book_again"]) == 1
