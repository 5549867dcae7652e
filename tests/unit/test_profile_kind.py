"""The profile kind on the fakes: a batch of checks created, fanned out and worked through sessions bound to
proxies, with each target's history changed once per finished item."""

from __future__ import annotations

from typing import Any

import pytest
from scrapersky.checks import CheckFetch, CheckState
from scrapersky.errors import InvalidInput, NotFound
from scrapersky.models import CreateBatchRequest, ItemStatus, ScrapeRequest
from scrapersky.profile_ports import Jar, TargetKey
from scrapersky.services import admin, batches, fanout, maintenance, targets, worker

from tests.fakes import FakeDeps, make_deps
from tests.fakes.profiles import CheckCall, cookie

TENANT = "t_acme"
SITE = "https://social.test"
CHECK: dict[str, Any] = {
    "name": "stories",
    "url": SITE + "/{target}/",
    "marker": {"css": ".story-ring"},
    "page_guard": {"css": "#profile"},
    "login_url_prefix": SITE + "/login",
    "session": {"warmup_url": SITE + "/", "max_uses": 2, "max_age_s": 600},
}
PROFILE = '<div id="profile">{}</div>'


class Site:
    """A social site on the fake fetcher: the warm-up sets a cookie naming the proxy it came through; a profile
    asked with another proxy's cookie (or none) gets a challenge page without the guard."""

    def __init__(self, deps: FakeDeps) -> None:
        self.stories: set[str] = set()
        self.blocked: dict[str, int] = {}  # proxy url -> status it is refused with
        deps.check_fetcher.script(SITE + "/", self._warmup)
        self.deps = deps

    def _warmup(self, call: CheckCall) -> tuple[CheckFetch, Jar]:
        return CheckFetch(200, call.url, body="home"), (cookie("sid", call.proxy_url, "social.test"),)

    def profile(self, target: str, status: int = 200) -> None:
        self.deps.check_fetcher.script(f"{SITE}/{target}/", lambda call: self._profile(call, target, status))

    def _profile(self, call: CheckCall, target: str, status: int) -> tuple[CheckFetch, Jar]:
        if call.proxy_url in self.blocked:
            return CheckFetch(self.blocked[call.proxy_url], call.url), call.cookies
        if status != 200:
            return CheckFetch(status, call.url), call.cookies
        if [c.value for c in call.cookies] != [call.proxy_url]:
            return CheckFetch(200, call.url, body="<p>are you human?</p>"), call.cookies
        ring = '<span class="story-ring"></span>' if target in self.stories else ""
        return CheckFetch(200, call.url, body=PROFILE.format(ring)), call.cookies


def drain(deps: FakeDeps) -> None:
    """Runs the queues until empty; a message put back is delivered again once its wait is over."""
    waiting: list[tuple[float, Any]] = []
    while deps.queue.fanout or deps.queue.work or waiting:
        for m in deps.queue.pop_fanout():
            fanout.handle(deps, m)
        waiting += [(0.0, m) for m in deps.queue.pop_work()]
        if not waiting:
            continue
        waiting.sort(key=lambda w: w[0])
        wait, msg = waiting.pop(0)
        deps.clock.advance(max(0.0, wait - deps.clock.now()))
        got = worker.process(deps, msg, worker.InvocationCache())
        if got.retry_in_s is not None:
            waiting.append((deps.clock.now() + got.retry_in_s, msg))


def run_batch(deps: FakeDeps, items: list[str], check: dict[str, Any] | None = None, **options: Any) -> str:
    req = CreateBatchRequest(kind="profile", items=items, options={"check": check or CHECK, **options})
    batch_id = batches.create_batch(deps, TENANT, req)["batch_id"]
    drain(deps)
    return batch_id


def results(deps: FakeDeps, batch_id: str) -> dict[str, Any]:
    return {r.item: r for r in deps.items.items.values() if r.batch_id == batch_id}


def record(deps: FakeDeps, target: str):
    return deps.targets.records[TargetKey(TENANT, "stories", target)]


