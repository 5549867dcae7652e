"""Runs Scrapy + scrapy-rotating-proxies against the benchmark site (inside the benchmark's own venv).

usage: scrapy_run.py <urls.json> <proxies.json> <autothrottle 0|1> <timeout_s> <out.json>
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import scrapy
from scrapy.crawler import CrawlerProcess


def main() -> None:
    urls = json.loads(Path(sys.argv[1]).read_text())
    proxies = json.loads(Path(sys.argv[2]).read_text())
    autothrottle = sys.argv[3] == "1"
    timeout = int(sys.argv[4])
    out_path = sys.argv[5]
    ok: list[str] = []
    failed: list[str] = []

    class Bench(scrapy.Spider):
        name = "bench"

        async def start(self):  # type: ignore[no-untyped-def]
            for u in urls:
                yield scrapy.Request(u, callback=self.parse, errback=self.failed, dont_filter=True)

        def parse(self, response):  # type: ignore[no-untyped-def]
            if response.status == 200:
                ok.append(response.url)

        def failed(self, failure):  # type: ignore[no-untyped-def]
            failed.append(failure.request.url)

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
        "AUTOTHROTTLE_ENABLED": autothrottle,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 4.0,
        "CLOSESPIDER_TIMEOUT": timeout,
        "TELNETCONSOLE_ENABLED": False,
    }
    started = time.time()
    process = CrawlerProcess(settings)
    process.crawl(Bench)
    process.start()
    Path(out_path).write_text(json.dumps({"ok": ok, "failed": failed, "elapsed": time.time() - started}))


if __name__ == "__main__":
    main()
