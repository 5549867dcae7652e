"""A profile check that opens a session sends the site two requests through one lease (the warm-up, then the
profile): they are spaced by the proxy's pace, and the pace counts on from the profile request (found by
bench/profiles.py: back to back, the site refused the profile at every session opening and the pool learnt a pace
well below the site's limit)."""

from __future__ import annotations

from scrapersky.checks import CheckFetch
from scrapersky.models import CreateBatchRequest
from scrapersky.profile_ports import Jar
from scrapersky.services import batches

from tests.fakes import make_deps
from tests.fakes.profiles import CheckCall, cookie
from tests.unit.test_profile_kind import CHECK, PROFILE, SITE, TENANT, drain


def test_a_warm_up_and_its_check_are_spaced_by_the_pace_and_the_next_slot_counts_from_the_check():
    deps = make_deps(proxies=1)
    sent: list[tuple[str, float]] = []

    def warmup(call: CheckCall) -> tuple[CheckFetch, Jar]:
        sent.append((call.url, deps.clock.now()))
        return CheckFetch(200, call.url, body="home"), (cookie("sid", "s1", "social.test"),)

    def profile(call: CheckCall) -> tuple[CheckFetch, Jar]:
        sent.append((call.url, deps.clock.now()))
        return CheckFetch(200, call.url, body=PROFILE.format("")), call.cookies

    deps.check_fetcher.script(SITE + "/", warmup)
    for t in ("a", "b"):
        deps.check_fetcher.script(f"{SITE}/{t}/", profile)
    req = CreateBatchRequest(kind="profile", items=["a", "b"], options={"check": CHECK})
    batches.create_batch(deps, TENANT, req)
    drain(deps)

    (w, w_at), (a, a_at), (b, b_at) = sent
    assert (w, a, b) == (SITE + "/", SITE + "/a/", SITE + "/b/")  # one session (max_uses 2) for both checks
    first = deps.pool.releases[0].lease
    assert first.pace is not None and a_at - w_at >= 1.0 / first.pace.rate  # a paced interval apart
    assert first.start_at == a_at  # what the pool learnt counts from the profile request, not the warm-up
    assert first.start_at - w_at < 1.0 / first.pace.rate + 0.01  # one interval, no more
    assert deps.pool.releases[1].lease.start_at <= b_at  # b reused the session: one request, its slot as leased
