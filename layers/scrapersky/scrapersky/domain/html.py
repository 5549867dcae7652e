"""Extracts the page summary (title, description, canonical, first h1) with the standard library parser."""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from charset_normalizer import from_bytes

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_SNIFF_BYTES = 4096


class _Summary(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.description: str | None = None
        self.canonical: str | None = None
        self.h1: str | None = None
        self._capture: str | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("title", "h1") and getattr(self, tag) is None:
            self._start(tag)
        elif tag in ("meta", "link"):
            self._head_tag(tag, {k.lower(): (v or "") for k, v in attrs})

    def _head_tag(self, tag: str, a: dict[str, str]) -> None:
        if tag == "meta" and self.description is None and a.get("name", "").lower() == "description":
            self.description = _clean(a.get("content", ""))
        elif tag == "link" and self.canonical is None and "canonical" in a.get("rel", "").lower().split():
            self.canonical = a.get("href") or None

    def handle_endtag(self, tag: str) -> None:
        if self._capture == tag:
            text = _clean("".join(self._buf))
            setattr(self, tag, text)
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture:
            self._buf.append(data)

    def _start(self, tag: str) -> None:
        self._capture = tag
        self._buf = []


def _clean(text: str) -> str | None:
    text = " ".join(text.split())
    return text[:1000] or None


def summarise_html(text: str) -> dict[str, str | None]:
    parser = _Summary()
    try:
        parser.feed(text)
        parser.close()
    except Exception:
        pass
    return {"title": parser.title, "description": parser.description, "canonical": parser.canonical, "h1": parser.h1}


def decode_html(body: bytes, declared: str | None) -> str:
    """The page as text: the charset the headers declare, else a `<meta charset>` (or http-equiv) in its first
    bytes (a BOM before both), else what charset detection finds (charset_normalizer, which requests itself uses);
    UTF-8 when nothing is known. Undecodable bytes are replaced, never raised."""
    if body.startswith(codecs.BOM_UTF8):  # a BOM wins over any declaration (the HTML standard's order)
        return body[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    for name in (declared, _meta_charset(body)):
        codec = _codec(name)
        if codec:
            return body.decode(codec, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        best = from_bytes(body[:65_536]).best()
        return body.decode(best.encoding if best else "utf-8", errors="replace")


def _meta_charset(body: bytes) -> str | None:
    m = _META_CHARSET.search(body[:_SNIFF_BYTES])
    return m.group(1).decode("ascii") if m else None


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None
