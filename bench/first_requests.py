"""First-request benchmark (not a test): a fresh local stack (`make local`'s devstack.stack), then, as a new user
would right after "ready", the first call each function serves, timed from the client's side.

    python -m bench.first_requests            # table + a JSON last line

Order: GET /tenant (authorizer + batches function), GET /batches (status), GET /proxies (admin key: the
authorizer again, admin), POST /scrape of a loopback page (scrape, through a real proxy), then one page batch of
one item created and waited for (batches, fan-out, worker: the time from the create to its end). The stack's own
"ready in" figure is printed by the stack; the goal is that each call answers within 3 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from scrapersky_client.client import Client

from devstack.proxies import start_proxies
from devstack.site import Site
from devstack.stack import LocalStack, log


def timed(label: str, call: Callable[[], Any], rows: dict[str, float]) -> Any:
    started = time.monotonic()
    result = call()
    rows[label] = round(time.monotonic() - started, 3)
    log(f"{label}: {rows[label]:.2f}s")
    return result


def first_batch(client: Client, url: str) -> dict[str, Any]:
    created = client.submit([url])
    return client.wait(created["batch_id"], timeout=300)


def main() -> None:
    rows: dict[str, float] = {}
    with LocalStack() as local, Site() as site:
        started = time.monotonic()
        proxies = start_proxies(1)
        try:
            admin = Client(local.api_url, local.admin_key)
            client = Client(local.api_url, local.api_key)
            timed("GET /tenant", client.tenant, rows)
            timed("GET /batches", client.batches, rows)
            timed("GET /proxies (admin)", admin.proxies, rows)
            admin.add_proxy(proxies[0].url)
            timed("POST /scrape", lambda: client.scrape(f"{site.base_url}/page/1"), rows)
            final = timed("page batch created and ended", lambda: first_batch(client, f"{site.base_url}/page/2"), rows)
            log(f"batch status {final['status']}; all of the above in {time.monotonic() - started:.1f}s")
        finally:
            for p in proxies:
                p.stop()
    print(f"{'first call after ready':<34}{'s':>8}")
    for label, seconds in rows.items():
        print(f"{label:<34}{seconds:>8.2f}")
    print(json.dumps({"max_s": max(rows.values()), "calls": rows}))


if __name__ == "__main__":
    main()
