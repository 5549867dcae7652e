"""Sitemaps, the pure part: discovery from robots.txt, a streaming document reader, the counting rules of one item
and the options. No I/O here: the sitemap processor fetches, this package reads and counts.

One document, one unit of work::

    read = DocumentsRead.from_dict(state["read"])            # or plan_documents(robots.sitemaps, 1, options, read)
    tally = ItemTally.from_dict(state["tally"])
    doc = DocumentCount(url, depth)
    counter = EntryCounter(doc, site_host(item_url), options.same_host, tally.budget(options.max_urls), listed)
    reader = SitemapReader(url)
    entries = reader.read(response_chunks)
    if <index>: children = [e.url for e in entries]; plan_documents(children, depth + 1, options, read)
    else: store(counter.found(entries))
    doc.finish(status_code, reader.result())
    tally.merge(doc)
"""

from typing import TYPE_CHECKING

from scrapersky.lazy import exports

if TYPE_CHECKING:
    from scrapersky.sitemaps.discovery import RobotsFile, holds_sitemap, probe_urls, robots_url, site_root
    from scrapersky.sitemaps.documents import DocumentsRead, Plan, plan_documents
    from scrapersky.sitemaps.entries import Entry
    from scrapersky.sitemaps.faults import DOCUMENT_CODES, NO_SITEMAP, Failure
    from scrapersky.sitemaps.inflate import MAX_DOCUMENT_BYTES
    from scrapersky.sitemaps.markup import ATOM, INDEX, RSS, TEXT, URLSET
    from scrapersky.sitemaps.options import FollowOptions, SitemapOptions
    from scrapersky.sitemaps.reader import DocumentRead, SitemapReader
    from scrapersky.sitemaps.tally import DocumentCount, EntryCounter, ItemTally, ListedUrls, UrlLedger, site_host

__getattr__ = exports(
    globals(),
    {
        "discovery": ("RobotsFile", "holds_sitemap", "probe_urls", "robots_url", "site_root"),
        "documents": ("DocumentsRead", "Plan", "plan_documents"),
        "entries": ("Entry",),
        "faults": ("DOCUMENT_CODES", "NO_SITEMAP", "Failure"),
        "inflate": ("MAX_DOCUMENT_BYTES",),
        "markup": ("ATOM", "INDEX", "RSS", "TEXT", "URLSET"),
        "options": ("FollowOptions", "SitemapOptions"),
        "reader": ("DocumentRead", "SitemapReader"),
        "tally": ("DocumentCount", "EntryCounter", "ItemTally", "ListedUrls", "UrlLedger", "site_host"),
    },
)

__all__ = [
    "ATOM",
    "DOCUMENT_CODES",
    "INDEX",
    "MAX_DOCUMENT_BYTES",
    "NO_SITEMAP",
    "RSS",
    "TEXT",
    "URLSET",
    "DocumentCount",
    "DocumentRead",
    "DocumentsRead",
    "Entry",
    "EntryCounter",
    "Failure",
    "FollowOptions",
    "ItemTally",
    "ListedUrls",
    "Plan",
    "RobotsFile",
    "SitemapOptions",
    "SitemapReader",
    "UrlLedger",
    "holds_sitemap",
    "plan_documents",
    "probe_urls",
    "robots_url",
    "site_host",
    "site_root",
]
