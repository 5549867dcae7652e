"""A sitemap batch through the real handlers on moto, each document fetched from a loopback sitemap site through
the loopback proxies: exact URL sets and counts, each document fetched once, /urls paged exactly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.sitemap_site import EXPECTED_FAILURES, EXPECTED_PATHS, INDEX_CHILDREN, SitemapSite


@pytest.fixture
def sitemap_site() -> Iterator[SitemapSite]:
    with SitemapSite() as s:
        yield s


def test_a_site_is_discovered_through_the_pool_each_document_fetched_once(harness, pool, sitemap_site):
    base = sitemap_site.base_url
    status, created = harness.api("batches", "POST", "/batches", {"kind": "sitemap", "items": [f"{base}/"]})
    assert status == 201, created

    harness.drain()

    status, view = harness.api("status", "GET", f"/batches/{created['batch_id']}")
    assert (view["status"], view["succeeded"]) == ("completed", 1), view
    status, listed = harness.api("status", "GET", f"/batches/{created['batch_id']}/items")
    result = listed["items"][0]["result"]
    assert {k: v for k, v in result.items() if k != "sitemaps"} == {
        "urls_found": len(EXPECTED_PATHS),
        "duplicates": 1,
        "skipped_foreign": 0,
        "documents_ok": 11,
        "documents_failed": 5,
        "truncated": None,
    }
    errors = {s["url"].removeprefix(base): (s["error"] or {}).get("code") for s in result["sitemaps"] if s["error"]}
    assert errors == EXPECTED_FAILURES
    once = {"/robots.txt", *INDEX_CHILDREN, "/deep2.xml", "/deep3.xml.gz"} - {"/err.xml", "/slow.xml"}
    assert {p: sitemap_site.fetched[p] for p in once} == dict.fromkeys(once, 1)
    assert (sitemap_site.fetched["/err.xml"], sitemap_site.fetched["/slow.xml"]) == (3, 2)  # retried; deferred

    urls, cursor = [], None
    for _ in range(20):
        query = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        status, page = harness.api("status", "GET", f"/batches/{created['batch_id']}/urls", query=query)
        assert status == 200, page
        urls += page["urls"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(u["url"] for u in urls) == sorted(base + p for p in EXPECTED_PATHS)  # no duplicate, no gap
    assert {u["item"] for u in urls} == {f"{base}/"}
    status, _ = harness.api("status", "GET", f"/batches/{created['batch_id']}/urls", query={"limit": "1001"})
    assert status == 422


def test_a_site_without_sitemap_fails_no_sitemap(harness, pool, site):
    status, created = harness.api("batches", "POST", "/batches", {"kind": "sitemap", "items": [f"{site.base_url}/"]})
    assert status == 201, created
    harness.drain()
    status, listed = harness.api("status", "GET", f"/batches/{created['batch_id']}/items")
    assert listed["items"][0]["error"]["code"] == "no_sitemap"


def test_a_batch_after_another_hosts_batch_through_the_same_proxies_reaches_its_own_host(
    harness, pool, site, sitemap_site
):
    # proxy.py forwards a kept-alive plain-http request to the previous target's upstream: each such request must
    # close its connection, or this batch's requests reach the page site (found by `make demo`)
    status, pages = harness.api(
        "batches", "POST", "/batches", {"items": [f"{site.base_url}/page/{i}" for i in range(3)]}
    )
    assert status == 201, pages
    harness.drain()
    status, created = harness.api(
        "batches", "POST", "/batches", {"kind": "sitemap", "items": [f"{sitemap_site.base_url}/"]}
    )
    harness.drain()
    status, view = harness.api("status", "GET", f"/batches/{created['batch_id']}")
    assert (view["status"], view["succeeded"]) == ("completed", 1), view
    assert sitemap_site.fetched["/robots.txt"] == 1 and sitemap_site.fetched["/index.xml"] == 1
