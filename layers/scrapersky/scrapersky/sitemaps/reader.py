"""The streaming reader of one sitemap document: fed raw bytes chunk by chunk, it yields each entry as soon as it is
parsed. Memory stays bounded whatever the document's size: the inflater hands on pieces of at most 64 KiB, the XML
parser (defusedxml's expat reader, DTDs and entities forbidden) keeps only the open elements, and the text reader
only the current line. A fault ends the document with a Failure; the entries yielded before it stand."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from xml.sax import SAXParseException

from scrapersky.sitemaps.entries import MAX_URL_LENGTH, Entry, http_url
from scrapersky.sitemaps.faults import (
    MALFORMED_XML,
    NOT_SITEMAP,
    TOO_LARGE,
    XML_DTD_FORBIDDEN,
    XML_ENTITIES_FORBIDDEN,
    DocumentFault,
    Failure,
)
from scrapersky.sitemaps.inflate import MAX_DOCUMENT_BYTES, Inflater
from scrapersky.sitemaps.markup import SCHEMAS, TEXT, SitemapHandler, local_name

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SPACE = b" \t\r\n"
_MAX_TOKEN_BYTES = 4 * 1024 * 1024  # expat holds a token whole, and its attributes again as Python strings
_SNIFF = 1024  # how much of a markup document's start is looked at to tell HTML from XML
_HTML = re.compile(rb"(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class DocumentRead:
    """What reading one document came to: its type (None when it was no sitemap at all, or failed before its root
    element), the entries it yielded, and its failure (None when it was read to its end without fault)."""

    url: str
    type: str | None
    entries: int
    failure: Failure | None

    @property
    def ok(self) -> bool:
        return self.failure is None


class _TextBody:
    """A plain-text sitemap: one URL per line (UTF-8); lines that are no http(s) URL are ignored."""

    doc_type = TEXT
    fault: DocumentFault | None = None

    def __init__(self) -> None:
        self._line = b""
        self._skipping = False  # inside a line longer than any URL: dropped up to its end

    def feed(self, data: bytes) -> list[Entry]:
        lines = data.split(b"\n")
        lines[0], self._line = self._line + lines[0], b""
        *complete, last = lines
        entries = [entry for entry in map(self._entry, complete) if entry is not None]
        self._skipping = self._skipping and not complete
        if len(last) > 4 * MAX_URL_LENGTH:
            self._skipping = True
        elif not self._skipping:
            self._line = last
        return entries

    def _entry(self, line: bytes) -> Entry | None:
        if self._skipping:
            self._skipping = False
            return None
        url = http_url(line.decode("utf-8", errors="replace"))
        return None if url is None else Entry(url)

    def close(self) -> list[Entry]:
        entry = self._entry(self._line)
        self._line = b""
        return [] if entry is None else [entry]


class _XmlBody:
    """An XML document through defusedxml's expat reader, every defusedxml and expat error mapped to a code."""

    def __init__(self, url: str) -> None:
        self._entries: list[Entry] = []
        self._handler = SitemapHandler(url, self._entries.append)
        from defusedxml.expatreader import DefusedExpatParser  # loaded by the sitemap kind only

        self._parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
        self._parser.setContentHandler(self._handler)
        self.doctype: str | None = None
        self.fault: DocumentFault | None = None
        self._quiet = 0  # bytes fed since the last SAX event

    @property
    def doc_type(self) -> str | None:
        if self._handler.schema is not None:
            return self._handler.schema.doc_type
        schema = SCHEMAS.get(local_name(self.doctype or ""))
        return None if schema is None else schema.doc_type

    def feed(self, data: bytes) -> list[Entry]:
        events = self._handler.events
        entries = self._step(self._parser.feed, data)
        self._quiet = self._quiet + len(data) if self._handler.events == events else 0
        if self._quiet > _MAX_TOKEN_BYTES and self.fault is None:
            self.fault = DocumentFault(TOO_LARGE, f"one XML tag or comment longer than {_MAX_TOKEN_BYTES} bytes")
        return entries

    def close(self) -> list[Entry]:
        return self._step(self._parser.close)

    def _step(self, step: Callable[..., None], *args: bytes) -> list[Entry]:
        """Runs one parser step; a fault is kept in `fault` so the entries parsed before it are still handed on."""
        from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

        try:
            step(*args)
        except DocumentFault as fault:
            self.fault = fault
        except DTDForbidden as e:
            self.fault = self._refused_doctype(e.name or "")
        except (EntitiesForbidden, ExternalReferenceForbidden):
            self.fault = DocumentFault(XML_ENTITIES_FORBIDDEN, "entity declarations and references are refused")
        except SAXParseException as e:
            where = f"line {e.getLineNumber()}, column {e.getColumnNumber()}"
            self.fault = DocumentFault(MALFORMED_XML, f"{where}: {e.getMessage()}")
        entries = self._entries[:]
        self._entries.clear()
        return entries

    def _refused_doctype(self, name: str) -> DocumentFault:
        self.doctype = name
        if local_name(name).lower() == "html":
            return DocumentFault(NOT_SITEMAP, "an HTML page, not a sitemap")
        return DocumentFault(XML_DTD_FORBIDDEN, f"DOCTYPE {name} refused: DTDs and entities are not read")


