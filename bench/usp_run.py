"""Runs ultimate-sitemap-parser (GPL-3.0; only in the benchmark's own venv, never in the layer) on a site's root,
its requests round-robin over the benchmark's proxies. Writes the URLs it found, one a line, and its figures.

usage: usp_run.py <root_url> <proxies.json> <urls.txt> <out.json>
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

from usp.tree import sitemap_tree_for_homepage
from usp.web_client.requests_client import RequestsWebClient


class RotatingClient(RequestsWebClient):
    """usp takes one proxy per scheme: this client sets the next one before each request."""

    def __init__(self, proxies: list[str]) -> None:
        super().__init__()
        self.cycle = itertools.cycle(proxies)
        self.requests = 0

    def get(self, url: str):  # type: ignore[no-untyped-def]
        proxy = next(self.cycle)
        self.set_proxies({"http": proxy, "https": proxy})
        self.requests += 1
        return super().get(url)


def status_kb(field: str) -> int:
    """VmRSS now, or VmHWM: this process's peak RSS (ru_maxrss would count the parent's, from before the exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    root, proxies = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    idle = status_kb("VmRSS")
    client = RotatingClient(proxies)
    started = time.time()
    tree = sitemap_tree_for_homepage(root, web_client=client)
    urls = [page.url for page in tree.all_pages()]
    elapsed = time.time() - started
    Path(sys.argv[3]).write_text("\n".join(urls) + "\n")
    peak = status_kb("VmHWM")
    figures = {"elapsed_s": elapsed, "urls_listed": len(urls), "requests": client.requests, "idle_kb": idle}
    Path(sys.argv[4]).write_text(json.dumps({**figures, "peak_kb": peak}))


if __name__ == "__main__":
    main()