def test_checks_end_present_absent_and_not_found_with_their_results():
    deps = make_deps(proxies=1)
    site = Site(deps)
    for t in ("alice", "bob"):
        site.profile(t)
    site.profile("ghost", status=404)
    site.stories.add("alice")

    batch_id = run_batch(deps, ["alice", "bob", "ghost"])

    got = results(deps, batch_id)
    assert {t: (r.status, r.result["state"]) for t, r in got.items()} == {
        "alice": (ItemStatus.SUCCEEDED, "present"),
        "bob": (ItemStatus.SUCCEEDED, "absent"),
        "ghost": (ItemStatus.SUCCEEDED, "not_found"),
    }
    alice = got["alice"].result
    assert alice["evidence"] and "story-ring" in alice["evidence"]
    assert alice["proxy_id"] == "p_1" and alice["final_url"] == SITE + "/alice/"
    assert set(alice) == {"state", "status_code", "final_url", "evidence", "proxy_id", "checked_at"}
    assert got["bob"].result["evidence"] is None
    assert batches.get_batch(deps, TENANT, batch_id)["status"] == "completed"
    assert (record(deps, "alice").active, record(deps, "bob").active, record(deps, "ghost").active) == (
        True,
        False,
        False,
    )


def test_a_session_is_warmed_up_once_per_proxy_and_retired_after_max_uses():
    deps = make_deps(proxies=1)
    site = Site(deps)
    targets = ["a", "b", "c"]
    for t in targets:
        site.profile(t)

    run_batch(deps, targets)

    warmups = [c for c in deps.check_fetcher.calls if c.url == SITE + "/"]
    assert len(warmups) == 2  # max_uses 2: a, b on the first session, c on a second one
    assert all(c.cookies for c in deps.check_fetcher.calls if c.url != SITE + "/")


def test_cookies_never_cross_proxies():
    deps = make_deps(proxies=3)
    site = Site(deps)
    targets = [f"t{i}" for i in range(9)]
    for t in targets:
        site.profile(t)

    run_batch(deps, targets)

    for call in deps.check_fetcher.calls:
        assert all(c.value == call.proxy_url for c in call.cookies)
    assert {k.proxy_id for k in deps.sessions.opened} == {"p_1", "p_2", "p_3"}


def test_a_block_is_never_absent_it_retires_the_session_cools_the_proxy_and_retries_elsewhere():
    deps = make_deps(proxies=2)
    site = Site(deps)
    site.profile("alice")
    site.stories.add("alice")
    site.blocked["http://proxy-1.test:8080"] = 401

    batch_id = run_batch(deps, ["alice"])

    rec = results(deps, batch_id)["alice"]
    assert (rec.status, rec.result["state"], rec.result["proxy_id"]) == (ItemStatus.SUCCEEDED, "present", "p_2")
    assert not [k for k in deps.sessions.sessions if k.proxy_id == "p_1"]


def test_a_check_blocked_through_every_proxy_fails_blocked_and_the_target_keeps_no_state():
    deps = make_deps(proxies=1)
    site = Site(deps)
    site.profile("alice")
    site.blocked["http://proxy-1.test:8080"] = 403

    batch_id = run_batch(deps, ["alice"], max_attempts=1)

    rec = results(deps, batch_id)["alice"]
    assert (rec.status, rec.error.code if rec.error else None) == (ItemStatus.FAILED, "blocked")
    target = record(deps, "alice")
    assert (target.active, target.last_state, target.checks, target.consecutive_errors) == (None, None, 1, 1)
    assert target.last_error is not None and target.last_error.code == "blocked"


def test_a_challenge_page_without_the_guard_fails_page_guard_missing_not_absent():
    deps = make_deps(proxies=1)
    site = Site(deps)
    site.profile("alice")
    deps.check_fetcher.script(SITE + "/", lambda call: (CheckFetch(200, call.url), ()))  # no cookie given

    batch_id = run_batch(deps, ["alice"], max_attempts=2)

    rec = results(deps, batch_id)["alice"]
    assert (rec.status, rec.error.code if rec.error else None) == (ItemStatus.FAILED, "page_guard_missing")
    assert rec.attempts == 2


def test_stories_flipped_between_batches_fire_one_event_per_flip(monkeypatch: pytest.MonkeyPatch):
    from scrapersky.services import profile_items

    events: list[Any] = []
    monkeypatch.setattr(profile_items, "emit_target_event", lambda deps, batch, event: events.append(event))
    deps = make_deps(proxies=1)
    site = Site(deps)
    site.profile("alice")
    for on in (False, True, True, False):
        site.stories.clear()
        if on:
            site.stories.add("alice")
        run_batch(deps, ["alice"])
        deps.clock.advance(60)

    assert [(e.event.value, e.previous_state, e.state) for e in events] == [
        ("target.became_active", CheckState.ABSENT, CheckState.PRESENT),
        ("target.became_inactive", CheckState.PRESENT, CheckState.ABSENT),
    ]
    alice = record(deps, "alice")
    assert (alice.checks, alice.detections, alice.active) == (4, 2, False)


