"""Benchmark (not a test): ScraperSky vs Scrapy + scrapy-rotating-proxies on one loopback site that
rate-limits each proxy (token bucket, 429 + Retry-After), plain and escalating, in the same run.

    make bench-rate        # or: python -m bench.rate_limits --proxies 4 --rate 2 --pages 200

Prints, per system: goodput / (P x R), rejected requests per page fetched, pages lost, elapsed; for
ScraperSky also AWS API calls per item and lease conflicts per lease. Writes a PNG per site behaviour.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

from scrapersky_client import ApiError, Client

from bench.process_watch import ProcessWatch
from devstack.proxies import ProxyServer, free_port, start_proxies
from devstack.site import Site
from devstack.stack import ROOT, LocalStack, aws_client, log

OUT = ROOT / "bench" / "out"
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
SERIES = ("times", "admissions")  # per-request series: written to the series file, not printed


def site_figures(site: Site, started: float, finished: float, pages: int, capacity: float) -> dict[str, Any]:
    """What the site saw. Elapsed runs until the system itself finished (done, or gave up on what it lost)."""
    times = sorted(t - started for t in site.stats.ok_times)
    fetched = len(site.stats.first_ok)
    elapsed = finished - started
    return {
        "fetched": fetched,
        "lost": pages - fetched,
        "rejected": site.stats.rejected,
        "rejected_per_page": round(site.stats.rejected / max(1, fetched), 3),
        "elapsed_s": round(elapsed, 1),
        "goodput": round(fetched / elapsed / capacity, 3),
        "times": times,
        "rejections": [(round(t - started, 2), c) for t, c in site.stats.rejections],
        "idle": idle_slots(site, started, finished),
        "admissions": [(round(t - started, 3), c) for t, c in site.stats.admissions],
    }


def idle_slots(site: Site, started: float, finished: float) -> dict[str, float]:
    """Where proxy capacity went unused, in proxy-seconds: before each proxy's first admitted request, in
    gaps between its requests longer than the site's interval, and after its last one until the end."""
    interval = 1.0 / site.limiter.rate
    by_client: dict[str, list[float]] = {}
    for t, c in site.stats.admissions:
        by_client.setdefault(c, []).append(t)
    head = mid = tail = 0.0
    for ts in by_client.values():
        ts.sort()
        head += ts[0] - started
        mid += sum(max(0.0, b - a - interval) for a, b in itertools.pairwise(ts))
        tail += max(0.0, finished - ts[-1] - interval)
    return {"head_s": round(head, 2), "gaps_s": round(mid, 2), "tail_s": round(tail, 2)}


def emf_sum(
    stack: LocalStack, names: tuple[str, ...], since_ms: int, trouble: list[str] | None = None
) -> dict[str, float]:
    """Sums EMF metrics over every log group since `since_ms`; lines that tell of trouble (errors, timeouts)
    are collected into `trouble`, with their time in seconds since `since_ms`."""
    logs = aws_client("logs", stack.endpoint)
    totals = dict.fromkeys(names, 0.0)
    for group in logs.describe_log_groups()["logGroups"]:
        kwargs: dict[str, Any] = {"logGroupName": group["logGroupName"], "startTime": since_ms}
        while True:
            page = logs.filter_log_events(**kwargs)
            for ev in page["events"]:
                msg = ev["message"].strip()
                if trouble is not None and any(
                    w in msg for w in ('"ERROR"', '"WARNING"', "Task timed out", "Traceback")
                ):
                    trouble.append(f"{(ev['timestamp'] - since_ms) / 1000:.2f}s {group['logGroupName']}: {msg[:300]}")
                if not msg.startswith('{"_aws"'):
                    continue
                doc = json.loads(msg)
                for n in names:
                    v = doc.get(n)
                    totals[n] += sum(v) if isinstance(v, list) else (v or 0)
            if not page.get("nextToken") or page["nextToken"] == kwargs.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    return totals


def warm_up(stack: LocalStack, workers: int) -> None:
    """Cold starts out of the way, as in a service that is already running: every worker and fan-out
    process imports its code before the measured runs. Batches submitted back to back make the fan-out
    and the workers run side by side, so each function has as many warm processes as it may use at once
    (one warm fan-out process and a second, cold one, stalled a measured run for 4 s). Uses its own
    proxies and site, deleted afterwards."""
    admin, client = Client(stack.api_url, stack.admin_key), Client(stack.api_url, stack.api_key)
    proxies = start_proxies(2)
    try:
        with Site(rate=1000.0, burst=1000.0) as site:
            ids = [admin.add_proxy(p.url)["proxy_id"] for p in proxies]
            created = [
                client.submit([f"{site.base_url}/page/warm{b}-{i}" for i in range(workers * 30)]) for b in range(3)
            ]
            for c in created:
                client.wait(c["batch_id"], timeout=300, interval=0.5)
            for pid in ids:
                admin.delete_proxy(pid)
    finally:
        for p in proxies:
            p.stop()