class SitemapReader:
    """Reads one document. `feed(chunk)` and `close()` yield the entries they complete; iterate each to its end
    before the next call (a caller that stops early, e.g. at max_urls, simply stops feeding). After a fault every
    call yields nothing and `result()` carries the failure."""

    def __init__(self, url: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> None:
        self.url = url
        self._inflater = Inflater(max_bytes)
        self._body: _TextBody | _XmlBody | None = None
        self._head = b""
        self._started = False
        self._entries = 0
        self._failure: Failure | None = None
        self._closed = False

    def read(self, chunks: Iterable[bytes]) -> Iterator[Entry]:
        """Every entry of a document given as an iterable of chunks, e.g. a streamed response's `iter_content`."""
        for chunk in chunks:
            yield from self.feed(chunk)
        yield from self.close()

    def feed(self, chunk: bytes) -> Iterator[Entry]:
        if not self._closed and self._failure is None:
            yield from self._guard(self._inflater.push(chunk), final=False)

    def close(self) -> Iterator[Entry]:
        if not self._closed and self._failure is None:
            self._closed = True
            yield from self._guard(self._inflater.finish(), final=True)

    @property
    def type(self) -> str | None:
        """The document's type, known before its first entry is yielded."""
        return None if self._body is None else self._body.doc_type

    def result(self) -> DocumentRead:
        return DocumentRead(self.url, self.type, self._entries, self._failure)

    def _guard(self, pieces: Iterator[bytes], final: bool) -> Iterator[Entry]:
        try:
            for piece in pieces:
                yield from self._counted(self._parse(piece))
            if final:
                yield from self._counted(self._finish())
        except DocumentFault as fault:
            self._failure = fault.failure

    def _counted(self, entries: list[Entry]) -> Iterator[Entry]:
        """Hands on what one step parsed, then raises the fault that step met, if any."""
        self._entries += len(entries)
        yield from entries
        if self._body is not None and self._body.fault is not None:
            raise self._body.fault

    def _parse(self, piece: bytes) -> list[Entry]:
        if self._body is None:
            piece = self._sniff(piece, final=False)
            if self._body is None:
                return []
        return self._body.feed(piece)

    def _finish(self) -> list[Entry]:
        if self._body is None:
            piece = self._sniff(b"", final=True)
            if self._body is None:
                raise DocumentFault(NOT_SITEMAP, "empty document")
            entries = self._body.feed(piece)
            return entries if self._body.fault is not None else entries + self._body.close()
        return self._body.close()

    def _sniff(self, piece: bytes, final: bool) -> bytes:
        """Collects the document's start until its kind is known: text (first non-blank byte not `<`), HTML (not a
        sitemap) or XML. A UTF-8 BOM and blanks before the markup are dropped (expat wants the declaration first)."""
        head, self._head = self._head + piece, b""
        if not self._started:
            if len(head) < len(_UTF8_BOM) and not final:
                self._head = head
                return b""
            self._started = True
            if head.startswith(_UTF16_BOMS):  # UTF-16 XML: expat reads the BOM itself
                self._body = _XmlBody(self.url)
                return head
            head = head.removeprefix(_UTF8_BOM)
        head = head.lstrip(_SPACE)
        if not head or (head.startswith(b"<") and len(head) < _SNIFF and not final):
            self._head = head
            return b""
        self._body = _choose_body(head, self.url)
        return head


def _choose_body(head: bytes, url: str) -> _TextBody | _XmlBody:
    if not head.startswith(b"<"):
        return _TextBody()
    if _HTML.match(head, 0, _SNIFF):
        raise DocumentFault(NOT_SITEMAP, "an HTML page, not a sitemap")
    return _XmlBody(url)
