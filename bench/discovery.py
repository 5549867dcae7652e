"""Discovery benchmark (not a test): a loopback site publishing N URLs (1,000,000 = 20 gzip urlsets of 50,000 behind
an index, named by robots.txt), reached through 4 proxies that the site paces per address (token bucket, 429 +
Retry-After). In the same run: a ScraperSky sitemap batch on the local stack (item = the site's root), then
ultimate-sitemap-parser and Scrapy's SitemapSpider (in .venv-bench) on the same site through the same proxies.

    python -m bench.discovery                       # make bench; --urls 50000 for a short run, --skip-peers

Prints per system: wall time, URLs/s, documents/s, requests and 429s the site saw, peak memory (ScraperSky: RSS of
its busiest worker process above its idle size; peers: their own process's), the URL sets' sizes and symmetric
differences; then the memory goal: one worker reading one 50 MB urlset. The last line is one JSON object with every
figure."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

from scrapersky_client import Client

from bench.worker_memory import WorkerMemory
from devstack.discovery_site import DiscoverySite, big_document, expected_urls
from devstack.proxies import ProxyServer, free_port, start_proxies
from devstack.stack import ROOT, LocalStack, log

OUT = ROOT / "bench" / "out" / "discovery"
CACHE = ROOT / ".cache" / "bench-discovery"
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
MEMORY_GOAL_MB = 150.0


def site_figures(site: DiscoverySite, wall_s: float, urls: int) -> dict[str, Any]:
    docs = site.served.documents("/s")  # /sitemap_index.xml and /sitemaps/*
    return {
        "wall_s": round(wall_s, 2),
        "urls": urls,
        "urls_per_s": round(urls / wall_s) if wall_s else None,
        "documents": docs,
        "documents_per_s": round(docs / wall_s, 2) if wall_s else None,
        "requests": sum(site.served.by_client.values()),
        "rejected_429": site.served.rejected,
        "proxies_used": len(site.served.by_client),
    }


def errors_of(result: dict[str, Any]) -> dict[str, int]:
    """The failed documents' error codes, counted (the first message of each kept, for the log)."""
    codes: dict[str, int] = {}
    for doc in result.get("sitemaps") or []:
        if doc.get("error"):
            code = doc["error"]["code"]
            if code not in codes:
                log(f"document {doc['url']}: {code}: {doc['error'].get('message')}")
            codes[code] = codes.get(code, 0) + 1
    return codes