@pytest.mark.parametrize(
    "check",
    [
        {**CHECK, "url": SITE + "/profile"},  # no {target}
        {**CHECK, "marker": {"css": ".a", "regex": "b"}},  # two markers
        {**CHECK, "marker": {"regex": "(a)\\1"}},  # not linear-time
        {k: v for k, v in CHECK.items() if k != "marker"},
    ],
)
def test_an_invalid_check_is_a_422_and_nothing_is_created(check: dict[str, Any]):
    deps = make_deps(proxies=1)
    req = CreateBatchRequest(kind="profile", items=["alice"], options={"check": check})
    with pytest.raises(InvalidInput):
        batches.create_batch(deps, TENANT, req)
    assert deps.batches.batches == {}


def test_a_profile_batch_without_a_check_is_a_422():
    deps = make_deps()
    with pytest.raises(InvalidInput, match=r"options\.check is required"):
        batches.create_batch(deps, TENANT, CreateBatchRequest(kind="profile", items=["alice"]))


def test_a_blocked_proxy_cools_for_the_host_at_least_thirty_seconds():
    deps = make_deps(proxies=2)
    site = Site(deps)
    site.profile("alice")
    site.blocked["http://proxy-1.test:8080"] = 401

    run_batch(deps, ["alice"])

    blocked = [r for r in deps.pool.releases if r.lease.proxy_id == "p_1" and r.outcome.value == "failed"]
    assert blocked and blocked[0].retry_after_s is not None and blocked[0].retry_after_s >= 30
    assert deps.hosts.cooldowns[("p_1", "social.test")] >= blocked[0].at + 30


# ---- what the API shows ------------------------------------------------------------------------------------------
def test_the_batch_status_counts_detected_and_the_targets_show_their_history():
    deps = make_deps(proxies=1)
    site = Site(deps)
    for t in ("alice", "bob"):
        site.profile(t)
    site.stories.add("alice")

    batch_id = run_batch(deps, ["alice", "bob"])

    assert batches.get_batch(deps, TENANT, batch_id)["detected"] == 1
    listed = targets.list_targets(deps, TENANT, "stories", None, 10, None)
    assert [t["target"] for t in listed["targets"]] == ["alice", "bob"] and listed["next_cursor"] is None
    active = targets.list_targets(deps, TENANT, "stories", True, 10, None)["targets"]
    assert [t["target"] for t in active] == ["alice"]
    alice = targets.get_target(deps, TENANT, "stories", "alice")
    assert alice["active"] is True and alice["last_state"] == "present" and alice["last_batch_id"] == batch_id
    assert alice["active_since"] == alice["last_detected_at"] == alice["last_checked_at"]
    assert (alice["checks"], alice["detections"], alice["consecutive_errors"], alice["last_error"]) == (1, 1, 0, None)


def test_targets_are_tenant_isolated_and_an_unknown_check_is_a_404():
    deps = make_deps(proxies=1)
    Site(deps).profile("alice")
    run_batch(deps, ["alice"])

    with pytest.raises(NotFound):
        targets.get_target(deps, "t_other", "stories", "alice")
    with pytest.raises(NotFound):
        targets.list_targets(deps, "t_other", "stories", None, 10, None)
    with pytest.raises(NotFound):
        targets.list_targets(deps, TENANT, "reels", None, 10, None)
    with pytest.raises(NotFound):
        targets.get_target(deps, TENANT, "stories", "nobody")


def test_the_proxy_list_shows_open_sessions_as_a_count_and_the_sweep_removes_expired_ones():
    deps = make_deps(proxies=2)
    site = Site(deps)
    site.profile("alice")
    run_batch(deps, ["alice"])

    shown = {p["proxy_id"]: p for p in admin.list_proxies(deps)["proxies"]}
    assert sorted(p["sessions"] for p in shown.values()) == [0, 1]
    assert all(isinstance(p["sessions"], int) and "cookies" not in p for p in shown.values())

    deps.clock.advance(601)  # past max_age_s
    assert maintenance.run(deps)["expired_sessions"] == 1
    assert [p["sessions"] for p in admin.list_proxies(deps)["proxies"]] == [0, 0]


