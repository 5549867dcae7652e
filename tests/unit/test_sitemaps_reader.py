"""The streaming sitemap reader: document types, gzip by magic bytes, the byte cap, hostile and broken XML."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import pytest
from scrapersky.sitemaps import ATOM, INDEX, RSS, TEXT, URLSET, Entry, SitemapReader
from scrapersky.sitemaps.faults import (
    BAD_GZIP,
    MALFORMED_XML,
    NOT_SITEMAP,
    TOO_LARGE,
    XML_DTD_FORBIDDEN,
)
from scrapersky.sitemaps.inflate import MAX_DOCUMENT_BYTES

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
MiB = 1 << 20


def urlset(urls: list[str], ns: str = NS) -> bytes:
    body = "".join(f"<url><loc>{url}</loc></url>" for url in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {ns}>{body}</urlset>'.encode()


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read(data: bytes, url: str = "https://example.com/sitemap.xml", size: int = 65_536) -> tuple[list[Entry], object]:
    reader = SitemapReader(url)
    entries = list(reader.read(chunks(data, size)))
    return entries, reader.result()


def urls_of(entries: list[Entry]) -> list[str]:
    return [entry.url for entry in entries]


@pytest.mark.parametrize("size", [1, 7, 65_536])
def test_a_urlset_yields_each_loc_trimmed_and_entity_decoded_whatever_the_chunk_size(size):
    doc = (
        f"<urlset {NS} xmlns:image='http://www.google.com/schemas/sitemap-image/1.1'"
        " xmlns:xhtml='http://www.w3.org/1999/xhtml'>"
        "<url><loc>\n  https://example.com/a?x=1&amp;y=2  \n</loc><lastmod>2024-05-06</lastmod>"
        "<changefreq> Weekly </changefreq><priority>0.8</priority>"
        "<image:image><image:loc>https://example.com/a.png</image:loc></image:image>"
        "<xhtml:link rel='alternate' hreflang='de' href='https://example.com/de/a'/></url>"
        "<url><loc>ftp://example.com/file</loc></url><url><loc>mailto:me@example.com</loc></url>"
        "<url><loc>https://example.com/b</loc><priority>1.5</priority><changefreq>often</changefreq></url>"
        "</urlset>"
    ).encode()
    entries, result = read(doc, size=size)
    assert entries == [
        Entry("https://example.com/a?x=1&y=2", "2024-05-06", "weekly", 0.8),
        Entry("https://example.com/b", None, None, None),
    ]
    assert result.type == URLSET and result.ok and result.entries == 2


def test_an_index_yields_its_child_sitemaps():
    doc = (
        f"<sitemapindex {NS}><sitemap><loc>https://example.com/s1.xml.gz</loc><lastmod>2024-01-02T03:04:05Z</lastmod>"
        "</sitemap><sitemap><loc>https://example.com/s2.xml</loc></sitemap></sitemapindex>"
    ).encode()
    entries, result = read(doc)
    assert entries == [
        Entry("https://example.com/s1.xml.gz", "2024-01-02T03:04:05+00:00"),
        Entry("https://example.com/s2.xml"),
    ]
    assert result.type == INDEX and result.ok


def test_a_document_without_the_sitemap_namespace_reads_the_same():
    entries, result = read(urlset(["https://example.com/1", "https://example.com/2"], ns=""))
    assert urls_of(entries) == ["https://example.com/1", "https://example.com/2"] and result.type == URLSET


def test_a_prefixed_sitemap_namespace_reads_the_same():
    doc = b'<sm:urlset xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9"><sm:url><sm:loc>https://example.com/p</sm:loc></sm:url></sm:urlset>'
    entries, result = read(doc)
    assert urls_of(entries) == ["https://example.com/p"] and result.ok


def test_gzip_is_recognised_by_its_magic_bytes_behind_an_xml_name():
    entries, result = read(gzip.compress(urlset(["https://example.com/z"])), url="https://example.com/sitemap.xml")
    assert urls_of(entries) == ["https://example.com/z"] and result.ok


def test_a_plain_document_behind_a_gz_name_is_read_as_it_is():
    entries, result = read(urlset(["https://example.com/plain"]), url="https://example.com/sitemap.xml.gz")
    assert urls_of(entries) == ["https://example.com/plain"] and result.ok


def test_nested_gzip_layers_and_multi_member_gzip_are_peeled():
    twice = gzip.compress(gzip.compress(urlset(["https://example.com/twice"])))
    assert urls_of(read(twice, size=3)[0]) == ["https://example.com/twice"]
    doc = urlset(["https://example.com/m1", "https://example.com/m2"])
    members = gzip.compress(doc[:50]) + gzip.compress(doc[50:])
    entries, result = read(members, size=11)
    assert urls_of(entries) == ["https://example.com/m1", "https://example.com/m2"] and result.ok


def test_corrupt_or_cut_gzip_fails_with_bad_gzip_keeping_what_parsed():
    packed = gzip.compress(urlset([f"https://example.com/{i}" for i in range(2000)]))
    entries, result = read(packed[: len(packed) // 2], size=1024)
    assert result.failure.code == BAD_GZIP and 0 < len(entries) < 2000
    assert urls_of(entries) == [f"https://example.com/{i}" for i in range(len(entries))]
    _, corrupt = read(packed[:10] + b"\x00" * 50 + packed[60:])
    assert corrupt.failure.code == BAD_GZIP


def spaces_bomb(urls: list[str], gib: int = 1) -> bytes:
    """A gzip stream of a urlset whose URLs are followed by `gib` GiB of blanks: the same full-flushed deflate
    block (1 MiB of blanks) repeated, so it is built without ever holding or compressing the 1 GiB."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = z.compress(urlset(urls)[: -len(b"</urlset>")]) + z.flush(zlib.Z_FULL_FLUSH)
    block = z.compress(b" " * MiB) + z.flush(zlib.Z_FULL_FLUSH)
    return head + block * (1024 * gib) + z.compress(b"</urlset>") + z.flush()


