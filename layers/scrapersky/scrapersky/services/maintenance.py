"""Scheduled upkeep: quarantined proxies are re-checked with exponential backoff and jitter, then returned."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from scrapersky.services.context import Deps

BASE_S = 30.0
CAP_S = 3600.0


def check_quarantined(
    deps: Deps, probe: Callable[[str], bool] | None = None, rng: random.Random | None = None
) -> dict[str, Any]:
    """`probe` defaults to the fetcher's own check of a proxy (the one the worker uses before use)."""
    probe = probe or deps.fetcher.probe
    rng = rng or random.Random()
    now = deps.clock.now()
    restored, still = [], []
    for p in deps.pool.list_all():
        if p.get("state") != "quarantined" or float(p.get("next_check_at", 0)) > now:
            continue
        if probe(p["url"]):
            deps.pool.set_state(p["proxy_id"], "available", now, {"consecutive_errors": 0, "checks": 0})
            restored.append(p["proxy_id"])
        else:
            checks = int(p.get("checks", 0)) + 1
            wait = rng.uniform(0, min(CAP_S, BASE_S * 2**checks))
            deps.pool.set_state(p["proxy_id"], "quarantined", now, {"checks": checks, "next_check_at": now + wait})
            still.append(p["proxy_id"])
    return {"restored": restored, "still_quarantined": still}
