"""What an XML sitemap document lists, read by SAX events as they come: `urlset` (each url's loc, lastmod, changefreq,
priority), `sitemapindex` (each child sitemap's loc and lastmod), RSS 2.0 (each item's link and pubDate) and Atom
(each entry's alternate link and updated). Only the elements of the root's own namespace prefix count, at their
place: an `<image:loc>`, an `<xhtml:link>` or an `<atom:link>` inside an RSS channel is never taken for a URL, and a
document without the sitemap namespace reads the same as one with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.handler import ContentHandler

from scrapersky.sitemaps.entries import (
    MAX_URL_LENGTH,
    Entry,
    http_url,
    normalise_changefreq,
    normalise_lastmod,
    normalise_priority,
    normalise_rfc822,
)
from scrapersky.sitemaps.faults import NOT_SITEMAP, DocumentFault

URLSET, INDEX, TEXT, RSS, ATOM = "urlset", "index", "text", "rss", "atom"
_ALTERNATE = ("", "alternate")


@dataclass(frozen=True)
class Schema:
    """Where a document type keeps its records and which of their children are which field."""

    doc_type: str
    record: tuple[str, ...]  # element path below the root
    fields: dict[str, str]  # child element → field: "url", "lastmod", "rfc822", "changefreq", "priority"
    relative_urls: bool = False  # Atom hrefs may be relative (to the document); sitemap and RSS URLs may not


SCHEMAS = {
    "urlset": Schema(
        URLSET, ("url",), {"loc": "url", "lastmod": "lastmod", "changefreq": "changefreq", "priority": "priority"}
    ),
    "sitemapindex": Schema(INDEX, ("sitemap",), {"loc": "url", "lastmod": "lastmod"}),
    "rss": Schema(RSS, ("channel", "item"), {"link": "url", "pubDate": "rfc822"}),
    "feed": Schema(ATOM, ("entry",), {"link": "href", "updated": "lastmod"}, relative_urls=True),
}


def local_name(qname: str) -> str:
    return qname.rpartition(":")[2]


def make_entry(record: dict[str, str], base: str | None) -> Entry | None:
    url = http_url(record.get("url", ""), base)
    if url is None:
        return None
    lastmod = normalise_lastmod(record["lastmod"]) if "lastmod" in record else normalise_rfc822(record.get("rfc822"))
    changefreq = normalise_changefreq(record.get("changefreq"))
    return Entry(url, lastmod, changefreq, normalise_priority(record.get("priority")))


class SitemapHandler(ContentHandler):
    """SAX content handler (namespace processing off, so an undeclared prefix is no fault): hands each record's
    Entry to `emit` when the record's element closes. Text is kept only inside a wanted field, at most
    MAX_URL_LENGTH characters of it, so memory does not grow with the document."""

    def __init__(self, document_url: str, emit: Callable[[Entry], None]) -> None:
        super().__init__()
        self._url = document_url
        self._emit = emit
        self.schema: Schema | None = None
        self._prefix = ""
        self._own: list[bool] = []  # per open element below the root: of the root's prefix, outside foreign ones
        self._foreign = 0
        self._path: list[str] = []
        self._record: dict[str, str] | None = None
        self._field: str | None = None
        self._text: list[str] = []
        self._size = 0
        self.events = 0  # how many SAX events so far: the reader's sign that expat is not buffering one huge token

    def startElement(self, name: str, attrs: Any) -> None:
        self.events += 1
        if self.schema is None:
            self._start_root(name)
            return
        prefix, _, local = name.rpartition(":")
        own = self._foreign == 0 and prefix == self._prefix
        self._own.append(own)
        if not own:
            self._foreign += 1
            return
        self._path.append(local)
        if len(self._path) == len(self.schema.record) and tuple(self._path) == self.schema.record:
            self._record = {}
        elif self._record is not None and len(self._path) == len(self.schema.record) + 1:
            self._start_field(local, attrs)

    def _start_root(self, name: str) -> None:
        schema = SCHEMAS.get(local_name(name))
        if schema is None:
            raise DocumentFault(NOT_SITEMAP, f"root element <{name}> is not a sitemap, RSS or Atom document")
        self.schema = schema
        self._prefix = name.rpartition(":")[0]

    def _start_field(self, local: str, attrs: Any) -> None:
        assert self.schema is not None and self._record is not None
        field = self.schema.fields.get(local)
        if field == "href":  # Atom: the link is an attribute; the first alternate (or rel-less) one is the URL
            if "url" not in self._record and attrs.get("rel", "").strip().lower() in _ALTERNATE:
                self._record["url"] = attrs.get("href", "")
            return
        if field is not None and field not in self._record:
            self._field, self._text, self._size = field, [], 0

    def characters(self, content: str) -> None:
        self.events += 1
        if self._field is not None and self._size <= MAX_URL_LENGTH:
            self._text.append(content)
            self._size += len(content)

    def endElement(self, name: str) -> None:
        self.events += 1
        if not self._own:  # the root
            return
        if not self._own.pop():
            self._foreign -= 1
            return
        depth = len(self._path)
        self._path.pop()
        assert self.schema is not None
        record_depth = len(self.schema.record)
        if depth == record_depth + 1 and self._field is not None and self._record is not None:
            self._record[self._field] = "".join(self._text) if self._size <= MAX_URL_LENGTH else ""
            self._field = None
        elif depth == record_depth and self._record is not None:
            self._end_record(self._record)
            self._record = None

    def _end_record(self, record: dict[str, str]) -> None:
        assert self.schema is not None
        entry = make_entry(record, self._url if self.schema.relative_urls else None)
        if entry is not None:
            self._emit(entry)
