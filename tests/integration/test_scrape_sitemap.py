"""POST /scrape with kind sitemap through the real handler on moto: the loopback sitemap site read document by
document through the loopback proxies within the call's budget, counted as a batch item is, nothing stored."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from devstack.sitemap_site import EXPECTED_FAILURES, EXPECTED_PATHS, INDEX_CHILDREN, SitemapSite
from tests.integration.test_api import _openapi, assert_declared


@pytest.fixture
def sitemap_site() -> Iterator[SitemapSite]:
    with SitemapSite() as s:
        yield s


def _batch_rows(harness) -> int:
    table = boto3.client("dynamodb", region_name="us-east-1")
    return table.scan(TableName=harness.deps.settings.batches_table, Select="COUNT")["Count"]


def test_a_sites_sitemaps_are_read_synchronously_through_the_pool_and_nothing_is_stored(harness, pool, sitemap_site):
    base = sitemap_site.base_url
    harness.deps.settings = harness.deps.settings.model_copy(update={"scrape_budget_s": 25.0})
    before = _batch_rows(harness)

    status, body = harness.api("scrape", "POST", "/scrape", {"kind": "sitemap", "item": f"{base}/"})

    assert status == 200, body
    assert (body["status"], body["item"], body["error"]) == ("succeeded", f"{base}/", None)
    result = body["result"]
    assert {k: v for k, v in result.items() if k != "sitemaps"} == {
        "urls_found": len(EXPECTED_PATHS),
        "duplicates": 1,
        "skipped_foreign": 0,
        "documents_ok": 11,
        "documents_failed": 5,
        "truncated": None,
    }, result
    errors = {s["url"].removeprefix(base): s["error"]["code"] for s in result["sitemaps"] if s["error"]}
    assert errors == EXPECTED_FAILURES
    assert sorted(u["url"] for u in body["urls"]) == sorted(base + p for p in EXPECTED_PATHS)
    assert body["urls_truncated"] is False
    once = {"/robots.txt", *INDEX_CHILDREN, "/deep2.xml", "/deep3.xml.gz"} - {"/err.xml", "/slow.xml"}
    assert {p: sitemap_site.fetched[p] for p in once} == dict.fromkeys(once, 1)
    assert (sitemap_site.fetched["/err.xml"], sitemap_site.fetched["/slow.xml"]) == (3, 2)  # retried; deferred
    assert _batch_rows(harness) == before  # no batch, item, document or URL row
    assert_declared(_openapi(harness), "POST", "/scrape", status, body)


def test_bad_sitemap_input_is_a_422_and_nothing_is_fetched(harness, pool, sitemap_site):
    base = sitemap_site.base_url
    for body in (
        {"kind": "sitemap", "item": f"{base}/", "options": {"sitemap": {"max_depth": 11}}},
        {"kind": "sitemap", "item": f"{base}/", "options": {"sitemap": {"nope": 1}}},
        {"kind": "sitemap", "item": "ftp://example.com/sitemap.xml"},
    ):
        status, answer = harness.api("scrape", "POST", "/scrape", body)
        assert status == 422 and answer["message"], (body, answer)
    assert sum(sitemap_site.fetched.values()) == 0
