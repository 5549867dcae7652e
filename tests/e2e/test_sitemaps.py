"""A sitemap batch on the local stack, as a client sees it: a site's every published URL discovered through the
loopback proxies, each document fetched once, the URLs paged exactly, hostile documents recorded per document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.sitemap_site import EXPECTED_FAILURES, EXPECTED_PATHS, INDEX_CHILDREN, SitemapSite
from tests.e2e.conftest import dump

WAIT_S = 300  # a bound for a busy machine: every wait returns once its condition holds

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sitemap_site() -> Iterator[SitemapSite]:
    with SitemapSite() as s:
        yield s


def test_a_sites_sitemaps_are_discovered_once_each_and_every_url_listed(client, proxies, sitemap_site):
    base = sitemap_site.base_url
    created = client.submit([f"{base}/"], kind="sitemap")
    final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
    assert (final["status"], final["succeeded"], final["kind"]) == ("completed", 1, "sitemap"), dump(final)

    [item] = list(client.items(created["batch_id"]))
    result = item["result"]
    assert result["urls_found"] == len(EXPECTED_PATHS) and result["duplicates"] == 1, dump(result)
    assert (result["documents_ok"], result["documents_failed"], result["truncated"]) == (11, 5, None)
    failed = {s["url"].removeprefix(base): s["error"]["code"] for s in result["sitemaps"] if s["error"]}
    assert failed == EXPECTED_FAILURES
    once = {"/robots.txt", *INDEX_CHILDREN, "/deep2.xml", "/deep3.xml.gz"} - {"/err.xml", "/slow.xml"}
    assert {p: sitemap_site.fetched[p] for p in once} == dict.fromkeys(once, 1)

    urls = list(client.urls(created["batch_id"], page_size=5))
    assert sorted(u["url"] for u in urls) == sorted(base + p for p in EXPECTED_PATHS)  # no duplicate, no gap
    assert all(u["sitemap"].startswith(base) for u in urls)


def test_a_site_without_a_sitemap_fails_no_sitemap(client, proxies, site):
    created = client.submit([f"{site.base_url}/"], kind="sitemap")
    final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
    assert (final["status"], final["failed"]) == ("failed", 1), dump(final)
    [item] = list(client.items(created["batch_id"]))
    assert item["error"]["code"] == "no_sitemap"
