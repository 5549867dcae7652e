"""options.follow through the real handlers on moto: a sitemap batch of two items over the loopback sitemap site
follows into one child page batch, its URLs unique across the batch, robots.txt obeyed for our user agent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.sitemap_site import DISALLOWED_PATHS, EXPECTED_PATHS, SitemapSite


@pytest.fixture
def sitemap_site() -> Iterator[SitemapSite]:
    with SitemapSite() as s:
        yield s


def all_items(harness, batch_id: str) -> list[dict]:
    items, cursor = [], None
    for _ in range(50):
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, page = harness.api("status", "GET", f"/batches/{batch_id}/items", query=query)
        assert status == 200, page
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("too many pages")


@pytest.mark.parametrize("robots", ["obey", "ignore"])
def test_a_sitemap_batch_follows_its_unique_urls_into_one_child_page_batch(harness, pool, sitemap_site, robots):
    base = sitemap_site.base_url
    body = {
        "kind": "sitemap",
        "items": [f"{base}/", f"{base}/a.xml"],  # a.xml is read by both items: its URLs are duplicates
        "options": {"follow": {"options": {"max_attempts": 2}, "robots": robots}},
    }
    status, created = harness.api("batches", "POST", "/batches", body)
    assert status == 201, created

    harness.drain()

    status, parent = harness.api("status", "GET", f"/batches/{created['batch_id']}")
    assert parent["status"] == "completed", parent
    skipped = DISALLOWED_PATHS if robots == "obey" else ()
    assert parent["skipped_robots"] == len(skipped)
    assert parent["follow"] == {
        "state": "done",
        "urls": len(EXPECTED_PATHS) - len(skipped),
        "duplicates": 2,
        "skipped_robots": len(skipped),
        "limit": 1_000_000,
        "limit_reached": False,
        "robots": robots,
    }
    child_id = parent["child_batch_id"]
    status, child = harness.api("status", "GET", f"/batches/{child_id}")
    assert status == 200 and child["parent_batch_id"] == created["batch_id"]
    assert (child["kind"], child["status"], child["total_items"]) == ("page", "completed", parent["follow"]["urls"])
    items = all_items(harness, child_id)
    assert sorted(i["item"] for i in items) == sorted(base + p for p in EXPECTED_PATHS if p not in skipped)
    assert all(i["status"] == "succeeded" and i["result"]["title"].startswith("Page ") for i in items)
    status, listed = harness.api("status", "GET", "/batches")
    assert {b["batch_id"] for b in listed["batches"]} == {created["batch_id"], child_id}
