"""The counting rules of a sitemap item, run over an in-memory site the way the processor will run them: one
document per unit of work, the item's state going through dicts between units."""

from __future__ import annotations

import gzip
from collections import deque
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError
from scrapersky.sitemaps import (
    INDEX,
    DocumentCount,
    DocumentsRead,
    Entry,
    EntryCounter,
    Failure,
    FollowOptions,
    ItemTally,
    ListedUrls,
    RobotsFile,
    SitemapOptions,
    SitemapReader,
    holds_sitemap,
    plan_documents,
    probe_urls,
    robots_url,
    site_host,
    site_root,
)
from scrapersky.sitemaps.tally import FOUND, MAX_SITEMAP_ENTRIES, STOP

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
E = "https://example.com"


def urlset(urls: list[str]) -> bytes:
    return (f"<urlset {NS}>" + "".join(f"<url><loc>{u}</loc></url>" for u in urls) + "</urlset>").encode()


def index(urls: list[str]) -> bytes:
    return (
        f"<sitemapindex {NS}>" + "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls) + "</sitemapindex>"
    ).encode()


class Site:
    """An in-memory site: URL → body (200) or (status, body); every other URL is a 404. Records each fetch."""

    def __init__(self, pages: dict[str, bytes | tuple[int, bytes]]) -> None:
        self.pages = pages
        self.fetched: list[str] = []

    def get(self, url: str) -> tuple[int, bytes]:
        self.fetched.append(url)
        page = self.pages.get(url, (404, b"not found"))
        return page if isinstance(page, tuple) else (200, page)


@dataclass
class Item:
    """A sitemap item's state between units of work, as the service keeps it (the ledgers in a table)."""

    host: str
    options: SitemapOptions
    tally: dict = field(default_factory=lambda: ItemTally().to_dict())
    read: dict = field(default_factory=lambda: DocumentsRead().to_dict())
    listed: ListedUrls = field(default_factory=ListedUrls)
    stored: list[Entry] = field(default_factory=list)
    queue: deque = field(default_factory=deque)

    def plan(self, urls: list[str], depth: int) -> None:
        read, tally = DocumentsRead.from_dict(self.read), ItemTally.from_dict(self.tally)
        plan = plan_documents(urls, depth, self.options, read)
        tally.truncate(plan.truncated)
        self.queue.extend(plan.fetch)
        self.read, self.tally = read.to_dict(), tally.to_dict()

    @property
    def urls(self) -> list[str]:
        return [entry.url for entry in self.stored]

    @property
    def result(self) -> dict:
        return ItemTally.from_dict(self.tally).result()


def read_document(site: Site, item: Item, url: str, depth: int, probe: bool = False) -> bool:
    """One unit of work: fetch, read (streaming), count, plan the children, merge. A probe that holds no sitemap
    leaves no trace; False then."""
    status, body = site.get(url)
    tally = ItemTally.from_dict(item.tally)
    doc = DocumentCount(url, depth)
    counter = EntryCounter(doc, item.host, item.options.same_host, tally.budget(item.options.max_urls), item.listed)
    reader, children = SitemapReader(url), []
    if status == 200:
        for entry in reader.read(body[i : i + 4096] for i in range(0, len(body), 4096)):
            if reader.type == INDEX:
                children.append(entry.url)
                continue
            verdict = counter.count(entry.url)
            if verdict == STOP:
                break
            if verdict == FOUND:
                item.stored.append(entry)
    if probe and not holds_sitemap(status, reader.result()):
        return False
    if probe:
        item.plan([], 1)
        read = DocumentsRead.from_dict(item.read)
        read.claim(url)
        item.read = read.to_dict()
    failure = None if status == 200 else Failure("http_error", f"HTTP {status}")
    doc.finish(status, reader.result() if status == 200 else None, failure)
    item.plan(children, depth + 1)
    tally = ItemTally.from_dict(item.tally)
    tally.merge(DocumentCount.from_dict(doc.to_dict()))
    item.tally = tally.to_dict()
    return True


def discover(pages: dict, item_url: str, options: SitemapOptions | None = None) -> tuple[Item, Site]:
    site, item = Site(pages), Item(site_host(item_url), options or SitemapOptions())
    root = site_root(item_url)
    if root is None:
        item.plan([item_url], 1)
    else:
        status, body = site.get(robots_url(root))
        item.plan(list(RobotsFile.from_response(robots_url(root), status, body).sitemaps), 1)
        if not item.queue:
            any(read_document(site, item, url, 1, probe=True) for url in probe_urls(root))
    while item.queue and not ItemTally.from_dict(item.tally).stopped:
        url, depth = item.queue.popleft()
        read_document(site, item, url, depth)
    return item, site


def ok(url: str, doc_type: str, urls: int) -> dict:
    return {"url": url, "type": doc_type, "status_code": 200, "urls": urls, "error": None}


