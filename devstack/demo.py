"""`make demo`: the main job end to end on the local stack.

Starts the local stack, a small demo site, a site publishing sitemaps and three real forward proxies
(proxy.py, basic auth) on loopback, registers the proxies, submits ~50 pages with the client, shows a live
progress bar until the batch ends and a summary table; then a sitemap batch discovers every URL the second
site publishes (robots.txt, an index three levels deep, gzip, feeds, and hostile documents), with its progress,
its per-document outcome and the URLs found, and follows them into a child page batch (robots.txt obeyed), with
its progress and a summary of both; then two profile batches check presence markers on a loopback social site
through sessions bound to the proxies, with stories flipped between them (`detected`, each item's state, the
targets' history); and stops what it started.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

from scrapersky_client.cli import items_table, out, summary_table, watch
from scrapersky_client.client import Client

from devstack.profile_demo import demo_site as profile_site
from devstack.profile_demo import run_profile_demo
from devstack.proxies import start_proxies
from devstack.site import Site
from devstack.sitemap_site import EXPECTED_PATHS, SitemapSite
from devstack.stack import LocalStack, log


def demo_items(base: str) -> list[str]:
    pages = [f"{base}/page/{i}" for i in range(1, 41)]
    limited = [f"{base}/limited/{i}" for i in range(1, 7)]  # the site rate-limits each proxy here
    other = [
        f"{base}/redirect/99",
        f"{base}/missing/1",
        f"{base}/missing/2",
        f"{base}/plain",
        f"{base}/page/1",
        "not a url at all",
    ]  # a duplicate and an invalid entry, on purpose
    return pages + limited + other


def main() -> int:
    with contextlib.ExitStack() as stack:
        local = stack.enter_context(LocalStack())
        site = stack.enter_context(Site(rate=2.0, burst=2.0))
        proxies = start_proxies(3)
        stack.callback(lambda: [p.stop() for p in proxies])
        admin = Client(local.api_url, local.admin_key)
        for p in proxies:
            reg = admin.add_proxy(p.url, {"source": p.source_ip})
            log(f"proxy {reg['proxy_id']} registered: {reg['endpoint']}")
        client = Client(local.api_url, local.api_key)
        started = time.monotonic()
        created = client.submit(demo_items(site.base_url), options={"max_attempts": 3})
        log(
            f"batch {created['batch_id']}: {created['total_items']} items, {len(created['rejected_items'])} rejected, "
            f"{created['duplicate_items']} duplicate"
        )
        final = watch(client, created["batch_id"], timeout=600)
        out.print(summary_table(final))
        items = list(client.items(created["batch_id"]))
        shown = [i for i in items if i["status"] != "succeeded"] + [i for i in items if i["status"] == "succeeded"][:8]
        out.print(items_table(shown))
        out.print(
            f"proxies: {[(p['endpoint'], p['succeeded'], p['rate_limited']) for p in admin.proxies()['proxies']]}"
        )
        took = time.monotonic() - started
        out.print(f"page batch finished in {took:.1f}s (site rejected {site.stats.rejected} requests)")
        results = client.results_url(created["batch_id"], wait_s=120)
        out.print(f"results (JSON Lines, no key needed): {results}")
        out.print(f"  or: scrapersky results {created['batch_id']} -o results.jsonl")
        sitemap_demo(client, stack.enter_context(SitemapSite()))
        run_profile_demo(client, stack.enter_context(profile_site()), admin)
    return 0


def sitemap_demo(client: Client, site: SitemapSite) -> None:
    """A sitemap batch: one item (the site), one unit of work per document, every URL the site publishes, then
    followed into one child page batch."""
    started = time.monotonic()
    follow = {"options": {"max_attempts": 2}, "robots": "obey"}
    created = client.submit([f"{site.base_url}/"], kind="sitemap", options={"follow": follow})
    log(f"sitemap batch {created['batch_id']}: discovering {site.base_url}/, then following its URLs")
    final = watch(client, created["batch_id"], timeout=600)
    out.print(summary_table(final))
    [item] = list(client.items(created["batch_id"]))
    if item["error"]:
        out.print(f"sitemap item failed: {item['error']}; documents fetched: {dict(site.fetched)}")
    result = item["result"] or {}
    counts = {k: result.get(k) for k in ("urls_found", "duplicates", "documents_ok", "documents_failed")}
    out.print(f"sitemap item: {counts}")
    for doc in result.get("sitemaps", []):
        error = doc["error"]["code"] if doc.get("error") else "ok"
        out.print(f"  {doc['type'] or '-':8} {doc['urls']:>3} URLs  {error:20} {doc['url']}")
    urls = list(client.urls(created["batch_id"]))
    out.print(f"{len(urls)} URLs discovered, e.g. {[u['url'] for u in urls[:3]]}")
    documents = {path: n for path, n in site.fetched.items() if path not in EXPECTED_PATHS}
    twice = {path: n for path, n in documents.items() if n > 1}
    out.print(f"{len(documents)} documents fetched, more than once only those retried or deferred: {twice}")
    out.print(f"sitemap batch finished in {time.monotonic() - started:.1f}s; `scrapersky urls <batch_id>` lists them")
    follow_demo(client, final)


def follow_demo(client: Client, parent: dict[str, Any]) -> None:
    """The child page batch the sitemap batch followed into: its progress, then a summary of both."""
    followed = parent.get("follow") or {}
    if not parent.get("child_batch_id"):
        out.print(f"no child batch: nothing left to follow ({followed})")
        return
    log(f"child page batch {parent['child_batch_id']} of {parent['batch_id']}")
    child = watch(client, parent["child_batch_id"], timeout=600)
    out.print(summary_table(child))
    out.print(
        f"followed: {followed.get('urls')} unique URLs into page batch {child['batch_id']} "
        f"({followed.get('duplicates')} listed twice, {parent.get('skipped_robots')} disallowed by robots.txt); "
        f"pages: {child['succeeded']} succeeded, {child['failed']} failed of {child['total_items']}"
    )
    out.print(items_table(list(client.items(child["batch_id"]))[:5]))


if __name__ == "__main__":
    sys.exit(main())
