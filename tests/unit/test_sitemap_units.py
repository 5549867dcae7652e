"""The sitemap kind on the fakes: one document, one unit of work, each through its own lease, counted exactly."""

from __future__ import annotations

import pytest
from scrapersky.models import BatchOptions, BatchStatus, ItemStatus
from scrapersky.services import worker
from scrapersky.services.fanout import work_message

from tests.fakes import Streamed, failure, make_deps
from tests.unit.sitemap_site import ROOT, Site, ended, gz, index, result_of, robots, run, seed, urlset


def deps_with_proxies():
    return make_deps(proxies=3, default_host_rate=20.0)


def test_a_site_is_discovered_document_by_document_each_fetched_once():
    deps = deps_with_proxies()
    site = Site(
        deps,
        {
            "/robots.txt": Streamed(robots("/index.xml")),
            "/index.xml": Streamed(index("/a.xml", "/b.xml.gz", "/deep.xml", "/gone.xml", "/index.xml")),
            "/deep.xml": Streamed(index("/deeper.xml", "/a.xml")),  # a diamond: a.xml twice, and a loop
            "/deeper.xml": Streamed(gz(index("/c.xml"))),  # three levels below the first index
            "/a.xml": Streamed(urlset("/1", "/2", "/2")),
            "/b.xml.gz": Streamed(gz(urlset("/2", "/3", "/x", host="https://other.test"))),
            "/c.xml": Streamed(b"https://s.test/4\nhttps://s.test/1\n"),
        },
    )
    batch = seed(deps)

    run(deps, batch)

    result = result_of(deps, batch)
    assert {k: v for k, v in result.items() if k != "sitemaps"} == {
        "urls_found": 3,
        "duplicates": 2,  # /2 within a.xml, /1 again in c.xml
        "skipped_foreign": 3,
        "documents_ok": 6,
        "documents_failed": 1,
        "truncated": None,
    }
    assert deps.urls.of_item(batch.batch_id, 0) == {f"https://s.test/{i}" for i in (1, 2, 4)}
    assert all(n == 1 for n in site.fetched.values()), site.fetched
    gone = next(s for s in result["sitemaps"] if s["url"].endswith("/gone.xml"))
    assert (gone["status_code"], gone["error"]["code"]) == (404, "http_404")
    assert deps.items.record(batch.batch_id, 0).status is ItemStatus.SUCCEEDED
    assert ended(deps, batch) is BatchStatus.COMPLETED
    assert deps.pool.unreleased() == []


def test_without_robots_sitemaps_the_probes_are_tried_and_none_found_is_no_sitemap():
    deps = deps_with_proxies()
    site = Site(deps, {"/robots.txt": Streamed(b"User-agent: *\n"), "/sitemap_index.xml": Streamed(b"<html></html>")})
    batch = seed(deps)

    run(deps, batch)

    rec = deps.items.record(batch.batch_id, 0)
    assert (rec.status, rec.error.code if rec.error else None) == (ItemStatus.FAILED, "no_sitemap")
    assert set(site.fetched) == {"/robots.txt", "/sitemap.xml", "/sitemap_index.xml"}
    assert ended(deps, batch) is BatchStatus.FAILED


def test_a_probe_that_holds_a_sitemap_is_the_first_document_and_the_next_probe_is_not_tried():
    deps = deps_with_proxies()
    site = Site(deps, {"/robots.txt": Streamed(b"", 404), "/sitemap.xml": Streamed(urlset("/1"))})
    batch = seed(deps)

    run(deps, batch)

    assert result_of(deps, batch)["urls_found"] == 1
    assert "/sitemap_index.xml" not in site.fetched