def test_a_gzip_bomb_stops_at_the_cap_with_too_large_keeping_the_urls_before_the_cut():
    urls = [f"https://example.com/u{i}" for i in range(100)]
    bomb = spaces_bomb(urls)
    assert len(bomb) < 1.1 * MiB  # about a thousandth of the 1 GiB it expands to
    entries, result = read(bomb)
    assert urls_of(entries) == urls
    assert result.failure.code == TOO_LARGE and str(MAX_DOCUMENT_BYTES) in result.failure.message


def test_a_50_kb_double_gzip_bomb_of_1_gib_stops_at_the_cap():
    bomb = gzip.compress(spaces_bomb(["https://example.com/only"]))
    assert len(bomb) < 50_000
    entries, result = read(bomb)
    assert urls_of(entries) == ["https://example.com/only"] and result.failure.code == TOO_LARGE


def test_a_plain_document_past_the_cap_is_too_large():
    reader = SitemapReader("https://example.com/s.xml", max_bytes=3000)
    entries = list(reader.read(chunks(urlset([f"https://example.com/{i}" for i in range(100)]), 64)))
    assert 0 < len(entries) < 100 and reader.result().failure.code == TOO_LARGE


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<urlset><url><loc>https://example.com/&lol3;</loc></url></urlset>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<urlset><url><loc>https://example.com/&xxe;</loc></url></urlset>"""
PUBLIC_DTD = b'<!DOCTYPE urlset SYSTEM "http://example.com/evil.dtd"><urlset></urlset>'


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY, PUBLIC_DTD], ids=["laughs", "xxe", "dtd"])
def test_a_dtd_or_entity_document_is_refused_never_expanded(doc):
    entries, result = read(doc, size=16)
    assert entries == [] and result.failure.code == XML_DTD_FORBIDDEN and result.type == URLSET


def test_an_undeclared_entity_is_malformed():
    entries, result = read(urlset(["https://example.com/&nbsp;x", "https://example.com/ok"]))
    assert entries == [] and result.failure.code == MALFORMED_XML


def test_truncated_xml_keeps_the_urls_parsed_before_the_fault():
    doc = urlset([f"https://example.com/t{i}" for i in range(10)])
    entries, result = read(doc[: doc.index(b"/t7")], size=5)
    assert urls_of(entries) == [f"https://example.com/t{i}" for i in range(7)]
    assert result.failure.code == MALFORMED_XML and result.type == URLSET


def test_mismatched_tags_keep_what_parsed_before():
    doc = f"<urlset {NS}><url><loc>https://example.com/1</loc></url><url><loc>x</url></urlset>".encode()
    entries, result = read(doc)
    assert urls_of(entries) == ["https://example.com/1"] and result.failure.code == MALFORMED_XML


