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


def _warmed_login_check(fetcher: CheckingFetcher, social: SocialSite, proxy_url: str) -> tuple[str | None, str]:
    """What a check of an always-private profile comes to through `proxy_url`: warm-up, then the profile
    (302 with an empty body), then the login page, each hop through the proxy as a worker does it."""
    spec = CheckSpec.model_validate(check_spec(social.base_url))
    warm = fetcher.fetch_check(social.base_url + "/", proxy_url, 5, 100_000, ())
    got = fetcher.fetch_check(social.base_url + "/private-zed/", proxy_url, 5, 100_000, warm.cookies)
    return classify_check(spec, got.fetched, 0).code, repr(got.fetched)


def test_a_login_redirect_through_a_proxy_holding_us_to_connection_close_is_login_required(social, fetcher):
    from tests.loopback import StrictProxy

    with StrictProxy() as proxy:
        for _ in range(3):
            code, fetched = _warmed_login_check(fetcher, social, proxy.url)
            assert code == "login_required", fetched  # not proxy_error: no hop went on a connection told to close
        assert (proxy.dropped, proxy.connections) == (0, 9)  # a connection per hop: warm-up, profile, login page


def test_login_redirects_through_real_proxies_end_login_required_every_time(social, fetcher, proxy_servers):
    codes = [_warmed_login_check(fetcher, social, p.url) for _ in range(10) for p in proxy_servers]

    wrong = [fetched for code, fetched in codes if code != "login_required"]
    assert (len(codes), wrong) == (30, [])  # before the fix, about 1 in 3 was proxy_error
