"""Raw bytes in, document bytes out, in bounded pieces: gzip is recognised by its magic bytes (whatever the URL or
the headers say) and peeled layer by layer, each layer's output capped. Nothing here holds more than a piece: a
50 KB gzip that would expand to 1 GB is inflated at most `cap` bytes far, then fails with `too_large`."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from scrapersky.sitemaps.faults import BAD_GZIP, TOO_LARGE, DocumentFault

MAX_DOCUMENT_BYTES = 52_428_800  # 50 MiB, the sitemap protocol's own limit, after every decompression layer
MAX_GZIP_LAYERS = 3  # a sitemap gzipped by the site and again by a misconfigured server is real; more is not
PIECE = 65_536  # the most any stage hands on at once, so the parser's output per step stays small
GZIP_MAGIC = b"\x1f\x8b"


def _pieces(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), PIECE):
        yield data[start : start + PIECE]


class _Gunzip:
    """One gzip layer, multi-member files included; garbage after the last member is ignored (as gzip(1) does)."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._pending = b""  # the start of what follows a member, until its first two bytes are known
        self._trailing = False

    def inflate(self, data: bytes) -> Iterator[bytes]:
        while data and not self._trailing:
            if self._z.eof:
                data = self._next_member(data)
                continue
            try:
                out = self._z.decompress(data, PIECE)
            except zlib.error as e:
                raise DocumentFault(BAD_GZIP, f"corrupt gzip data: {e}") from e
            data = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
            if out:
                yield out

    def _next_member(self, data: bytes) -> bytes:
        data, self._pending = self._pending + data, b""
        if len(data) < len(GZIP_MAGIC):
            self._pending = data
            return b""
        if not data.startswith(GZIP_MAGIC):
            self._trailing = True
            return b""
        self._z = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        return data

    def finish(self) -> Iterator[bytes]:
        try:
            rest = self._z.flush()
        except zlib.error as e:
            raise DocumentFault(BAD_GZIP, f"corrupt gzip data: {e}") from e
        yield from _pieces(rest)
        if not self._z.eof:
            raise DocumentFault(BAD_GZIP, "gzip stream ends before its end of stream")


class Inflater:
    """One stage per layer: counts the bytes that reach it (at most `cap`), sniffs their first two bytes and either
    hands them on as the document or inflates them into the next stage."""

    def __init__(self, cap: int = MAX_DOCUMENT_BYTES, layers_left: int = MAX_GZIP_LAYERS) -> None:
        self._cap = cap
        self._layers_left = layers_left
        self._seen = 0
        self._head = b""
        self._decided = False
        self._gunzip: _Gunzip | None = None
        self._inner: Inflater | None = None

    @property
    def layers(self) -> int:
        """How many gzip layers were found so far."""
        return 0 if self._inner is None else 1 + self._inner.layers

    def push(self, data: bytes) -> Iterator[bytes]:
        allowed = self._cap - self._seen
        over = len(data) > allowed
        data = data[:allowed] if over else data
        self._seen += len(data)
        yield from self._route(data)
        if over:
            raise DocumentFault(TOO_LARGE, f"document larger than {self._cap} bytes (after {self.layers} gzip layers)")

    def finish(self) -> Iterator[bytes]:
        if not self._decided:
            self._decided = True
            yield from _pieces(self._head)
        elif self._gunzip is not None and self._inner is not None:
            for out in self._gunzip.finish():
                yield from self._inner.push(out)
            yield from self._inner.finish()

    def _route(self, data: bytes) -> Iterator[bytes]:
        if not self._decided:
            self._head += data
            if len(self._head) < len(GZIP_MAGIC):
                return
            data, self._head = self._head, b""
            self._decide(data)
        if self._gunzip is None or self._inner is None:
            yield from _pieces(data)
            return
        for out in self._gunzip.inflate(data):
            yield from self._inner.push(out)

    def _decide(self, head: bytes) -> None:
        self._decided = True
        if not head.startswith(GZIP_MAGIC):
            return
        if self._layers_left == 0:
            raise DocumentFault(BAD_GZIP, f"more than {MAX_GZIP_LAYERS} gzip layers")
        self._gunzip = _Gunzip()
        self._inner = Inflater(self._cap, self._layers_left - 1)
