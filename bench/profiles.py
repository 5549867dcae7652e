"""Benchmark (not a test): a batch of profile checks through paced proxies with sessions, on the local stack.

    python -m bench.profiles --targets 1000          # part of `make bench`

A loopback social site (devstack/paced_social_site.py) lets each of P proxies make R requests/s (token bucket,
burst 1, every request counted: warm-ups too; over budget 429 + Retry-After); its profiles need a session opened
through the same proxy; a share of them have a story (the site knows which). One batch of N targets, from scratch
(nothing configured for the host, nothing learnt before) unless `--known-rate`. Prints: checks per second against
the proxies' capacity (P x R), requests the site refused per check, sessions opened per proxy, targets recorded
`absent` (or `present`) wrongly. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import time
from collections import Counter
from typing import Any

from scrapersky_client import ApiError, Client

from bench.rate_limits import emf_sum, warm_up
from devstack.paced_social_site import PacedSocialSite
from devstack.proxies import ProxyServer, free_port, start_proxies
from devstack.social_site import check_spec
from devstack.stack import LocalStack, log

HOST = "localhost"  # the site's base_url names it, so each proxy connects from its own address


def fresh_pool(admin: Client, proxies: list[ProxyServer], known_rate: float | None) -> dict[str, str]:
    """Only these proxies in the pool, nothing known of the host (or its limit configured); source ip -> proxy id."""
    for p in admin.proxies()["proxies"]:
        admin.delete_proxy(p["proxy_id"])
    with contextlib.suppress(ApiError):  # 404: nothing known of the host yet
        admin.forget_host(HOST)
    if known_rate:
        admin.configure_host(HOST, rate=known_rate)
    return {p.source_ip: admin.add_proxy(p.url, {"source": p.source_ip})["proxy_id"] for p in proxies}


def warm_profiles(stack: LocalStack, workers: int) -> None:
    """The profile kind's code imported in every worker process before the measured run (its own fast site and
    proxies, deleted afterwards): a service that is already running."""
    admin, client = Client(stack.api_url, stack.admin_key), Client(stack.api_url, stack.api_key)
    proxies = start_proxies(2)
    try:
        targets = tuple(f"warm{i}" for i in range(workers * 20))
        with PacedSocialSite(profiles=targets, rate=1000.0, burst=1000.0) as site:
            fresh_pool(admin, proxies, None)
            spec = check_spec(site.base_url, name=f"warm-{secrets.token_hex(3)}")
            created = client.submit(list(targets), kind="profile", options={"check": spec})
            client.wait(created["batch_id"], timeout=300, interval=0.5)
    finally:
        for p in proxies:
            p.stop()


def truth_of(targets: list[str], share: float, seed: int) -> set[str]:
    """The targets that have a story (the site's truth)."""
    rng = random.Random(seed)
    return {t for t in targets if rng.random() < share}


def wrong_records(client: Client, check: str, targets: list[str], stories: set[str]) -> dict[str, Any]:
    """What the targets' history says against what the site knows."""
    recorded = {t["target"]: t for t in client.targets(check)}
    states = Counter(str((recorded.get(t) or {}).get("last_state")) for t in targets)
    absent_wrongly = sorted(t for t in stories if (recorded.get(t) or {}).get("last_state") == "absent")
    present_wrongly = sorted(
        t for t in set(targets) - stories if (recorded.get(t) or {}).get("last_state") == "present"
    )
    return {
        "recorded_states": dict(states),
        "absent_wrongly": len(absent_wrongly),
        "present_wrongly": len(present_wrongly),
        "wrong_examples": (absent_wrongly + present_wrongly)[:10],
        "not_recorded": sum(1 for t in targets if t not in recorded),
    }


def run(stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    admin, client = Client(stack.api_url, stack.admin_key), Client(stack.api_url, stack.api_key)
    targets = [f"user{i:05d}" for i in range(args.targets)]
    stories = truth_of(targets, args.stories, args.seed)
    capacity = args.proxies * args.rate
    proxies = start_proxies(args.proxies)
    try:
        with PacedSocialSite(profiles=tuple(targets), rate=args.rate, free_warmups=args.free_warmups) as site:
            for t in stories:
                site.set_story(t, True)
            ids = fresh_pool(admin, proxies, args.known_rate)
            spec = check_spec(site.base_url, name=f"bench-{secrets.token_hex(3)}", max_uses=args.max_uses)
            log(f"profiles: {len(targets)} targets ({len(stories)} with a story), {args.proxies} proxies")
            since, started = int(time.time() * 1000), time.time()
            created = client.submit(targets, kind="profile", options={"check": spec, "max_attempts": 3})
            final = wait_or_cancel(client, created["batch_id"], args.timeout)
            elapsed = time.time() - started
            figures = site_figures(site, ids, final, elapsed, capacity)
            figures.update(wrong_records(client, spec["name"], targets, stories))
            shown = admin.proxies()["proxies"]
            figures["open_sessions_per_proxy"] = {p["proxy_id"]: p["sessions"] for p in shown}
            figures["learnt_pace"] = {p["proxy_id"]: p.get("pace") for p in shown}
    finally:
        for p in proxies:
            p.stop()
    time.sleep(3)  # the last EMF lines reach the log store
    emf = emf_sum(stack, ("AwsApiCalls", "ItemsDeferred", "MessagesHandled"), since)
    figures.update(
        targets=args.targets,
        with_story=len(stories),
        proxies=args.proxies,
        rate=args.rate,
        capacity_checks_per_s=capacity,
        configured_rate=args.known_rate,
        warmups_counted=not args.free_warmups,
        deferrals=int(emf["ItemsDeferred"]),
        deliveries_per_item=round(emf["MessagesHandled"] / args.targets, 2),
        aws_calls_per_item=round(emf["AwsApiCalls"] / args.targets, 1),
    )
    return figures


def wait_or_cancel(client: Client, batch_id: str, timeout: float) -> dict[str, Any]:
    try:
        return client.wait(batch_id, timeout=timeout, interval=0.2)
    except TimeoutError:
        client.cancel(batch_id)
        return client.status(batch_id)


def site_figures(
    site: PacedSocialSite, ids: dict[str, str], final: dict[str, Any], elapsed: float, capacity: float
) -> dict[str, Any]:
    """Checks = items that ended with a state the site gave (present, absent or not_found)."""
    checks = final["succeeded"]
    refused = sum(site.refused.values())
    return {
        "status": final["status"],
        "checks": checks,
        "failed": final["failed"],
        "errors_by_code": final.get("errors", {}).get("by_code", {}),
        "detected": final.get("detected"),
        "elapsed_s": round(elapsed, 1),
        "checks_per_s": round(checks / elapsed, 2),
        "checks_vs_capacity": round(checks / elapsed / capacity, 3),
        "site_window_s": round(site.last_served - site.first_request, 1),
        "refused": refused,
        "refused_per_check": round(refused / max(1, checks), 3),
        "rate_limited_per_proxy": {ids.get(c, c): n for c, n in site.rate_limited.items()},
        "sessions_opened_per_proxy": {ids.get(c, c): n for c, n in site.warmups.items()},
        "profile_pages_per_proxy": {ids.get(c, c): n for c, n in site.served.items()},
        "profile_pages_per_check": round(sum(site.checked.values()) / max(1, checks), 3),
        "cookie_crossings": site.crossings,
    }


def report(f: dict[str, Any]) -> None:
    goal = lambda ok: "ok" if ok else "MISSED"  # noqa: E731
    print(f"\n### profile checks: {f['targets']} targets, {f['proxies']} proxies x {f['rate']:g}/s, sessions\n")
    print(f"status {f['status']}: {f['checks']} checks, {f['failed']} failed {f['errors_by_code']}, {f['elapsed_s']} s")
    ratio, refused = f["checks_vs_capacity"], f["refused_per_check"]
    print(f"checks per second: {f['checks_per_s']} = {ratio} of capacity {f['capacity_checks_per_s']:g}/s "
          f"(goal >= 0.90: {goal(ratio >= 0.90)})")  # fmt: skip
    print(f"requests refused per check: {refused} ({f['refused']} refused; goal <= 0.05: {goal(refused <= 0.05)})")
    opened, still = f["sessions_opened_per_proxy"], f["open_sessions_per_proxy"]
    print(f"sessions opened per proxy: {opened} (open at the end: {still})")
    wrong = f["absent_wrongly"]
    print(f"targets recorded absent wrongly: {wrong} (goal 0: {goal(wrong == 0)}); present wrongly: "
          f"{f['present_wrongly']}; cookies across proxies: {f['cookie_crossings']}")  # fmt: skip
    print(json.dumps(f, sort_keys=True), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--proxies", type=int, default=5)
    ap.add_argument("--rate", type=float, default=2.0, help="requests/s the site allows each proxy")
    ap.add_argument("--stories", type=float, default=0.2, help="share of the targets with a story")
    ap.add_argument("--max-uses", type=int, default=50, help="checks per session (options.check.session.max_uses)")
    ap.add_argument("--known-rate", type=float, default=None, help="configure the host's rate first (PUT /hosts)")
    ap.add_argument("--free-warmups", action="store_true", help="the site neither counts nor refuses warm-ups")
    ap.add_argument("--workers", type=int, default=4, help="the worker's MaximumConcurrency on the local stack")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with LocalStack(api_port=free_port(), worker_concurrency=args.workers) as stack:
        warm_up(stack, args.workers)
        warm_profiles(stack, args.workers)
        figures = run(stack, args)
    report(figures)


if __name__ == "__main__":
    main()
