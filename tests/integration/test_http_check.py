"""The profile check's fetch against the loopback social site: a session's cookies go out and come back in the
call's own jar; a page fetch keeps none; every redirect hop is listed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scrapersky.adapters.http_check import CheckingFetcher
from scrapersky.checks import CheckSpec, classify_check
from scrapersky.domain.targets import TargetPolicy

from devstack.social_site import SocialSite, check_spec


@pytest.fixture
def social() -> Iterator[SocialSite]:
    with SocialSite(profiles=("alice",)) as s:
        yield s


@pytest.fixture
def fetcher() -> CheckingFetcher:
    return CheckingFetcher(TargetPolicy(allow_private=True, any_port=True))


def test_the_warmup_cookie_opens_the_profile_and_a_page_fetch_keeps_no_cookie(social, fetcher):
    base = social.base_url
    spec = CheckSpec.model_validate(check_spec(base))
    social.set_story("alice", True)

    warm = fetcher.fetch_check(base + "/", None, 5, 100_000, ())  # type: ignore[arg-type]
    assert [c.name for c in warm.cookies] == ["sid"]
    got = fetcher.fetch_check(base + "/alice/", None, 5, 100_000, warm.cookies)  # type: ignore[arg-type]

    o = classify_check(spec, got.fetched, 0)
    assert (o.state.value if o.state else None, o.evidence) == (
        "present",
        '<span class="story-ring">story of alice</span>',
    )
    assert got.cookies == warm.cookies
    fetcher.fetch(base + "/", None, 5, 100_000)  # the page fetcher is told the cookie too ...
    page = fetcher.fetch(base + "/alice/", None, 5, 100_000)
    assert page.final_url.startswith(base + "/login")  # ... and keeps none of it  # type: ignore[union-attr]


def test_a_check_without_a_session_is_redirected_to_login_and_classified_login_required(social, fetcher):
    spec = CheckSpec.model_validate(check_spec(social.base_url))

    got = fetcher.fetch_check(social.base_url + "/alice/", None, 5, 100_000, ())  # type: ignore[arg-type]

    assert got.fetched.redirect_urls == (social.base_url + "/login?next=/alice",)  # type: ignore[union-attr]
    o = classify_check(spec, got.fetched, 0)
    assert (o.code, o.block) == ("login_required", True)
