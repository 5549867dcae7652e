"""The reader's memory stays bounded whatever the document's size: a 50 MB document fed in 64 KB chunks (made on
the fly, never held whole) raises traced memory by a small fraction of the 150 MB the issue allows."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

from scrapersky.sitemaps import SitemapReader

from tests.unit.test_sitemaps_reader import spaces_bomb

DOCUMENT_BYTES = 50_000_000
CHUNK = 65_536
HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    b'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">\n'
)


def _entry(n: int, padding: int) -> bytes:
    caption = b"c" * padding
    return (
        b"<url><loc>https://example.com/products/%d</loc><lastmod>2024-05-06T07:08:09+00:00</lastmod>"
        b"<image:image><image:loc>https://example.com/img/%d.jpg</image:loc>"
        b"<image:caption>%s</image:caption></image:image></url>\n" % (n, n, caption)
    )


def document(padding: int) -> tuple[Iterator[bytes], int]:
    """A urlset of about DOCUMENT_BYTES, as 64 KB chunks, and how many URLs it lists."""
    size = len(_entry(0, padding)) + 4
    count = (DOCUMENT_BYTES - len(HEAD)) // size

    def chunks() -> Iterator[bytes]:
        buffer = io.BytesIO()
        buffer.write(HEAD)
        for n in range(count):
            buffer.write(_entry(n, padding))
            if buffer.tell() >= CHUNK:
                data = buffer.getvalue()
                yield data[:CHUNK]
                buffer = io.BytesIO()
                buffer.write(data[CHUNK:])
        buffer.write(b"</urlset>\n")
        yield buffer.getvalue()

    return chunks(), count


def peak_above_start(chunks: Iterator[bytes]) -> tuple[int, int, int]:
    """(URLs read, bytes fed, peak traced bytes above the start) for one document read to its end."""
    fed = 0

    def counted() -> Iterator[bytes]:
        nonlocal fed
        for chunk in chunks:
            fed += len(chunk)
            yield chunk

    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        reader = SitemapReader("https://example.com/sitemap.xml")
        urls = sum(1 for _ in reader.read(counted()))
        return urls, fed, tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def test_a_50_mb_urlset_read_in_64_kb_chunks_stays_far_under_150_mb():
    chunks, count = document(padding=850)  # about 1 KB per URL: the protocol's 50,000 URLs in 50 MB
    urls, fed, peak = peak_above_start(chunks)
    print(f"\n50 MB urlset ({urls} URLs, {fed} bytes): peak traced memory {peak / 1e6:.1f} MB above the start")
    assert urls == count and fed > 50_000_000
    assert peak < 15_000_000  # a tenth of the allowance


def test_a_gzip_bomb_inflated_to_the_cap_stays_bounded_too():
    bomb = spaces_bomb(["https://example.com/only"])  # 1 GiB of blanks behind one URL, about 1 MB of gzip
    urls, fed, peak = peak_above_start(bomb[i : i + CHUNK] for i in range(0, len(bomb), CHUNK))
    print(f"\ngzip bomb of {fed} bytes (1 GiB inflated): peak traced {peak / 1e6:.1f} MB above the start")
    assert urls == 1 and peak < 15_000_000