def run_scrapersky(
    stack: LocalStack,
    site: Site,
    proxies: list[ProxyServer],
    pages: int | list[str],
    capacity: float,
    timeout: float,
    known_rate: float | None = None,
) -> dict[str, Any]:
    """From scratch (nothing learnt from the previous run, nothing configured), or with the site's limit per
    address configured for the host (`known_rate`), as an operator who knows it would."""
    admin = Client(stack.api_url, stack.admin_key)
    for p in admin.proxies()["proxies"]:
        admin.delete_proxy(p["proxy_id"])  # the previous run's proxies are gone
    with contextlib.suppress(ApiError):  # 404: nothing known of the host yet
        admin.forget_host("localhost")
    if known_rate:
        admin.configure_host("localhost", rate=known_rate)
    for p in proxies:
        admin.add_proxy(p.url)
    client = Client(stack.api_url, stack.api_key)
    urls = pages if isinstance(pages, list) else [f"{site.base_url}/limited/{i}" for i in range(pages)]
    pages = len(urls)
    watch = ProcessWatch(stack).start()
    since = int(time.time() * 1000)
    started = time.time()
    created = client.submit(urls, options={"max_attempts": 3})
    try:
        final = client.wait(created["batch_id"], timeout=timeout, interval=0.2)
    except TimeoutError:
        client.cancel(created["batch_id"])
        final = client.status(created["batch_id"])
    figures = site_figures(site, started, time.time(), pages, capacity)
    figures["processes_online"] = watch.stop(started)
    time.sleep(3)  # let the last EMF lines reach the log store
    trouble: list[str] = []
    emf = emf_sum(
        stack,
        ("AwsApiCalls", "LeaseConflicts", "Leases", "MessagesHandled", "ItemsSucceeded", "ItemsDeferred"),
        since,
        trouble,
    )
    paces = {p["endpoint"]: p["pace"] for p in admin.proxies()["proxies"]}
    per_proxy = dict(site.stats.by_client)
    figures.update(
        status=final["status"],
        failed_items=final["failed"],
        failed_rate_limit=sum(v for k, v in final["errors"]["by_code"].items() if k in ("http_429", "http_503")),
        aws_calls_per_item=round(emf["AwsApiCalls"] / pages, 1),
        conflicts_per_lease=round(emf["LeaseConflicts"] / max(1.0, emf["Leases"]), 3),
        learnt_pace=paces,
        admitted_per_proxy=per_proxy,
        deliveries_per_item=round(emf["MessagesHandled"] / pages, 2),
        first_admitted_s=round(min(t for t, _ in figures["admissions"]), 2) if figures["admissions"] else None,
        deferrals=int(emf["ItemsDeferred"]),
        log_trouble=sorted(trouble)[:20],
    )
    return figures


COLD = "ScraperSky, cold stack"


def run_cold(args: argparse.Namespace, escalate: bool, capacity: float) -> dict[str, Any]:
    """A user's first batch on a stack just started (`make local`, no warm-up), on the site of issue 10: burst 2,
    `--cold-pages` pages and `--cold-missing` that the site does not have (404s, counted by its limiter too)."""
    proxies = start_proxies(args.proxies)
    try:
        with (
            Site(rate=args.rate, burst=args.cold_burst, escalate=escalate, think_s=args.think) as site,
            LocalStack(api_port=free_port(), worker_concurrency=args.workers) as stack,
        ):
            urls = [f"{site.base_url}/limited/{i}" for i in range(args.cold_pages)]
            urls += [f"{site.base_url}/limited/missing-{i}" for i in range(args.cold_missing)]
            return run_scrapersky(stack, site, proxies, urls, capacity, args.timeout)
    finally:
        for p in proxies:
            p.stop()


