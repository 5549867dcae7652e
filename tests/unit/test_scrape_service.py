"""POST /scrape on the fakes: one item through the pool within the call's budget, shaped as a batch item."""

from __future__ import annotations

import pytest
from scrapersky.errors import InvalidInput, NoProxyAvailable
from scrapersky.kinds.page import PageProcessor
from scrapersky.kinds.registry import KindRegistry
from scrapersky.models import BatchOptions, ScrapeRequest
from scrapersky.services.scrape import scrape

from tests.fakes import EPOCH, FakeDeps, failure, make_deps, page

URL = "https://a.test/"
P1, P2 = "http://proxy-1.test:8080", "http://proxy-2.test:8080"


def request(item: str = URL, **options: object) -> ScrapeRequest:
    return ScrapeRequest(item=item, options=BatchOptions(**options))


def assert_no_lease_held(deps: FakeDeps) -> None:
    assert deps.pool.unreleased() == []
    assert all(p.lease_owner is None for p in deps.pool.proxies.values())


def test_a_successful_scrape_answers_the_item_with_its_result():
    deps = make_deps(proxies=1)
    deps.fetcher.script(URL, page(URL, title="Hello"))

    got = scrape(deps, request("A.TEST"))  # a bare domain becomes https://a.test/

    assert (got["item"], got["status"], got["attempts"], got["deferrals"]) == (URL, "succeeded", 1, 0)
    assert got["http_status"] == 200 and got["error"] is None
    assert got["result"]["title"] == "Hello" and got["result"]["final_url"] == URL
    assert got["started_at"] == "2026-01-01T00:00:00.000Z"
    assert deps.pool.proxy("p_1").succeeded == 1
    assert_no_lease_held(deps)


def test_a_404_answers_failed_with_its_code_at_the_first_attempt():
    deps = make_deps(proxies=1)
    deps.fetcher.script(URL, page(URL, 404))
    got = scrape(deps, request())
    assert (got["status"], got["attempts"], got["http_status"]) == ("failed", 1, 404)
    assert got["error"] == {"code": "http_404", "message": "HTTP 404"}
    assert len(deps.fetcher.fetches) == 1


def test_with_no_proxy_free_within_the_budget_the_call_answers_503_without_fetching():
    deps = make_deps(proxies=0, no_proxy_retry_s=30, scrape_budget_s=20)
    with pytest.raises(NoProxyAvailable) as e:
        scrape(deps, request())
    assert e.value.status_code == 503 and e.value.retry_at == EPOCH + 30
    assert deps.fetcher.fetches == []
    assert "proxy-" not in e.value.message  # a tenant-facing error never names a proxy


def test_with_every_proxy_leased_for_the_whole_budget_the_call_answers_503_once_the_budget_is_spent():
    deps = make_deps(proxies=1, scrape_budget_s=5)
    deps.pool.lease("a.test", "a-worker", deps.clock.now(), 90)
    with pytest.raises(NoProxyAvailable):
        scrape(deps, request())
    assert EPOCH + 4 <= deps.clock.now() <= EPOCH + 5  # it waited for one, within the budget
    assert deps.fetcher.fetches == []


def test_a_proxy_whose_slot_opens_within_the_budget_is_waited_for():
    deps = make_deps(proxies=1, pacing_max_wait_s=1.0, scrape_budget_s=20)
    deps.hosts.next_at["p_1", "a.test"] = EPOCH + 3  # its last request to the host was just now
    deps.fetcher.script(URL, page(URL))

    got = scrape(deps, request())

    assert got["status"] == "succeeded" and got["duration_ms"] >= 3000
    assert deps.fetcher.fetches and deps.clock.now() >= EPOCH + 3


def test_a_rate_limit_tries_another_proxy_and_counts_a_deferral_not_an_attempt():
    deps = make_deps(proxies=2)
    deps.fetcher.script(URL, lambda call: page(call.url, 429 if call.proxy_url == P1 else 200))

    got = scrape(deps, request())

    assert (got["status"], got["attempts"], got["deferrals"]) == ("succeeded", 1, 1)
    assert [f.proxy_url for f in deps.fetcher.fetches] == [P1, P2]
    assert deps.pool.proxy("p_1").rate_limited == 1
    assert_no_lease_held(deps)


def test_a_rate_limit_on_the_only_proxy_past_the_budget_answers_the_rate_limit_without_a_result():
    deps = make_deps(proxies=1, scrape_budget_s=20)
    deps.fetcher.script(URL, page(URL, 429, retry_after="60"))

    got = scrape(deps, request())

    assert (got["status"], got["attempts"], got["deferrals"]) == ("failed", 0, 1)
    assert got["error"]["code"] == "http_429"
    assert got["http_status"] is None and got["result"] is None
    assert len(deps.fetcher.fetches) == 1


def test_transient_failures_are_retried_up_to_max_attempts_through_another_proxy_each_time():
    deps = make_deps(proxies=2)
    deps.fetcher.script(URL, failure("connect_error"))
    deps.fetcher.takes_s = 2.0  # by the next try every proxy's slot is open again: p_1 would come first

    got = scrape(deps, request(max_attempts=3))

    assert (got["status"], got["attempts"]) == ("failed", 3)
    assert got["error"]["code"] == "connect_error"
    assert [f.proxy_url for f in deps.fetcher.fetches] == [P1, P2, P1]
    assert_no_lease_held(deps)


def test_a_transient_failure_then_a_success_answers_succeeded_after_two_attempts():
    deps = make_deps(proxies=1)
    deps.fetcher.script(URL, [page(URL, 502), page(URL)])
    got = scrape(deps, request())
    assert (got["status"], got["attempts"], got["http_status"]) == ("succeeded", 2, 200)


def test_the_budget_stops_retries_and_caps_each_fetchs_timeout():
    deps = make_deps(proxies=1, scrape_budget_s=20)
    deps.fetcher.script(URL, page(URL, 500))
    deps.fetcher.takes_s = 8.0

    got = scrape(deps, request(max_attempts=10, timeout_s=20))

    assert (got["status"], got["attempts"]) == ("failed", 3)
    assert [f.timeout_s for f in deps.fetcher.fetches] == [20.0, 12.0, 4.0]
    assert got["duration_ms"] == 24_000


def test_an_invalid_item_is_a_422_and_nothing_is_fetched():
    deps = make_deps(proxies=1)
    with pytest.raises(InvalidInput) as e:
        scrape(deps, request("http://127.0.0.1/admin"))
    assert e.value.status_code == 422 and e.value.details[0]["item"] == "http://127.0.0.1/admin"
    assert deps.pool.leases == [] and deps.fetcher.fetches == []


def test_a_kind_this_deployment_does_not_serve_is_a_422():
    deps = make_deps(proxies=1)
    deps.kinds = KindRegistry({"page": PageProcessor()})
    with pytest.raises(InvalidInput) as e:
        scrape(deps, ScrapeRequest(kind="profile", item=URL))
    assert e.value.details == [{"field": "kind", "message": e.value.message}]
    assert deps.pool.leases == []


def test_a_fetcher_exception_releases_the_lease():
    deps = make_deps(proxies=1)
    deps.fetcher.script(URL, RuntimeError("bug in the fetcher"))
    with pytest.raises(RuntimeError):
        scrape(deps, request())
    assert_no_lease_held(deps)