def test_429_defers_without_an_attempt_and_5xx_retries_up_to_max_attempts():
    deps = deps_with_proxies()
    site = Site(
        deps,
        {
            "/robots.txt": Streamed(robots("/slow.xml", "/broken.xml")),
            "/slow.xml": [Streamed(b"", 429, retry_after="5"), Streamed(urlset("/1"))],
            "/broken.xml": Streamed(b"", 500),
        },
    )
    batch = seed(deps)

    run(deps, batch)

    result = result_of(deps, batch)
    assert (result["documents_ok"], result["documents_failed"], result["urls_found"]) == (1, 1, 1)
    assert site.fetched["/slow.xml"] == 2 and site.fetched["/broken.xml"] == 2  # max_attempts: 2
    limited = [r for r in deps.pool.releases if r.outcome.value == "rate_limited"]
    assert len(limited) == 1
    after = [c.proxy_url for c in deps.fetcher.fetches if c.url.endswith("/slow.xml")]
    assert after[0] != after[1]  # never the same proxy inside Retry-After


def test_a_private_child_is_refused_by_the_guard_and_fails_that_document_only():
    deps = deps_with_proxies()
    Site(
        deps,
        {
            "/robots.txt": Streamed(robots("/index.xml")),
            "/index.xml": Streamed(index("/a.xml", "/private.xml")),
            "/a.xml": Streamed(urlset("/1")),
            "/private.xml": failure("blocked_target", permanent=True),
        },
    )
    batch = seed(deps)

    run(deps, batch)

    result = result_of(deps, batch)
    codes = {s["url"].rsplit("/", 1)[1]: (s["error"] or {}).get("code") for s in result["sitemaps"]}
    assert codes == {"index.xml": None, "a.xml": None, "private.xml": "blocked_target"}


def test_max_urls_stops_discovery_exactly_and_says_so():
    deps = deps_with_proxies()
    Site(deps, {"/robots.txt": Streamed(robots("/a.xml", "/b.xml")), "/a.xml": Streamed(urlset("/1", "/2")),
                "/b.xml": Streamed(urlset("/3", "/4", "/1"))})  # fmt: skip
    batch = seed(deps, max_urls=3)

    run(deps, batch)

    result = result_of(deps, batch)
    assert (result["urls_found"], result["truncated"]) == (3, "max_urls")
    assert len(deps.urls.of_item(batch.batch_id, 0)) == 3
    assert result["documents_failed"] == 0


def test_max_depth_and_max_documents_leave_documents_out_and_say_so():
    deps = deps_with_proxies()
    site = Site(deps, {"/robots.txt": Streamed(robots("/i1.xml")), "/i1.xml": Streamed(index("/i2.xml")),
                       "/i2.xml": Streamed(index("/u.xml"))})  # fmt: skip
    batch = seed(deps, max_depth=2)
    run(deps, batch)
    assert result_of(deps, batch)["truncated"] == "max_depth"
    assert "/u.xml" not in site.fetched

    deps = deps_with_proxies()
    Site(deps, {"/robots.txt": Streamed(robots("/a.xml", "/b.xml", "/c.xml")), "/a.xml": Streamed(urlset("/1"))})
    batch = seed(deps, max_documents=1)
    run(deps, batch)
    result = result_of(deps, batch)
    assert (result["documents_ok"] + result["documents_failed"], result["truncated"]) == (1, "max_documents")


def test_a_redirect_to_a_document_already_read_is_not_fetched_and_is_no_document():
    deps = deps_with_proxies()
    Site(
        deps,
        {
            "/robots.txt": Streamed(robots("/index.xml")),
            "/index.xml": Streamed(index("/a.xml", "/moved.xml")),
            "/a.xml": Streamed(urlset("/1")),
            "/moved.xml": Streamed(b"", 200, hops=("https://s.test/index.xml",)),
        },
    )
    batch = seed(deps)

    run(deps, batch)

    result = result_of(deps, batch)
    assert (result["documents_ok"], result["documents_failed"]) == (2, 0)


