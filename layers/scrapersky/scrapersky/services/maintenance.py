"""Scheduled upkeep: quarantined proxies are re-checked with exponential backoff and jitter, then returned."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from scrapersky.services.context import Deps

BASE_S = 30.0
CAP_S = 3600.0


def tcp_check(url: str, timeout: float = 3.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def check_quarantined(
    deps: Deps, probe: Callable[[str], bool] = tcp_check, rng: random.Random | None = None
) -> dict[str, Any]:
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