def run_scrapy(
    site: Site, proxies: list[ProxyServer], pages: int, capacity: float, autothrottle: bool, timeout: float
) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    urls, plist, result = OUT / "urls.json", OUT / "proxies.json", OUT / "scrapy.json"
    urls.write_text(json.dumps([f"{site.base_url}/limited/{i}" for i in range(pages)]))
    plist.write_text(json.dumps([p.url for p in proxies]))
    started = time.time()
    log_file = (OUT / "scrapy.log").open("a")
    subprocess.run(
        [
            str(BENCH_PY),
            str(ROOT / "bench" / "scrapy_run.py"),
            str(urls),
            str(plist),
            "1" if autothrottle else "0",
            str(int(timeout)),
            str(result),
        ],
        check=True,
        timeout=timeout + 60,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    return site_figures(site, started, time.time(), pages, capacity)


def table(rows: dict[str, dict[str, Any]]) -> str:
    cols = ("goodput", "rejected_per_page", "lost", "elapsed_s", "aws_calls_per_item", "conflicts_per_lease")
    lines = [f"| system | {' | '.join(cols)} |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(str(r.get(c, "-")) for c in cols) + " |")
    return "\n".join(lines)


def systems_for(stack: LocalStack, args: argparse.Namespace, capacity: float) -> list[tuple[str, Callable[..., Any]]]:
    systems: list[tuple[str, Callable[[Site, list[ProxyServer]], dict[str, Any]]]] = [
        ("ScraperSky", lambda site, px: run_scrapersky(stack, site, px, args.pages, capacity, args.timeout)),
        (
            "ScraperSky, limit configured",
            lambda site, px: run_scrapersky(stack, site, px, args.pages, capacity, args.timeout, args.rate),
        ),
    ]
    if not args.skip_scrapy:
        systems += [
            (
                "Scrapy+rotating" + ("+AutoThrottle" if at else ""),
                lambda site, px, at=at: run_scrapy(site, px, args.pages, capacity, at, args.timeout),
            )
            for at in (False, True)
        ]
    return [(n, r) for n, r in systems if args.only in n]


def run_warm(stack: LocalStack, args: argparse.Namespace, behaviour: str, capacity: float) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for name, run in systems_for(stack, args, capacity):
        proxies = start_proxies(args.proxies)
        try:
            with Site(rate=args.rate, burst=1.0, escalate=behaviour == "escalating", think_s=args.think) as site:
                log(f"{behaviour}: running {name}")
                rows[name] = run(site, proxies)
        finally:
            for p in proxies:
                p.stop()
        log(f"{behaviour}: {name}: " + json.dumps({k: v for k, v in rows[name].items() if k not in SERIES})[:3000])
    return rows


def report_site(args: argparse.Namespace, behaviour: str, rows: dict[str, dict[str, Any]]) -> None:
    capacity = args.proxies * args.rate
    series = {
        "pages": args.pages,
        "capacity_per_s": capacity,
        "systems": {n: {k: r[k] for k in SERIES} for n, r in rows.items()},
    }
    (OUT / f"series-{behaviour}.json").write_text(json.dumps(series))
    png = OUT / f"rate_limits_{behaviour}.png"
    subprocess.run(
        [
            str(BENCH_PY),
            str(ROOT / "bench" / "plot.py"),
            str(OUT / f"series-{behaviour}.json"),
            str(png),
            f"{args.pages} pages, {args.proxies} proxies x {args.rate:g}/s, {behaviour} site",
        ],
        check=True,
    )
    print(
        f"\n### {behaviour} site: P={args.proxies}, R={args.rate:g}/s, N={args.pages} (capacity {capacity:g} pages/s)"
    )
    print(f"({COLD}: the first batch after the stack started, N={args.cold_pages}+{args.cold_missing} missing,")
    print(f"burst {args.cold_burst:g})\n")
    print(table(rows), flush=True)
    print(f"\nplot: {png}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxies", type=int, default=4)
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--behaviours", default="plain,escalating")
    ap.add_argument("--skip-scrapy", action="store_true")
    ap.add_argument("--only", default="", help="run only the systems whose name contains this")
    ap.add_argument("--think", type=float, default=0.0, help="seconds the site takes to answer an admitted page")
    ap.add_argument("--workers", type=int, default=4, help="the worker's MaximumConcurrency on the local stack")
    ap.add_argument("--cold-pages", type=int, default=120, help="pages of the cold stack's first batch")
    ap.add_argument("--cold-missing", type=int, default=3, help="pages the site does not have, in that batch")
    ap.add_argument("--cold-burst", type=float, default=2.0, help="the site's burst in the cold row")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    capacity = args.proxies * args.rate
    OUT.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"proxies": args.proxies, "rate": args.rate, "pages": args.pages, "runs": {}}
    behaviours = args.behaviours.split(",")
    rows: dict[str, dict[str, Any]] = {b: {} for b in behaviours}
    for behaviour in behaviours if args.only in COLD else ():  # each on a stack of its own, before any other
        log(f"{behaviour}: running {COLD}")
        rows[behaviour][COLD] = run_cold(args, behaviour == "escalating", capacity)
        log(f"{behaviour}: {COLD}: " + json.dumps({k: v for k, v in rows[behaviour][COLD].items() if k not in SERIES}))
    if any(args.only in n for n in ("ScraperSky", "ScraperSky, limit configured", "Scrapy+rotating+AutoThrottle")):
        with LocalStack(api_port=free_port(), worker_concurrency=args.workers) as stack:
            warm_up(stack, args.workers)
            for behaviour in behaviours:
                rows[behaviour].update(run_warm(stack, args, behaviour, capacity))
    for behaviour in behaviours:
        report["runs"][behaviour] = {
            n: {k: v for k, v in r.items() if k not in SERIES} for n, r in rows[behaviour].items()
        }
        report_site(args, behaviour, rows[behaviour])
    (OUT / "rate_limits.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