def test_hostile_documents_each_fail_with_their_code():
    deps = deps_with_proxies()
    bomb = gz(b"<urlset>" + b" " * 60_000_000)
    dtd = b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "x">]><urlset><url><loc>&a;</loc></url></urlset>'
    Site(
        deps,
        {
            "/robots.txt": Streamed(robots("/bomb.xml", "/dtd.xml", "/html.xml", "/cut.xml")),
            "/bomb.xml": Streamed(bomb),
            "/dtd.xml": Streamed(dtd),
            "/html.xml": Streamed(b"<!doctype html><html><body>hi</body></html>"),
            "/cut.xml": Streamed(urlset("/1", "/2")[:-30]),
        },
    )
    batch = seed(deps)

    run(deps, batch)

    result = result_of(deps, batch)
    codes = {s["url"].rsplit("/", 1)[1]: (s["error"] or {}).get("code") for s in result["sitemaps"]}
    assert codes == {
        "bomb.xml": "too_large",
        "dtd.xml": "xml_dtd_forbidden",
        "html.xml": "not_sitemap",
        "cut.xml": "malformed_xml",
    }
    assert result["urls_found"] == 1  # what parsed before the cut stands


def test_a_document_processed_twice_counts_once():
    deps = deps_with_proxies()
    Site(deps, {"/robots.txt": Streamed(robots("/a.xml")), "/a.xml": Streamed(urlset("/1", "/2", "/1"))})
    batch = seed(deps)
    deliver(deps, work_message(batch, 0, ROOT))  # the item's start: its robots.txt unit is sent
    deliver(deps, *deps.queue.pop_work())  # robots.txt: a.xml is planned and sent
    (doc,) = deps.queue.pop_work()
    deps.documents.fail_next("finish", RuntimeError("crash after the URLs were stored"))
    with pytest.raises(RuntimeError):
        deliver(deps, doc)
    assert len(deps.urls.of_item(batch.batch_id, 0)) == 2

    deps.clock.sleep(deps.settings.lease_seconds + 1)  # the crashed delivery's claim lapses; SQS redelivers
    deliver(deps, doc)
    deliver(deps, doc)  # and once more, after it ended

    result = result_of(deps, batch)
    assert (result["urls_found"], result["duplicates"], result["documents_ok"]) == (2, 1, 1)
    progress = deps.documents.progress(batch.batch_id, 0)
    assert progress is not None and (progress.open, progress.granted) == (0, 2)
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.COMPLETED


def deliver(deps, *msgs) -> None:
    for msg in msgs:
        worker.process(deps, msg, worker.InvocationCache())


def test_a_unit_redelivered_after_its_item_ended_changes_nothing():
    deps = deps_with_proxies()
    Site(deps, {"/robots.txt": Streamed(robots("/a.xml")), "/a.xml": Streamed(urlset("/1"))})
    batch = seed(deps)
    run(deps, batch)
    before = result_of(deps, batch)
    unit = next(m for m in deps.queue.calls_to("send_work") for m in m.args[0] if m.unit and "a.xml" in m.unit["url"])

    assert worker.process(deps, unit, worker.InvocationCache()).outcome == "duplicate_delivery"
    assert result_of(deps, batch) == before
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.COMPLETED


def test_bad_follow_and_sitemap_options_are_invalid():
    for bad in ({"limit": 0}, {"robots": "maybe"}, {"kind": "profile"}, {"options": {"max_attempts": 0}}):
        with pytest.raises(ValueError):
            BatchOptions.model_validate({"follow": bad})
    with pytest.raises(ValueError):
        BatchOptions.model_validate({"sitemap": {"max_documents": 0}})


def test_a_document_cut_before_its_end_counts_what_it_stored_so_the_listing_and_the_counts_agree():
    deps = deps_with_proxies()
    paths = [f"/p/{i}" for i in range(2000)]  # more than a chunk (kinds/sitemap_count.CHUNK)
    cut = Streamed(urlset(*paths), cut=failure("timeout"))  # every try reads some of it, then its deadline ends it
    Site(
        deps,
        {"/robots.txt": Streamed(robots("/big.xml", "/ok.xml")), "/big.xml": cut, "/ok.xml": Streamed(urlset("/1"))},
    )
    batch = seed(deps)

    run(deps, batch)

    result = result_of(deps, batch)
    listed, cursor = deps.urls.page(batch.batch_id, range(0, 1), 5000, None)
    assert cursor is None
    big = next(s for s in result["sitemaps"] if s["url"].endswith("/big.xml"))
    assert big["error"]["code"] == "timeout" and big["type"] == "urlset"
    assert 0 < big["urls"] < 2000  # what was stored before the cut (counted in chunks), not nothing
    assert result["urls_found"] == len(listed) == big["urls"] + 1
    assert (result["documents_ok"], result["documents_failed"]) == (1, 1)