class Bench:
    def __init__(self, stack: LocalStack, site: DiscoverySite, proxies: list[ProxyServer], timeout: float) -> None:
        self.stack, self.site, self.proxies, self.timeout = stack, site, proxies, timeout
        self.client = Client(stack.api_url, stack.api_key)

    def workers(self) -> list[int]:
        return self.stack.handler_pids("WorkerFunction")

    def warm_up(self, processes: int) -> None:
        """Warm worker processes (their imports done), as in a service already running: small documents read
        side by side, one item each."""
        items = [f"{self.site.base_url}/warm/{n}.xml" for n in range(2 * processes)]
        created = self.client.submit(items, kind="sitemap")
        self.client.wait(created["batch_id"], timeout=self.timeout, interval=0.5)
        log(f"warm: {len(self.workers())} worker processes")

    def sitemap_batch(
        self, item: str, max_urls: int, timeout_s: float
    ) -> tuple[dict[str, Any], dict[str, Any], float, dict[str, Any]]:
        """One sitemap item, start to end: (its status, its item's result, wall seconds, worker memory)."""
        self.site.reset()
        with WorkerMemory(self.workers) as memory:
            started = time.time()
            options = {"timeout_s": timeout_s, "sitemap": {"max_urls": max_urls}}
            created = self.client.submit([item], kind="sitemap", options=options)
            final = self.client.wait(created["batch_id"], timeout=self.timeout, interval=0.25)
            wall = time.time() - started
        [record] = list(self.client.items(created["batch_id"]))
        return final, record.get("result") or {}, wall, memory.figures()

    def scrapersky(self, urls: int, timeout_s: float) -> tuple[dict[str, Any], set[str]]:
        final, result, wall, memory = self.sitemap_batch(f"{self.site.base_url}/", urls, timeout_s)
        figures = site_figures(self.site, wall, result.get("urls_found", 0))
        listed = time.time()
        found = {u["url"] for u in self.client.urls(final["batch_id"])}
        figures.update(
            status=final["status"],
            documents_ok=result.get("documents_ok"),
            documents_failed=result.get("documents_failed"),
            truncated=result.get("truncated"),
            document_errors=errors_of(result),
            listing_s=round(time.time() - listed, 1),
            **memory,
        )
        return figures, found

    def memory_goal(self, timeout_s: float) -> dict[str, Any]:
        """One worker reading one 50 MB urlset to its end (inflated, parsed, each entry counted; its URLs are on
        another host, so none is stored): its RSS above its idle size."""
        size, count = big_document(self.site.docs)
        final, result, wall, memory = self.sitemap_batch(f"{self.site.base_url}/big/urlset.xml.gz", count, timeout_s)
        peak = memory["worker_peak_above_idle_mb"]
        return {
            "document_mb": round(size / 1e6, 1),
            "document_urls": count,
            "status": final["status"],
            "urls_found": result.get("urls_found"),
            "skipped_foreign": result.get("skipped_foreign"),
            "documents_ok": result.get("documents_ok"),
            "document_errors": errors_of(result),
            "wall_s": round(wall, 1),
            **memory,
            "goal_mb": MEMORY_GOAL_MB,
            "goal_met": peak is not None and peak <= MEMORY_GOAL_MB,
        }

    def peer(self, name: str, script: str, target: str) -> tuple[dict[str, Any], set[str]]:
        self.site.reset()
        OUT.mkdir(parents=True, exist_ok=True)
        plist, urls_file, out = OUT / "proxies.json", OUT / f"{name}.urls.txt", OUT / f"{name}.json"
        plist.write_text(json.dumps([p.url for p in self.proxies]))
        argv = [str(BENCH_PY), str(ROOT / "bench" / script), target, str(plist)]
        argv += [str(int(self.timeout))] if name == "scrapy" else []
        started = time.time()
        with (OUT / f"{name}.log").open("w") as log_file:
            subprocess.run(
                [*argv, str(urls_file), str(out)],
                check=True,
                timeout=self.timeout + 60,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        outer = time.time() - started
        inner = json.loads(out.read_text())
        found = {u for u in urls_file.read_text().split("\n") if u}
        figures = site_figures(self.site, inner["elapsed_s"], len(found))
        figures.update(
            process_s=round(outer, 2),
            urls_listed=inner["urls_listed"],
            peak_above_idle_mb=round((inner["peak_kb"] - inner["idle_kb"]) * 1024 / 1e6, 1),
            peak_mb=round(inner["peak_kb"] * 1024 / 1e6, 1),
        )
        return figures, found


def compare(sets: dict[str, set[str]], expected: set[str]) -> dict[str, Any]:
    """Sizes, and symmetric differences with what the site publishes and with ScraperSky's set."""
    ours = sets.get("ScraperSky", set())
    return {
        name: {
            "size": len(s),
            "sym_diff_vs_published": len(s ^ expected),
            "sym_diff_vs_scrapersky": len(s ^ ours) if name != "ScraperSky" else 0,
        }
        for name, s in sets.items()
    }


def table(rows: dict[str, dict[str, Any]]) -> str:
    cols = ("wall_s", "urls", "urls_per_s", "documents", "documents_per_s", "requests", "rejected_429", "peak_mb")
    lines = [f"| system | {' | '.join(cols)} | peak memory above idle (MB) |", "|---" * (len(cols) + 2) + "|"]
    for name, r in rows.items():
        peak = r.get("worker_peak_above_idle_mb", r.get("peak_above_idle_mb"))
        cells = [str(r.get(c, r.get("worker_peak_mb", "-") if c == "peak_mb" else "-")) for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {peak} |")
    return "\n".join(lines)


def run(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    site = bench.site
    rows: dict[str, dict[str, Any]] = {}
    sets: dict[str, set[str]] = {}
    # first, while the warm workers have read only small documents: their idle size holds no heap a big run left
    memory = None if args.skip_memory else bench.memory_goal(args.doc_timeout)
    log("running ScraperSky")
    rows["ScraperSky"], sets["ScraperSky"] = bench.scrapersky(args.urls, args.doc_timeout)
    if not args.skip_peers:
        log("running ultimate-sitemap-parser")
        rows["ultimate-sitemap-parser"], sets["ultimate-sitemap-parser"] = bench.peer(
            "usp", "usp_run.py", f"{site.base_url}/"
        )
        log("running Scrapy SitemapSpider")
        rows["Scrapy SitemapSpider"], sets["Scrapy SitemapSpider"] = bench.peer(
            "scrapy", "scrapy_sitemap_run.py", f"{site.base_url}/robots.txt"
        )
    return {"systems": rows, "url_sets": compare(sets, expected_urls(site.base_url, args.urls)), "memory_goal": memory}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=1_000_000)
    ap.add_argument("--per-doc", type=int, default=50_000, help="URLs per urlset")
    ap.add_argument("--proxies", type=int, default=4)
    ap.add_argument("--rate", type=float, default=2.0, help="requests/s the site allows each proxy (burst 2)")
    ap.add_argument("--workers", type=int, default=4, help="the worker's MaximumConcurrency on the local stack")
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--doc-timeout", type=float, default=60.0, help="the batch's options.timeout_s (max 60)")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--skip-memory", action="store_true", help="skip the 50 MB document")
    args = ap.parse_args()
    site = DiscoverySite(args.urls, args.per_doc, CACHE, args.rate)
    parts = math.ceil(args.urls / args.per_doc)
    log(f"site {site.base_url}: {args.urls} URLs in {parts} urlsets (generated or read in {site.generate_s:.1f} s)")
    proxies = start_proxies(args.proxies)
    try:
        with site, LocalStack(api_port=free_port(), worker_concurrency=args.workers) as stack:
            admin = Client(stack.api_url, stack.admin_key)
            for p in proxies:
                admin.add_proxy(p.url, {"source": p.source_ip})
            admin.configure_host("localhost", rate=args.rate, max_rate=args.rate)  # the site's pace, as known
            bench = Bench(stack, site, proxies, args.timeout)
            bench.warm_up(args.workers)
            report = run(bench, args)
    finally:
        for p in proxies:
            p.stop()
    report.update(
        urls_published=args.urls,
        urlsets=math.ceil(args.urls / args.per_doc),
        proxies=args.proxies,
        rate_per_proxy=args.rate,
    )
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\n### Discovery: {report['urls_published']} URLs in {report['urlsets']} gzip urlsets behind an index, "
        f"{report['proxies']} proxies paced at {report['rate_per_proxy']:g} req/s each\n"
    )
    print(table(report["systems"]))
    print("\nURL sets (size, symmetric difference with the published set and with ScraperSky's):")
    for name, c in report["url_sets"].items():
        print(
            f"  {name:26} {c['size']:>9}  vs published {c['sym_diff_vs_published']:>7}  "
            f"vs ScraperSky {c['sym_diff_vs_scrapersky']:>7}"
        )
    m = report["memory_goal"]
    if m:
        print(
            f"\nMemory goal: one worker reading one {m['document_mb']} MB urlset ({m['document_urls']} URLs, "
            f"{m['skipped_foreign']} counted, {m['wall_s']} s): peak RSS {m['worker_peak_above_idle_mb']} MB above its "
            f"idle {m['worker_idle_mb']} MB (goal <= {m['goal_mb']:g} MB: {'met' if m['goal_met'] else 'NOT met'})"
        )
    Path(OUT).mkdir(parents=True, exist_ok=True)
    (OUT / "discovery.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
