"""POST /scrape with kind sitemap on the fakes: one item's documents read one after another through the pool
within the call's budget, counted exactly as a batch item's, nothing stored, `truncated: "time"` when the budget
stopped it (the clock is the fakes' clock)."""

from __future__ import annotations

import pytest
from scrapersky.errors import InvalidInput, NoProxyAvailable
from scrapersky.models import BatchOptions, ScrapeRequest
from scrapersky.services.scrape import scrape
from scrapersky.services.scrape_sitemap import MAX_SHOWN_URLS

from tests.fakes import EPOCH, FakeDeps, Streamed, failure, make_deps
from tests.unit.sitemap_site import ROOT, Site, gz, index, result_of, robots, run, seed, urlset

SITE = {
    "/robots.txt": Streamed(robots("/index.xml")),
    "/index.xml": Streamed(index("/a.xml", "/b.xml.gz", "/deep.xml", "/gone.xml", "/index.xml")),
    "/deep.xml": Streamed(index("/deeper.xml", "/a.xml")),  # a diamond (a.xml twice) and a loop
    "/deeper.xml": Streamed(gz(index("/c.xml"))),
    "/a.xml": Streamed(urlset("/1", "/2", "/2")),
    "/b.xml.gz": Streamed(gz(urlset("/2", "/3", "/x", host="https://other.test"))),
    "/c.xml": Streamed(b"https://s.test/4\nhttps://s.test/1\n"),
}


def sitemap(deps: FakeDeps, item: str = ROOT, **options: object) -> dict:
    opts = {"max_attempts": 2, "timeout_s": 5.0, **options}
    return scrape(deps, ScrapeRequest(kind="sitemap", item=item, options=BatchOptions.model_validate(opts)))


def nothing_stored(deps: FakeDeps) -> bool:
    stores = (deps.documents.docs, deps.urls.urls, deps.items.items, deps.batches.batches)
    return not any(stores) and deps.queue.work == [] and deps.queue.fanout == []


def test_a_site_is_discovered_as_a_batch_item_would_be_each_document_once_and_nothing_stored():
    deps = make_deps(proxies=3, default_host_rate=20.0)
    site = Site(deps, dict(SITE))

    got = sitemap(deps, "s.test")  # a bare domain is the site

    assert (got["item"], got["status"], got["error"], got["http_status"]) == (ROOT, "succeeded", None, None)
    result = got["result"]
    assert {k: v for k, v in result.items() if k != "sitemaps"} == {
        "urls_found": 3,
        "duplicates": 2,
        "skipped_foreign": 3,
        "documents_ok": 6,
        "documents_failed": 1,
        "truncated": None,
    }
    assert [u["url"] for u in got["urls"]] == ["https://s.test/1", "https://s.test/2", "https://s.test/4"]
    assert got["urls"][0] == {
        "url": "https://s.test/1",
        "lastmod": "2024-05-01",
        "changefreq": None,
        "priority": None,
        "sitemap": "https://s.test/a.xml",
        "item": ROOT,
    }
    assert got["urls_truncated"] is False
    assert all(n == 1 for n in site.fetched.values()), site.fetched
    assert got["attempts"] == sum(site.fetched.values())
    assert deps.pool.unreleased() == []
    assert nothing_stored(deps)

    # the same site as a batch of one item: the same result, document for document
    batch_deps = make_deps(proxies=3, default_host_rate=20.0)
    Site(batch_deps, dict(SITE))
    batch = seed(batch_deps)
    run(batch_deps, batch)
    assert result == result_of(batch_deps, batch)


def test_the_url_of_one_document_is_read_alone():
    deps = make_deps(proxies=1, default_host_rate=20.0)
    site = Site(deps, dict(SITE))

    got = sitemap(deps, "https://s.test/deep.xml")

    assert got["result"]["documents_ok"] == 4 and got["result"]["urls_found"] == 3  # deeper, c, a
    assert "/robots.txt" not in site.fetched and "/index.xml" not in site.fetched


def test_without_a_sitemap_the_probes_are_tried_and_the_item_fails_no_sitemap():
    deps = make_deps(proxies=1, default_host_rate=20.0)
    site = Site(deps, {"/robots.txt": Streamed(b"User-agent: *\n"), "/sitemap_index.xml": Streamed(b"<html></html>")})

    got = sitemap(deps)

    assert (got["status"], got["error"]["code"]) == ("failed", "no_sitemap")
    assert got["result"]["documents_ok"] + got["result"]["documents_failed"] == 0 and got["urls"] == []
    assert set(site.fetched) == {"/robots.txt", "/sitemap.xml", "/sitemap_index.xml"}


def test_the_budget_stops_the_walk_with_truncated_time_and_later_documents_are_not_fetched():
    deps = make_deps(proxies=1, default_host_rate=20.0, scrape_budget_s=20)
    pages = {
        "/robots.txt": Streamed(robots("/index.xml")),
        "/index.xml": Streamed(index("/a.xml", "/b.xml", "/c.xml")),
        "/a.xml": Streamed(urlset("/1")),
        "/b.xml": Streamed(urlset("/2")),
        "/c.xml": Streamed(urlset("/3")),
    }
    site = Site(deps, pages)
    deps.fetcher.takes_s = 6.0  # robots.txt ends at 6 s, the index at 12, a.xml at 18, b.xml (started at 18) at 24

    got = sitemap(deps, timeout_s=20)

    assert got["status"] == "succeeded" and got["result"]["truncated"] == "time"
    assert (got["result"]["documents_ok"], got["result"]["urls_found"]) == (3, 2)
    assert [u["url"] for u in got["urls"]] == ["https://s.test/1", "https://s.test/2"]
    assert "/c.xml" not in site.fetched
    assert [f.timeout_s for f in deps.fetcher.fetches] == [20.0, 14.0, 8.0, 2.0]  # each capped by what is left
    assert got["duration_ms"] == 24_000 and deps.clock.now() == EPOCH + 24
    assert deps.pool.unreleased() == []


