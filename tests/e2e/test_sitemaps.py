"""A sitemap batch on the local stack, as a client sees it: a site's every published URL discovered through the
loopback proxies, each document fetched once, the URLs paged exactly, hostile documents recorded per document."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from scrapersky_client import cli
from scrapersky_client.client import ApiError

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


def test_a_sitemap_batchs_results_file_is_its_urls_listing_and_the_cli_writes_both(
    client, proxies, sitemap_site, tmp_path
):
    base = sitemap_site.base_url
    created = client.submit([f"{base}/deep1.xml", f"{base}/a.xml"], kind="sitemap")  # /a/1, /a/2 found twice
    batch_id = created["batch_id"]
    final = client.wait(batch_id, timeout=WAIT_S, interval=0.5)
    assert (final["status"], final["succeeded"]) == ("completed", 2), dump(final)

    listed = list(client.urls(batch_id, page_size=2))
    lines = [json.loads(x) for x in b"".join(client.results(batch_id, wait_s=WAIT_S)).decode().splitlines()]
    assert lines == listed and len(lines) == 5, dump(lines)
    assert sorted(x["url"] for x in lines) == sorted(base + p for p in ("/a/1", "/a/1", "/a/2", "/a/2", "/d/1"))
    rows = list(csv.DictReader(io.StringIO(b"".join(client.results(batch_id, "csv")).decode())))
    assert list(rows[0]) == ["url", "lastmod", "changefreq", "priority", "sitemap", "item"]
    assert [r["url"] for r in rows] == [x["url"] for x in lines]

    args = ["--url", client.base_url, "--key", client.api_key]
    assert cli.main([*args, "urls", batch_id, "-o", str(tmp_path / "urls.jsonl")]) == 0
    assert [json.loads(x) for x in (tmp_path / "urls.jsonl").read_text().splitlines()] == listed
    assert cli.main([*args, "results", batch_id, "-o", str(tmp_path / "results.jsonl")]) == 0
    assert [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()] == lines


def test_post_scrape_reads_a_sitemap_document_tree_through_the_proxies(client, proxies, sitemap_site, tmp_path):
    base = sitemap_site.base_url
    before = dict(sitemap_site.fetched)

    got = client.scrape(f"{base}/deep1.xml", kind="sitemap")  # deep1 -> deep2 (gzip) -> deep3.xml.gz, and a.xml

    assert (got["status"], got["error"], got["http_status"]) == ("succeeded", None, None), dump(got)
    result = got["result"]
    assert (result["urls_found"], result["documents_ok"], result["documents_failed"]) == (3, 4, 0), dump(result)
    assert result["truncated"] is None
    assert [s["type"] for s in result["sitemaps"]] == ["index", "index", "urlset", "urlset"]
    assert sorted(u["url"] for u in got["urls"]) == sorted(base + p for p in ("/a/1", "/a/2", "/d/1"))
    assert got["urls_truncated"] is False
    read = {p: sitemap_site.fetched[p] - before.get(p, 0) for p in ("/deep1.xml", "/deep2.xml", "/deep3.xml.gz")}
    assert read == dict.fromkeys(read, 1)

    shallow = client.scrape(f"{base}/deep1.xml", kind="sitemap", options={"sitemap": {"max_depth": 2}})
    assert shallow["result"]["truncated"] == "max_depth" and shallow["result"]["urls_found"] == 2

    args = ["--url", client.base_url, "--key", client.api_key]
    out = tmp_path / "found.jsonl"
    assert cli.main([*args, "scrape", "--kind", "sitemap", f"{base}/a.xml", "-o", str(out)]) == 0
    assert [json.loads(x)["url"] for x in out.read_text().splitlines()] == [f"{base}/a/1", f"{base}/a/2"]


def test_post_scrape_of_bad_sitemap_input_is_a_422(client, proxies, sitemap_site):
    base = sitemap_site.base_url
    for item, options in ((f"{base}/", {"sitemap": {"max_depth": 11}}), ("ftp://example.com/x.xml", {})):
        with pytest.raises(ApiError) as e:
            client.scrape(item, kind="sitemap", options=options)
        assert e.value.status == 422 and e.value.body["message"]