def slow_store_site(deps, urls: int, store_s: float) -> tuple[Site, set[str]]:
    """robots.txt -> one gzip urlset of `urls` URLs (its first 30 listed twice, and 5 of another host); storing a
    chunk of its URLs takes `store_s` on the clock."""
    paths = [f"/p/{i}" for i in range(urls)]
    body = (
        urlset(*paths, *paths[:30]).replace(b"</urlset>", b"")
        + urlset(*[f"/x/{i}" for i in range(5)], host="https://other.test").split(b'9">', 1)[1]
    )
    site = Site(deps, {"/robots.txt": Streamed(robots("/big.xml.gz")), "/big.xml.gz": Streamed(gz(body))})
    deps.urls.clock, deps.urls.takes_s = deps.clock, store_s
    return site, {f"https://s.test{p}" for p in paths}


def test_a_document_too_slow_to_store_in_one_delivery_goes_on_from_its_checkpoint_counted_exactly():
    """Storing the urlset outlasts a delivery (timeout_s 5 s, a chunk takes 1 s to store): it stops at a checkpoint
    and goes on in the next message through its own lease, each part fetched again and only the rest stored; the
    item counts every URL once and the listing holds each once. The storing never counted as the site's time: no
    document failed for a timeout, no attempt was spent."""
    deps = deps_with_proxies()
    site, expected = slow_store_site(deps, 5000, store_s=1.0)
    batch = seed(deps, same_host=True)

    outcomes = run(deps, batch)

    parts = outcomes.count("document_checkpoint") + 1
    assert parts >= 2 and site.fetched["/big.xml.gz"] == parts
    result = result_of(deps, batch)
    assert {k: result[k] for k in ("urls_found", "duplicates", "skipped_foreign")} == {
        "urls_found": 5000,
        "duplicates": 30,
        "skipped_foreign": 5,
    }
    assert (result["documents_ok"], result["documents_failed"]) == (1, 0)
    assert deps.urls.of_item(batch.batch_id, 0) == expected
    [big] = [r for r in deps.documents.of_item(batch.batch_id, 0) if r.url.endswith("/big.xml.gz")]
    assert big.attempts == 0
    assert ended(deps, batch) is BatchStatus.COMPLETED


def test_a_checkpointed_document_delivered_twice_still_counts_once():
    """The original message comes back too (SQS redelivered it before its delete): both go on from the checkpoint
    kept on the document's row; one reads on, the other finds it busy or done, and the counts are exact."""
    deps = deps_with_proxies()
    _site, expected = slow_store_site(deps, 4000, store_s=1.0)
    batch = seed(deps, same_host=True)
    deliver(deps, work_message(batch, 0, ROOT))
    deliver(deps, *deps.queue.pop_work())  # robots.txt: the urlset is planned and sent
    (doc,) = deps.queue.pop_work()
    assert worker.process(deps, doc, worker.InvocationCache()).outcome == "document_checkpoint"
    (going_on,) = deps.queue.pop_work()
    assert going_on.unit == doc.unit

    queue = [doc, going_on]  # the original again, and its continuation
    for _ in range(50):
        if not queue:
            break
        msg = queue.pop(0)
        result = worker.process(deps, msg, worker.InvocationCache())
        queue += deps.queue.pop_work()
        if result.retry_in_s is not None:
            deps.clock.sleep(max(result.retry_in_s, 0.01))
            queue.append(msg)

    result = result_of(deps, batch)
    assert (result["urls_found"], result["duplicates"], result["documents_ok"]) == (4000, 30, 1)
    assert deps.urls.of_item(batch.batch_id, 0) == expected
    assert ended(deps, batch) is BatchStatus.COMPLETED