# ---- POST /scrape ----------------------------------------------------------------------------------------------
def test_a_scraped_check_answers_like_an_item_and_updates_the_targets_history(monkeypatch: pytest.MonkeyPatch):
    deps = make_deps(proxies=2)
    site = Site(deps)
    site.profile("alice")
    site.blocked["http://proxy-1.test:8080"] = 401  # the first proxy is refused: the check retries on the other
    events: list[Any] = []
    from scrapersky.services import profile_scrape

    monkeypatch.setattr(profile_scrape, "emit_target_event", lambda deps, batch, event, tenant: events.append(event))
    req = ScrapeRequest(kind="profile", item="alice", options={"check": CHECK})

    first = profile_scrape.scrape_check(deps, TENANT, req)
    site.stories.add("alice")
    deps.clock.advance(10)
    second = profile_scrape.scrape_check(deps, TENANT, req)

    assert (first["status"], first["result"]["state"]) == ("succeeded", "absent")
    assert (second["result"]["state"], second["result"]["proxy_id"]) == ("present", "p_2")
    assert set(second["result"]) == {"state", "status_code", "final_url", "evidence", "proxy_id", "checked_at"}
    alice = targets.get_target(deps, TENANT, "stories", "alice")
    assert (alice["checks"], alice["active"], alice["last_batch_id"]) == (2, True, None)
    assert [e.event.value for e in events] == ["target.became_active"]
    assert deps.pool.unreleased() == []


def test_a_scraped_check_without_a_check_spec_is_a_422():
    from scrapersky.services import profile_scrape

    deps = make_deps(proxies=1)
    with pytest.raises(InvalidInput):
        profile_scrape.scrape_check(deps, TENANT, ScrapeRequest(kind="profile", item="alice"))
    assert deps.pool.leases == []


def test_a_dead_lettered_profile_item_counts_as_a_failed_check_of_its_target_once():
    from scrapersky.services import dead_letters

    deps = make_deps(proxies=1)
    req = CreateBatchRequest(kind="profile", items=["alice"], options={"check": CHECK})
    batch_id = batches.create_batch(deps, TENANT, req)["batch_id"]
    for m in deps.queue.pop_fanout():
        fanout.handle(deps, m)
    [msg] = deps.queue.pop_work()

    assert dead_letters.handle(deps, msg.model_dump_json()) == "item_failed"
    dead_letters.handle(deps, msg.model_dump_json())  # the DLQ redelivers it

    alice = record(deps, "alice")
    assert (alice.checks, alice.consecutive_errors, alice.active) == (1, 1, None)
    assert alice.last_error is not None and alice.last_error.code == "poison_message"
    assert batches.get_batch(deps, TENANT, batch_id)["status"] == "failed"


def test_a_flip_is_sent_as_an_event_to_the_batch_callback_url_with_a_stable_id():
    deps = make_deps(proxies=1)
    site = Site(deps)
    site.profile("alice")
    sent: list[Any] = []
    for on in (False, True):
        site.stories.clear()
        if on:
            site.stories.add("alice")
        req = CreateBatchRequest(
            kind="profile", items=["alice"], options={"check": CHECK}, callback_url="https://hooks.example/in"
        )
        batch_id = batches.create_batch(deps, TENANT, req)["batch_id"]
        drain(deps)
        sent += [m for m, _delay in deps.events.queue.sent if m.event.startswith("target.")]
        deps.clock.advance(60)

    assert len(sent) == 1  # absent first (no flip from null), then present: one became_active
    msg = sent[0]
    assert (msg.event, msg.destinations, msg.callback_url, msg.batch_id) == (
        "target.became_active",
        ["webhook"],
        "https://hooks.example/in",
        batch_id,
    )
    assert msg.body is not None
    assert {k: msg.body[k] for k in ("event", "check", "target", "previous_state", "state", "batch_id")} == {
        "event": "target.became_active",
        "check": "stories",
        "target": "alice",
        "previous_state": "absent",
        "state": "present",
        "batch_id": batch_id,
    }
    assert msg.body["event_id"] == msg.event_id and msg.event_id.startswith("evt_")
    assert msg.body["at"].endswith("Z")