def test_an_index_of_urlsets_gzip_either_way_counts_foreign_and_duplicates_exactly():
    pages = {
        f"{E}/robots.txt": b"Sitemap: /sitemap_index.xml\n",
        f"{E}/sitemap_index.xml": index([f"{E}/a.xml", f"{E}/b.xml.gz", f"{E}/c.xml.gz", "ftp://example.com/x.xml"]),
        f"{E}/a.xml": gzip.compress(urlset([f"{E}/1", f"{E}/2", "https://other.example.org/3", f"{E}/1"])),
        f"{E}/b.xml.gz": urlset([f"{E}/2", f"{E}/4", "https://www.example.com/5"]),
        f"{E}/c.xml.gz": gzip.compress(urlset([f"{E}/6"])),
    }
    item, site = discover(pages, "example.com")
    assert item.urls == [f"{E}/1", f"{E}/2", f"{E}/4", "https://www.example.com/5", f"{E}/6"]
    assert item.result == {
        "urls_found": 5,
        "duplicates": 2,
        "skipped_foreign": 1,
        "documents_ok": 4,
        "documents_failed": 0,
        "truncated": None,
        "sitemaps": [
            ok(f"{E}/sitemap_index.xml", "index", 0),
            ok(f"{E}/a.xml", "urlset", 2),
            ok(f"{E}/b.xml.gz", "urlset", 2),
            ok(f"{E}/c.xml.gz", "urlset", 1),
        ],
    }
    assert site.fetched == list(pages)  # robots.txt, then each document once, in order


def test_loops_and_diamonds_are_read_once():
    pages = {
        f"{E}/a.xml": index([f"{E}/b.xml", f"{E}/c.xml", f"{E}/a.xml"]),
        f"{E}/b.xml": index([f"{E}/d.xml", f"{E}/A.xml#frag".replace("A", "a")]),
        f"{E}/c.xml": index([f"{E}/d.xml", "HTTPS://EXAMPLE.COM:443/b.xml"]),
        f"{E}/d.xml": urlset([f"{E}/leaf"]),
    }
    item, site = discover(pages, f"{E}/a.xml")
    assert site.fetched == [f"{E}/a.xml", f"{E}/b.xml", f"{E}/c.xml", f"{E}/d.xml"]
    assert item.urls == [f"{E}/leaf"] and item.result["documents_ok"] == 4 and item.result["truncated"] is None


def test_a_chain_deeper_than_max_depth_stops_there():
    pages = {f"{E}/s{d}.xml": index([f"{E}/s{d + 1}.xml"]) for d in range(1, 20)}
    item, site = discover(pages, f"{E}/s1.xml", SitemapOptions(max_depth=5))
    assert site.fetched == [f"{E}/s{d}.xml" for d in range(1, 6)]
    assert item.result["documents_ok"] == 5 and item.result["truncated"] == "max_depth"


def test_max_documents_counts_fetches_ok_or_failed():
    pages = {f"{E}/i.xml": index([f"{E}/u{n}.xml" for n in range(10)]), f"{E}/u0.xml": (500, b"")}
    pages.update({f"{E}/u{n}.xml": urlset([f"{E}/p{n}"]) for n in range(1, 10)})
    item, site = discover(pages, f"{E}/i.xml", SitemapOptions(max_documents=4))
    assert site.fetched == [f"{E}/i.xml", f"{E}/u0.xml", f"{E}/u1.xml", f"{E}/u2.xml"]
    result = item.result
    assert (result["documents_ok"], result["documents_failed"], result["truncated"]) == (3, 1, "max_documents")
    assert result["sitemaps"][1]["error"] == {"code": "http_error", "message": "HTTP 500"}
    assert item.urls == [f"{E}/p1", f"{E}/p2"]


@pytest.mark.parametrize(("count", "truncated"), [(50_000, None), (50_001, "max_urls")])
def test_a_50000_url_urlset_fits_and_one_more_is_truncated_at_max_urls(count, truncated):
    urls = [f"{E}/page/{n}" for n in range(count)]
    pages = {f"{E}/big.xml": urlset(urls), f"{E}/robots.txt": b"Sitemap: /big.xml\nSitemap: /after.xml"}
    pages[f"{E}/after.xml"] = urlset([f"{E}/page/0"])  # only a duplicate: nothing left out if it is read
    item, site = discover(pages, "https://example.com/")
    result = item.result
    assert result["urls_found"] == 50_000 and item.urls == urls[:50_000] and result["truncated"] == truncated
    assert (result["documents_ok"], result["documents_failed"]) == ((1, 0) if truncated else (2, 0))
    assert (f"{E}/after.xml" in site.fetched) is (truncated is None)  # max_urls stops discovery


def test_duplicates_and_foreign_entries_after_the_budget_do_not_truncate():
    pages = {f"{E}/s.xml": urlset([f"{E}/1", f"{E}/2", f"{E}/1", "https://elsewhere.net/x"])}
    item, _ = discover(pages, f"{E}/s.xml", SitemapOptions(max_urls=2))
    assert item.result["truncated"] is None and item.result["duplicates"] == 1 and item.result["skipped_foreign"] == 1


def test_same_host_off_keeps_foreign_entries():
    pages = {f"{E}/s.xml": urlset([f"{E}/1", "https://elsewhere.net/x"])}
    item, _ = discover(pages, f"{E}/s.xml", SitemapOptions(same_host=False))
    assert item.urls == [f"{E}/1", "https://elsewhere.net/x"] and item.result["skipped_foreign"] == 0


