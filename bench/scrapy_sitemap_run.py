"""Runs Scrapy's SitemapSpider (with scrapy-rotating-proxies over the benchmark's proxies, as bench/scrapy_run.py) on
a site's robots.txt, inside the benchmark's own venv. It records each urlset's locs instead of requesting them (a
discovery run, not a crawl): `sitemap_filter` passes an index's entries on and keeps a urlset's.

usage: scrapy_sitemap_run.py <robots_url> <proxies.json> <timeout_s> <urls.txt> <out.json>
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from scrapy.crawler import CrawlerProcess
from scrapy.spiders import SitemapSpider


def status_kb(field: str) -> int:
    """VmRSS now, or VmHWM: this process's peak RSS (ru_maxrss would count the parent's, from before the exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    robots, proxies, timeout = sys.argv[1], json.loads(Path(sys.argv[2]).read_text()), int(sys.argv[3])
    found: list[str] = []
    sitemaps: list[str] = []

    class Discovery(SitemapSpider):
        name = "discovery"
        sitemap_urls = [robots]

        def sitemap_filter(self, entries):  # type: ignore[no-untyped-def]
            sitemaps.append(getattr(entries, "type", "?"))
            if getattr(entries, "type", None) == "urlset":
                found.extend(e["loc"] for e in entries if e.get("loc"))
                return
            yield from entries

    settings = {
        "LOG_LEVEL": "ERROR",
        "ROBOTSTXT_OBEY": False,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "ROTATING_PROXY_LIST": proxies,
        "DOWNLOADER_MIDDLEWARES": {
            "rotating_proxies.middlewares.RotatingProxyMiddleware": 610,
            "rotating_proxies.middlewares.BanDetectionMiddleware": 620,
        },
        "RETRY_HTTP_CODES": [429, 500, 502, 503, 504, 522, 524, 408],
        "CLOSESPIDER_TIMEOUT": timeout,
        "TELNETCONSOLE_ENABLED": False,
    }
    idle = status_kb("VmRSS")
    started = time.time()
    process = CrawlerProcess(settings)
    process.crawl(Discovery)
    process.start()
    elapsed = time.time() - started
    Path(sys.argv[4]).write_text("\n".join(found) + "\n")
    peak = status_kb("VmHWM")
    figures = {"elapsed_s": elapsed, "urls_listed": len(found), "documents_parsed": len(sitemaps), "idle_kb": idle}
    Path(sys.argv[5]).write_text(json.dumps({**figures, "peak_kb": peak}))


if __name__ == "__main__":
    main()