def test_a_text_sitemap_has_one_url_per_line_and_ignores_the_rest():
    doc = b"\xef\xbb\xbfhttps://example.com/t1\r\n\n  https://example.com/t2  \nnot a url\nftp://x/y\n" + (
        b"https://example.com/" + b"x" * 100_000 + b"\nhttps://example.com/t3"
    )
    entries, result = read(doc, size=1000)
    assert urls_of(entries) == ["https://example.com/t1", "https://example.com/t2", "https://example.com/t3"]
    assert result.type == TEXT and result.ok


def test_rss_items_links_are_urls_and_the_channel_link_is_not():
    doc = b"""<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
    <title>News</title><link>https://example.com/</link>
    <atom:link href="https://example.com/feed.xml" rel="self" type="application/rss+xml"/>
    <item><title>One</title><link>https://example.com/news/1</link><pubDate>Mon, 06 Sep 2021 16:45:00 +0000</pubDate>
    </item><item><link> https://example.com/news/2 </link><atom:link href="https://example.com/x"/></item>
    </channel></rss>"""
    entries, result = read(doc)
    assert entries == [
        Entry("https://example.com/news/1", "2021-09-06T16:45:00+00:00"),
        Entry("https://example.com/news/2"),
    ]
    assert result.type == RSS and result.ok


def test_atom_entries_alternate_links_are_urls_and_the_feed_links_are_not():
    doc = b"""<feed xmlns="http://www.w3.org/2005/Atom"><link href="https://example.com/"/>
    <link rel="self" href="https://example.com/atom.xml"/>
    <entry><link rel="edit" href="https://example.com/e1/edit"/><link rel="alternate" href="/posts/1"/>
    <updated>2024-03-04T05:06:07+01:00</updated></entry>
    <entry><link href="https://example.com/posts/2"/><link href="https://example.com/posts/2-again"/></entry>
    <entry><link rel="enclosure" href="https://example.com/a.mp3"/></entry></feed>"""
    entries, result = read(doc, url="https://example.com/blog/atom.xml")
    assert entries == [
        Entry("https://example.com/posts/1", "2024-03-04T05:06:07+01:00"),
        Entry("https://example.com/posts/2"),
    ]
    assert result.type == ATOM and result.ok


@pytest.mark.parametrize(
    "doc",
    [
        b"<!DOCTYPE html><html><head><title>Home</title></head><body></body></html>",
        b"\n\n<!doctype html>\n<html lang=en><body><p>Not found</p>",
        b"<html><body>soft 404</body></html>",
        b'<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x.dtd"><html/>',
        b"<?xml version='1.0'?><error><code>NoSuchKey</code></error>",
        b"",
        b"  \n ",
    ],
)
def test_html_an_empty_body_or_another_xml_root_is_not_a_sitemap(doc):
    entries, result = read(doc)
    assert entries == [] and result.type is None and result.failure.code == NOT_SITEMAP


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("2024", "2024"),
        ("2024-05", "2024-05"),
        ("2024-05-06", "2024-05-06"),
        ("2024-05-06T07:08Z", "2024-05-06T07:08:00+00:00"),
        ("2024-05-06T07:08:09+02:00", "2024-05-06T07:08:09+02:00"),
        ("2024-05-06T07:08:09.5-05:00", "2024-05-06T07:08:09.500000-05:00"),
        (" 2024-05-06 07:08:09+0000 ", "2024-05-06T07:08:09+00:00"),
        ("2024-13", None),
        ("2024-02-30", None),
        ("yesterday", None),
        ("2024-W05", None),
        ("", None),
    ],
)
def test_lastmod_forms(written, normalised):
    doc = f"<urlset {NS}><url><loc>https://example.com/x</loc><lastmod>{written}</lastmod></url></urlset>".encode()
    assert read(doc)[0] == [Entry("https://example.com/x", normalised)]  # the URL is kept either way


@pytest.mark.parametrize("opening", [b'<url a="', b"<!-- "], ids=["attribute", "comment"])
def test_one_huge_tag_or_comment_is_too_large_before_expat_holds_it_whole(opening):
    def chunks() -> Iterator[bytes]:
        yield urlset(["https://example.com/before"])[: -len(b"</urlset>")] + opening
        yield from (b"x" * 65_536 for _ in range(160))  # 10 MiB without a single SAX event

    reader = SitemapReader("https://example.com/sitemap.xml")
    assert urls_of(list(reader.read(chunks()))) == ["https://example.com/before"]
    assert reader.result().failure.code == TOO_LARGE