def test_without_robots_sitemaps_html_at_sitemap_xml_is_no_document_and_the_index_probe_is():
    pages = {
        f"{E}/robots.txt": b"User-agent: *\nDisallow: /admin\n",
        f"{E}/sitemap.xml": b"<!DOCTYPE html><html><body>Oops, a page</body></html>",
        f"{E}/sitemap_index.xml": index([f"{E}/s.xml"]),
        f"{E}/s.xml": b"https://example.com/t\n",
    }
    item, site = discover(pages, "example.com")
    assert site.fetched == [f"{E}/robots.txt", f"{E}/sitemap.xml", f"{E}/sitemap_index.xml", f"{E}/s.xml"]
    assert item.result["sitemaps"] == [ok(f"{E}/sitemap_index.xml", "index", 0), ok(f"{E}/s.xml", "text", 1)]


def test_the_first_probe_that_holds_a_sitemap_is_the_only_one():
    item, site = discover({f"{E}/sitemap.xml": urlset([f"{E}/x"])}, "example.com")
    assert site.fetched == [f"{E}/robots.txt", f"{E}/sitemap.xml"] and item.urls == [f"{E}/x"]


def test_no_sitemap_anywhere_reads_no_document():
    item, site = discover({f"{E}/sitemap.xml": (404, b"<urlset/>")}, "example.com")
    assert site.fetched == [f"{E}/robots.txt", *probe_urls(f"{E}/")]
    assert item.result["sitemaps"] == [] and item.result["documents_ok"] + item.result["documents_failed"] == 0


def test_failed_documents_keep_their_urls_and_their_code():
    doc = urlset([f"{E}/1", f"{E}/2"])
    pages = {f"{E}/i.xml": index([f"{E}/cut.xml", f"{E}/html.xml"]), f"{E}/cut.xml": doc[: doc.index(b"/2")]}
    pages[f"{E}/html.xml"] = b"<html><body>no</body></html>"
    item, _ = discover(pages, f"{E}/i.xml")
    result = item.result
    assert item.urls == [f"{E}/1"] and (result["documents_ok"], result["documents_failed"]) == (1, 2)
    codes = [entry["error"] and entry["error"]["code"] for entry in result["sitemaps"]]
    assert codes == [None, "malformed_xml", "not_sitemap"]
    assert [entry["type"] for entry in result["sitemaps"]] == ["index", "urlset", None]


def test_sitemaps_keeps_1000_entries_and_the_counts_stay_exact():
    tally = ItemTally()
    for n in range(MAX_SITEMAP_ENTRIES + 5):
        doc = DocumentCount(f"{E}/{n}.xml", 2, urls=1)
        doc.finish(200, None)
        tally.merge(doc)
    assert len(tally.sitemaps) == MAX_SITEMAP_ENTRIES and tally.documents_ok == MAX_SITEMAP_ENTRIES + 5
    assert ItemTally.from_dict(tally.to_dict()) == tally


def test_truncated_shows_one_reason_whatever_the_order_documents_end_in():
    for reasons in (["max_depth", "max_documents", "max_urls"], ["max_urls", "max_depth"], ["max_depth", None]):
        tally = ItemTally()
        for reason in reasons:
            tally.truncate(reason)
        assert tally.truncated == (
            "max_urls" if "max_urls" in reasons else "max_documents" if "max_documents" in reasons else "max_depth"
        )


def test_a_redirect_back_to_a_document_read_is_no_document():
    read = DocumentsRead()
    plan = plan_documents([f"{E}/a.xml", f"{E}/b.xml"], 1, SitemapOptions(), read)
    assert [url for url, _ in plan.fetch] == [f"{E}/a.xml", f"{E}/b.xml"] and read.reserved == 2
    assert not read.claim(f"{E}/a.xml", reserve=False)  # b.xml redirects to a.xml: not fetched
    read.release()
    assert read.reserved == 1 and DocumentsRead.from_dict(read.to_dict()) == read


def test_sitemap_options_are_bounded_and_closed():
    assert SitemapOptions() == SitemapOptions(max_urls=50_000, max_depth=5, max_documents=1_000, same_host=True)
    for bad in ({"max_urls": 1_000_001}, {"max_urls": 0}, {"max_depth": 0}, {"max_depth": 11}, {"other": 1}):
        with pytest.raises(ValidationError):
            SitemapOptions.model_validate(bad)


def test_follow_options_take_page_options_and_a_robots_rule():
    follow = FollowOptions.model_validate({"options": {"max_attempts": 2}, "limit": 10})
    assert (follow.kind, follow.robots, follow.limit) == ("page", "obey", 10)
    for bad in (
        {"kind": "sitemap"},
        {"robots": "maybe"},
        {"limit": 0},
        {"limit": 1_000_001},
        {"options": {"max_attempts": 99}},
        {"options": {"nope": 1}},
        {"extra": True},
    ):
        with pytest.raises(ValidationError):
            FollowOptions.model_validate(bad)
