"""Scheduled upkeep: quarantined proxies are re-checked with exponential backoff and jitter, then returned."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from scrapersky.models import ProxyState
from scrapersky.records import ProxyRecord
from scrapersky.services import sweeper
from scrapersky.services.admin import proxy_view
from scrapersky.services.context import Deps

BASE_S = 30.0
CAP_S = 3600.0


def check_quarantined(
    deps: Deps,
    probe: Callable[[str], bool] | None = None,
    rng: random.Random | None = None,
    proxies: list[ProxyRecord] | None = None,
) -> dict[str, Any]:
    """`probe` defaults to the fetcher's own check of a proxy (the one the worker uses before use)."""
    probe = probe or deps.fetcher.probe
    rng = rng or random.Random()
    now = deps.clock.now()
    restored, still = [], []
    for p in deps.pool.list_all(now) if proxies is None else proxies:
        if p.state is not ProxyState.QUARANTINED or p.next_check_at > now:
            continue
        if probe(p.url):
            deps.pool.restore(p.proxy_id, now)
            restored.append(p.proxy_id)
        else:
            checks = p.checks + 1
            wait = rng.uniform(0, min(CAP_S, BASE_S * 2**checks))
            deps.pool.keep_quarantined(p.proxy_id, now, checks, now + wait)
            still.append(p.proxy_id)
    return {"restored": restored, "still_quarantined": still}


def run(deps: Deps) -> dict[str, Any]:
    """The scheduled upkeep: quarantined proxies re-checked, what a crash left stuck swept, and the pool's gauges
    (proxies available, cooling, quarantined) for the dashboard."""
    now = deps.clock.now()
    proxies = deps.pool.list_all(now)  # one read of the pool (a scan: admin-side, every 5 minutes)
    report = check_quarantined(deps, proxies=proxies)
    report["sweeps"] = sweeper.sweep(deps)
    report["expired_sessions"] = sum(  # profile sessions past their end (the table's TTL is slower)
        deps.sessions.sweep(p.proxy_id, now) for p in proxies
    )
    restored = set(report["restored"])  # available again as of this run
    states = ["available" if p.proxy_id in restored else proxy_view(p, now)["state"] for p in proxies]
    report["proxies"] = {state: states.count(state) for state in ("available", "cooling", "quarantined")}
    return report