def test_a_document_the_deadline_cut_adds_nothing_and_the_answer_says_time():
    deps = make_deps(proxies=1, default_host_rate=20.0, scrape_budget_s=20)
    cut = {"/robots.txt": Streamed(robots("/a.xml", "/b.xml")), "/a.xml": Streamed(urlset("/1"))}
    site = Site(deps, cut)
    big = Streamed(urlset("/2", "/3"))
    deps.fetcher.script("https://s.test/b.xml", lambda call: failure("timeout") if call.timeout_s < 5 else big)
    deps.fetcher.takes_s = 8.0  # b.xml starts at 16 s: 4 s left, and the fetch runs out of them

    got = sitemap(deps, max_attempts=3)

    result = got["result"]
    assert (result["truncated"], result["documents_ok"], result["documents_failed"]) == ("time", 1, 0)
    assert [s["url"] for s in result["sitemaps"]] == ["https://s.test/a.xml"]
    assert [u["url"] for u in got["urls"]] == ["https://s.test/1"] and result["urls_found"] == 1
    assert site.fetched["/a.xml"] == 1


def test_a_robots_txt_refusing_past_the_budget_fails_timeout_with_truncated_time():
    deps = make_deps(proxies=1, scrape_budget_s=20)
    Site(deps, {"/robots.txt": Streamed(b"", 429, retry_after="60")})

    got = sitemap(deps)

    assert (got["status"], got["error"]["code"], got["deferrals"], got["attempts"]) == ("failed", "timeout", 1, 0)
    assert got["result"]["truncated"] == "time" and got["urls"] == []
    assert deps.pool.unreleased() == []


def test_with_no_proxy_for_the_first_document_within_the_budget_the_call_answers_503():
    deps = make_deps(proxies=0, no_proxy_retry_s=30)
    with pytest.raises(NoProxyAvailable) as e:
        sitemap(deps)
    assert e.value.status_code == 503 and deps.fetcher.fetches == []


def test_rate_limits_and_transient_failures_of_a_document_are_retried_and_it_counts_once():
    deps = make_deps(proxies=2, default_host_rate=20.0)
    flaky = [Streamed(b"", 429), Streamed(b"oops", 503), Streamed(urlset("/1", "/2"))]
    site = Site(deps, {"/robots.txt": Streamed(robots("/a.xml")), "/a.xml": flaky})

    got = sitemap(deps, max_attempts=3)

    assert (got["result"]["urls_found"], got["result"]["documents_ok"], got["result"]["duplicates"]) == (2, 1, 0)
    assert (got["attempts"], got["deferrals"]) == (3, 1)  # robots.txt, then a.xml twice; the 429 is no attempt
    assert site.fetched["/a.xml"] == 3 and len(got["urls"]) == 2


def test_max_urls_stops_discovery_and_the_documents_left_are_not_fetched():
    deps = make_deps(proxies=1, default_host_rate=20.0)
    pages = {
        "/robots.txt": Streamed(robots("/a.xml", "/b.xml")),
        "/a.xml": Streamed(urlset("/1", "/2", "/3")),
        "/b.xml": Streamed(urlset("/4")),
    }
    site = Site(deps, pages)

    got = sitemap(deps, sitemap={"max_urls": 2})

    assert (got["result"]["urls_found"], got["result"]["truncated"]) == (2, "max_urls")
    assert len(got["urls"]) == 2 and "/b.xml" not in site.fetched


def test_the_answer_shows_the_first_thousand_urls_and_says_when_there_are_more():
    deps = make_deps(proxies=1, default_host_rate=20.0)
    paths = [f"/p/{i}" for i in range(MAX_SHOWN_URLS + 500)]
    Site(deps, {"/robots.txt": Streamed(robots("/a.xml")), "/a.xml": Streamed(urlset(*paths))})

    got = sitemap(deps)

    assert got["result"]["urls_found"] == MAX_SHOWN_URLS + 500
    assert [u["url"] for u in got["urls"]] == [f"https://s.test{p}" for p in paths[:MAX_SHOWN_URLS]]
    assert got["urls_truncated"] is True


def test_follow_and_a_private_address_are_422_and_nothing_is_fetched():
    deps = make_deps(proxies=1)
    with pytest.raises(InvalidInput) as e:
        sitemap(deps, follow={"limit": 5})
    assert e.value.status_code == 422
    with pytest.raises(InvalidInput) as e:
        sitemap(deps, "http://169.254.169.254/sitemap.xml")
    assert e.value.status_code == 422
    assert deps.pool.leases == [] and deps.fetcher.fetches == []


def test_the_urls_shown_stay_within_a_megabyte_however_long_they_are():
    deps = make_deps(proxies=1, default_host_rate=20.0)
    paths = [f"/{i}/{'x' * 4000}" for i in range(300)]  # 1.2 MB of URLs
    Site(deps, {"/robots.txt": Streamed(robots("/a.xml")), "/a.xml": Streamed(urlset(*paths))})

    got = sitemap(deps)

    assert got["result"]["urls_found"] == 300 and got["urls_truncated"] is True
    shown = sum(len(u["url"]) for u in got["urls"])
    assert 900_000 < shown <= 1 << 20
    assert [u["url"] for u in got["urls"]] == [f"https://s.test{p}" for p in paths[: len(got["urls"])]]
