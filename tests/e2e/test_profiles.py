"""Profile checks on the local stack against the loopback social site, as a client sees them: sessions bound to
the proxy they were opened through, blocks that are never taken as absent, and each target's history with exactly
one event per flip."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import pytest

from devstack.social_site import SocialSite, check_spec
from devstack.stack import aws_client
from tests.e2e.conftest import dump

WAIT_S = 300  # a bound for a busy machine: every wait returns once its condition holds

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def social() -> Iterator[SocialSite]:
    with SocialSite(profiles=("alice", "bob", "carol", "dave", "erin", "frank")) as s:
        yield s


def sources(admin) -> dict[str, str]:
    """proxy id -> the loopback address it connects from (the site's view of it)."""
    return {p["proxy_id"]: p["labels"]["source"] for p in admin.proxies()["proxies"]}


def run(client, items: list[str], check: dict, **options) -> tuple[dict, dict[str, dict]]:
    created = client.submit(items, kind="profile", options={"check": check, **options})
    final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
    return final, {i["item"]: i for i in client.items(created["batch_id"])}


def test_checks_end_right_through_sessions_bound_to_proxies_and_blocks_are_never_absent(client, admin, proxies, social):
    check = check_spec(social.base_url, name=f"stories-{secrets.token_hex(3)}", max_uses=3)
    social.set_story("alice", True)
    ips = list(sources(admin).values())
    social.limit(ips[0], 2)  # this proxy is rate limited: a deferral, no attempt
    social.refuse(ips[1], 1)  # this one is told "401 please wait": a block, retried elsewhere
    items = ["alice", "bob", "carol", "dave", "ghost", "private-zed", "captcha-yves"]

    final, got = run(client, items, check, max_attempts=3)

    assert final["status"] == "partial" and final["detected"] == 1, dump(final)
    states = {
        t: (i["status"], (i["result"] or {}).get("state"), (i["error"] or {}).get("code")) for t, i in got.items()
    }
    assert states == {
        "alice": ("succeeded", "present", None),
        "bob": ("succeeded", "absent", None),
        "carol": ("succeeded", "absent", None),
        "dave": ("succeeded", "absent", None),
        "ghost": ("succeeded", "not_found", None),
        "private-zed": ("failed", None, "login_required"),
        "captcha-yves": ("failed", None, "page_guard_missing"),
    }, dump(got)  # each block fails with its own code on its last attempt (never proxy_error: see http_deadline)
    assert social.crossings == 0  # no cookie was ever presented through another proxy
    assert "story-ring" in got["alice"]["result"]["evidence"]
    assert set(got["alice"]["result"]) == {"state", "status_code", "final_url", "evidence", "proxy_id", "checked_at"}
    listed = {t["target"]: t for t in client.targets(check["name"])}
    assert {t: r["last_state"] for t, r in listed.items() if r["active"] is not None} == {
        "alice": "present",
        "bob": "absent",
        "carol": "absent",
        "dave": "absent",
        "ghost": "not_found",
    }
    blocked = listed["captcha-yves"]
    assert (blocked["active"], blocked["last_state"], blocked["checks"]) == (None, None, 1)  # never absent
    assert blocked["last_error"]["code"] == states["captcha-yves"][2]
    # the blocked checks retired the sessions they used; a check that succeeds leaves its proxy's session open
    final, _ = run(client, ["bob"], check)
    shown = admin.proxies()["proxies"]
    assert all(isinstance(p["sessions"], int) for p in shown) and sum(p["sessions"] for p in shown) >= 1
    assert "sid" not in json.dumps(shown) and social.crossings == 0


def _events(stack, check: str) -> list[tuple[str, str | None, str]]:
    """The target events the local stack's functions logged for this check (emit_target_event), in order: read
    from CloudWatch Logs (/aws/lambda/<function>), where the stack's Lambda output goes as on AWS."""
    logs = aws_client("logs", stack.endpoint)
    found = []
    for group in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]:
        kwargs = {"logGroupName": group["logGroupName"]}
        while True:
            page = logs.filter_log_events(**kwargs)
            for e in page.get("events", []):
                found.extend(_event(e["message"], e["timestamp"], check))
            if not page.get("nextToken") or page["nextToken"] == kwargs.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    return [e for _at, e in sorted(found)]


def _event(message: str, timestamp: int, check: str) -> list[tuple[float, tuple[str, str | None, str]]]:
    start = message.find("{")
    if "target_event" not in message or start < 0:
        return []
    try:
        event = json.loads(message[start:]).get("target_event") or {}
    except ValueError:
        return []
    if event.get("check") != check:
        return []
    return [(event["at"], (event["event"], event["previous_state"], event["state"]))]


def test_stories_flipped_between_batches_give_the_history_and_exactly_one_event_per_flip(
    stack, client, proxies, social
):
    check = check_spec(social.base_url, name=f"flips-{secrets.token_hex(3)}")
    for on in (False, True, True, False):
        social.set_story("erin", on)
        final, got = run(client, ["erin", "frank"], check)
        assert final["status"] == "completed", dump(final)
        assert got["erin"]["result"]["state"] == ("present" if on else "absent")

    erin = client.target(check["name"], "erin")
    assert (erin["checks"], erin["detections"], erin["active"], erin["active_since"]) == (4, 2, False, None)
    assert erin["last_detected_at"] is not None and erin["consecutive_errors"] == 0
    frank = client.target(check["name"], "frank")
    assert (frank["checks"], frank["detections"], frank["active"]) == (4, 0, False)
    end = time.monotonic() + 30  # a function's log line reaches the stack's log a little after its answer
    while len(_events(stack, check["name"])) < 2 and time.monotonic() < end:
        time.sleep(0.5)
    assert _events(stack, check["name"]) == [
        ("target.became_active", "absent", "present"),
        ("target.became_inactive", "present", "absent"),
    ]


def test_another_tenants_check_is_a_404(client, stack, social):
    from scrapersky_client import ApiError

    with pytest.raises(ApiError) as e:
        client.target("never-used-check", "alice")
    assert e.value.status == 404


def test_the_profile_demo_runs_two_batches_and_the_cli_shows_the_targets(stack, client, admin, proxies, capsys):
    from scrapersky_client import cli

    from devstack.profile_demo import demo_site, run_profile_demo

    name = f"demo-{secrets.token_hex(3)}"
    with demo_site() as site:
        finals = run_profile_demo(client, site, admin, check_name=name, timeout=WAIT_S)

    assert [(f["status"], f["detected"]) for f in finals] == [("partial", 2), ("partial", 2)], dump(finals)
    assert site.crossings == 0
    bob, carol = client.target(name, "bob"), client.target(name, "carol")
    assert (bob["active"], carol["active"], bob["checks"], carol["detections"]) == (True, False, 2, 1)
    zed = client.target(name, "private-zed")  # always redirected to the login page: never absent, never proxy_error
    assert (zed["active"], zed["checks"], zed["last_error"]["code"]) == (None, 2, "login_required")
    capsys.readouterr()
    assert cli.main(["--url", stack.api_url, "--key", stack.api_key, "targets", name, "--active", "true"]) == 0
    shown = capsys.readouterr().out
    assert "alice" in shown and "bob" in shown and "carol" not in shown
