"""Sitemap discovery: robots.txt `Sitemap:` lines, the follow-robots rule, Crawl-delay, and the probes."""

from __future__ import annotations

import pytest
from scrapersky.sitemaps import RobotsFile, SitemapReader, holds_sitemap, probe_urls, robots_url, site_root

ROBOTS = "https://example.com/robots.txt"


def test_a_bom_does_not_hide_the_first_sitemap_line():
    robots = RobotsFile.parse(ROBOTS, b"\xef\xbb\xbfSitemap: https://example.com/first.xml\nUser-agent: *\nDisallow:\n")
    assert robots.sitemaps == ("https://example.com/first.xml",)


def test_relative_duplicate_and_any_case_sitemap_lines_resolve_once_in_order():
    body = (
        b"User-agent: *\nDisallow: /private\n"
        b"sitemap: /sitemaps/a.xml\n"
        b"SITEMAP: https://example.com/sitemaps/a.xml\n"
        b"Sitemap: sitemaps/b.xml.gz   # a comment\n"
        b"SiteMap: https://cdn.example.net/c.xml\n"
        b"Sitemap: /sitemaps/a.xml\n"
        b"Sitemap: mailto:webmaster@example.com\n"
        b"Sitemap:\n"
    )
    robots = RobotsFile.parse(ROBOTS, body)
    assert robots.sitemaps == (
        "https://example.com/sitemaps/a.xml",
        "https://example.com/sitemaps/b.xml.gz",
        "https://cdn.example.net/c.xml",
    )


def test_allowed_follows_the_group_of_the_user_agent_and_crawl_delay_is_its_own():
    body = (
        b"User-agent: *\nDisallow: /private/\nAllow: /private/open\nCrawl-delay: 2.5\n\n"
        b"User-agent: ScraperSky\nDisallow: /no-bots\nCrawl-delay: 7\n\n"
        b"User-agent: Other\nCrawl-delay: soon\n"
    )
    robots = RobotsFile.parse(ROBOTS, body)
    assert not robots.allowed("https://example.com/private/x", "SomeBot/1.0")
    assert robots.allowed("https://example.com/private/open", "SomeBot/1.0")
    assert robots.allowed("https://example.com/private/x", "ScraperSky/1.0")
    assert not robots.allowed("https://example.com/no-bots", "ScraperSky/1.0")
    assert robots.crawl_delay("SomeBot") == 2.5 and robots.crawl_delay("ScraperSky") == 7.0
    assert robots.crawl_delay("Other") is None


@pytest.mark.parametrize(
    ("status", "allowed"), [(404, True), (410, True), (401, True), (500, False), (503, False), (None, False)]
)
def test_a_missing_robots_txt_allows_everything_and_an_unreachable_one_nothing(status, allowed):
    robots = RobotsFile.from_response(ROBOTS, status, b"User-agent: *\nDisallow: /\nSitemap: /s.xml")
    assert robots.sitemaps == () and robots.crawl_delay("x") is None
    assert robots.allowed("https://example.com/page", "ScraperSky") is allowed


def test_a_site_item_is_discovered_and_any_other_path_is_a_document():
    assert site_root("https://example.com") == "https://example.com/"
    assert site_root("https://example.com:8443/") == "https://example.com:8443/"
    assert site_root("https://example.com/sitemap.xml") is None
    assert site_root("https://example.com/?page=2") is None
    assert robots_url("https://example.com:8443/") == "https://example.com:8443/robots.txt"
    assert probe_urls("https://example.com/") == (
        "https://example.com/sitemap.xml",
        "https://example.com/sitemap_index.xml",
    )


def _probe(status: int | None, body: bytes) -> bool:
    reader = SitemapReader("https://example.com/sitemap.xml")
    list(reader.read([body]))
    return holds_sitemap(status, reader.result())


@pytest.mark.parametrize(
    ("status", "body", "holds"),
    [
        (200, b"<urlset><url><loc>https://example.com/a</loc></url></urlset>", True),
        (200, b"<sitemapindex></sitemapindex>", True),  # an empty index is still a sitemap
        (200, b"<urlset><url><loc>https://example.com/a</loc>", True),  # a broken sitemap fails as a document
        (200, b"<!DOCTYPE urlset [<!ENTITY a 'b'>]><urlset/>", True),  # refused, but a sitemap's document
        (200, b"https://example.com/a\n", True),
        (200, b"<!DOCTYPE html><html><body>Welcome</body></html>", False),  # HTML at /sitemap.xml
        (200, b"Page not found", False),  # text with no URL line
        (200, b"", False),
        (200, b"<error>no</error>", False),
        (404, b"<urlset></urlset>", False),
        (500, b"", False),
        (None, b"", False),
    ],
)
def test_probes_that_hold_no_sitemap_are_told_apart(status, body, holds):
    assert _probe(status, body) is holds
