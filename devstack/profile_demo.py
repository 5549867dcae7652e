"""The profile part of `make demo`: two batches of profile checks against the loopback social site, with stories
flipped between them, showing `detected`, each item's state and the targets' history.

devstack/demo.py calls it after the page batch, with the stack's client and a started social site:

    from devstack.profile_demo import demo_site, run_profile_demo
    run_profile_demo(client, stack.enter_context(demo_site()), admin)
"""

from __future__ import annotations

import time
from typing import Any

from scrapersky_client.cli import items_table, out, summary_table, targets_table, watch
from scrapersky_client.client import Client

from devstack.social_site import SocialSite, check_spec
from devstack.stack import log

PROFILES = ("alice", "bob", "carol", "dave")
# two real profiles per story state, a profile that does not exist, one behind a login wall, one behind a captcha
TARGETS = [*PROFILES, "ghost", "private-zed", "captcha-yves"]


def demo_site() -> SocialSite:
    """The social site the demo reads (enter it to start it)."""
    return SocialSite(profiles=PROFILES)


def run_profile_demo(
    client: Client, site: SocialSite, admin: Client | None = None, check_name: str = "stories", timeout: float = 600
) -> list[dict[str, Any]]:
    """Runs the two batches and prints what a user sees; returns their final statuses."""
    spec = check_spec(site.base_url, name=check_name)
    finals = []
    for round_no, stories in enumerate((("alice", "carol"), ("alice", "bob")), start=1):
        for target in PROFILES:
            site.set_story(target, target in stories)
        finals.append(_one_batch(client, spec, round_no, stories, timeout))
    rows = list(client.targets(check_name))
    out.print(targets_table(rows, check_name))
    flips = [r["target"] for r in rows if r["checks"] >= 2 and r["active"] is not None]
    out.print(f"targets checked twice: {flips}; bob became active, carol became inactive (one event each)")
    warmups = dict(site.warmups)
    out.print(
        f"sessions opened per proxy address: {warmups}; cookies presented through another proxy: {site.crossings}"
    )
    if admin is not None:
        out.print(f"open sessions per proxy: {[(p['endpoint'], p['sessions']) for p in admin.proxies()['proxies']]}")
    out.print(f"`scrapersky targets {check_name}` shows the history; `--active true` only the active targets")
    return finals


def _one_batch(
    client: Client, spec: dict[str, Any], round_no: int, stories: tuple[str, ...], timeout: float
) -> dict[str, Any]:
    started = time.monotonic()
    created = client.submit(TARGETS, kind="profile", options={"check": spec, "max_attempts": 2})
    log(f"profile batch {round_no} {created['batch_id']}: {len(TARGETS)} targets, stories on {list(stories)}")
    final = watch(client, created["batch_id"], timeout=timeout)
    out.print(summary_table(final))
    out.print(f"detected (state present): {final.get('detected')}")
    items = list(client.items(created["batch_id"]))
    out.print(items_table(items))
    for i in items:
        result = i["result"] or {}
        state = result.get("state") or (i["error"] or {}).get("code")
        out.print(f"  {i['item']:14} {state:20} via {result.get('proxy_id') or '-'}")
    out.print(f"profile batch {round_no} finished in {time.monotonic() - started:.1f}s")
    return final
