import json
from email.utils import formatdate

import pytest
from scrapersky.checks import BLOCK_COOL_S, CheckFailure, CheckFetch, CheckSpec, CheckState, classify_check
from scrapersky.domain.outcomes import FetchFailure, OutcomeKind

NOW = 1_800_000_000.0
URL = "https://social.example/alice/"
PROFILE = '<html><body><header class="profile">alice</header>{story}</body></html>'
WITH_STORY = PROFILE.format(story='<div class="story-ring">Story</div>')
WITHOUT_STORY = PROFILE.format(story="")
CAPTCHA = "<html><body><form id='captcha'>Are you human?</form></body></html>"

SPEC = CheckSpec.model_validate(
    {
        "name": "stories",
        "url": "https://social.example/{target}/",
        "marker": {"css": "div.story-ring"},
        "page_guard": {"css": "header.profile"},
        "login_url_prefix": "https://social.example/accounts/login",
    }
)


def fetch(status=200, body=WITH_STORY, redirects=(), retry_after=None, truncated=False, final_url=URL):
    return CheckFetch(
        status_code=status,
        final_url=final_url,
        redirect_urls=tuple(redirects),
        content_type="text/html; charset=utf-8",
        body=body,
        retry_after=retry_after,
        truncated=truncated,
    )


def test_a_profile_with_the_marker_is_present_with_evidence():
    out = classify_check(SPEC, fetch(), NOW)
    assert out.succeeded and out.state is CheckState.PRESENT
    assert out.evidence == '<div class="story-ring">Story</div>'
    assert (out.status_code, out.final_url, out.code, out.block) == (200, URL, None, False)


def test_a_real_profile_without_the_marker_is_absent_without_evidence():
    out = classify_check(SPEC, fetch(body=WITHOUT_STORY), NOW)
    assert (out.kind, out.state, out.evidence) == (OutcomeKind.SUCCESS, CheckState.ABSENT, None)


@pytest.mark.parametrize("status", [404, 410])
def test_a_status_in_not_found_status_is_not_found(status):
    s = SPEC.model_copy(update={"not_found_status": [404, 410]})
    out = classify_check(s, fetch(status=status, body="gone"), NOW)
    assert (out.kind, out.state) == (OutcomeKind.SUCCESS, CheckState.NOT_FOUND)


def test_a_status_not_in_not_found_status_is_not_taken_for_not_found():
    out = classify_check(SPEC, fetch(status=410, body="gone"), NOW)
    assert (out.kind, out.state, out.code) == (OutcomeKind.PERMANENT, None, "http_410")


@pytest.mark.parametrize("status", [401, 403])
def test_a_blocked_status_is_a_block_never_absent(status):
    out = classify_check(SPEC, fetch(status=status, body="401 please wait"), NOW)
    assert (out.kind, out.state, out.code, out.block) == (OutcomeKind.TRANSIENT, None, CheckFailure.BLOCKED, True)
    assert out.retry_after_s == BLOCK_COOL_S


def test_a_block_cools_the_proxy_for_the_sites_retry_after():
    out = classify_check(SPEC, fetch(status=403, retry_after="120"), NOW)
    assert out.block and out.retry_after_s == 120.0


def test_a_redirect_to_the_login_page_is_login_required():
    hops = ["https://social.example/accounts/login/?next=/alice/"]
    out = classify_check(SPEC, fetch(body="<form>log in</form>", redirects=hops, final_url=hops[0]), NOW)
    assert (out.kind, out.code, out.block, out.state) == (
        OutcomeKind.TRANSIENT,
        CheckFailure.LOGIN_REQUIRED,
        True,
        None,
    )


def test_a_login_hop_in_the_middle_of_the_chain_counts_and_host_case_does_not_matter():
    hops = ["https://SOCIAL.example/accounts/login?next=x", "https://social.example/alice/"]
    out = classify_check(SPEC, fetch(redirects=hops), NOW)
    assert out.code == CheckFailure.LOGIN_REQUIRED


def test_a_redirect_elsewhere_is_read_as_the_page():
    hops = ["https://social.example/alice"]
    out = classify_check(SPEC, fetch(redirects=hops, final_url=hops[0]), NOW)
    assert out.state is CheckState.PRESENT


def test_without_a_login_prefix_redirects_are_not_checked():
    s = SPEC.model_copy(update={"login_url_prefix": None})
    out = classify_check(s, fetch(redirects=["https://social.example/accounts/login"]), NOW)
    assert out.state is CheckState.PRESENT


def test_a_captcha_page_answered_200_is_page_guard_missing_never_absent():
    out = classify_check(SPEC, fetch(body=CAPTCHA), NOW)
    assert (out.kind, out.code, out.block, out.state) == (
        OutcomeKind.TRANSIENT,
        CheckFailure.PAGE_GUARD_MISSING,
        True,
        None,
    )


def test_without_a_page_guard_a_page_without_the_marker_is_absent():
    s = SPEC.model_copy(update={"page_guard": None})
    assert classify_check(s, fetch(body=CAPTCHA), NOW).state is CheckState.ABSENT


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_wait"),
    [(429, None, None), (429, "7", 7.0), (503, "3", 3.0), (503, formatdate(NOW + 60, usegmt=True), 60.0)],
)
def test_a_rate_limit_is_a_deferral_that_keeps_the_session(status, retry_after, expected_wait):
    out = classify_check(SPEC, fetch(status=status, body="slow down", retry_after=retry_after), NOW)
    assert (out.kind, out.code, out.block) == (OutcomeKind.RATE_LIMITED, f"http_{status}", False)
    if expected_wait is None:
        assert out.retry_after_s is None
    else:
        assert out.retry_after_s == pytest.approx(expected_wait, abs=1)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_transient_and_keep_the_session(status):
    out = classify_check(SPEC, fetch(status=status, body="oops"), NOW)
    assert (out.kind, out.code, out.block, out.state) == (OutcomeKind.TRANSIENT, f"http_{status}", False, None)


def test_a_proxy_auth_failure_is_the_proxys_fault():
    out = classify_check(SPEC, fetch(status=407, body=""), NOW)
    assert (out.kind, out.code, out.proxy_fault) == (OutcomeKind.TRANSIENT, "proxy_auth", True)


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (FetchFailure("connect_error", "the connection failed", proxy_fault=True), OutcomeKind.TRANSIENT),
        (FetchFailure("timeout", "no answer"), OutcomeKind.TRANSIENT),
        (FetchFailure("blocked_target", "refused by the SSRF guard", permanent=True), OutcomeKind.PERMANENT),
    ],
)
def test_a_fetch_that_got_no_answer_keeps_its_code(failure, kind):
    out = classify_check(SPEC, failure, NOW)
    assert (out.kind, out.code, out.proxy_fault, out.state) == (kind, failure.code, failure.proxy_fault, None)


def test_a_truncated_body_without_the_marker_is_not_absent():
    out = classify_check(SPEC, fetch(body=WITHOUT_STORY, truncated=True), NOW)
    assert (out.kind, out.code, out.state) == (OutcomeKind.PERMANENT, CheckFailure.TOO_LARGE, None)
    assert classify_check(SPEC, fetch(body=WITH_STORY, truncated=True), NOW).state is CheckState.PRESENT


JSON_SPEC = CheckSpec.model_validate(
    {
        "url": "https://api.social.example/users/{target}",
        "marker": {"json_pointer": "/data/user/has_story"},
        "page_guard": {"json_pointer": "/data/user/id"},
    }
)


@pytest.mark.parametrize(
    ("document", "state", "evidence"),
    [
        ({"data": {"user": {"id": 1, "has_story": True}}}, CheckState.PRESENT, "true"),
        ({"data": {"user": {"id": 1, "has_story": False}}}, CheckState.ABSENT, None),
        ({"data": {"user": {"id": 1}}}, CheckState.ABSENT, None),
    ],
)
def test_a_json_api_check(document, state, evidence):
    out = classify_check(JSON_SPEC, fetch(body=json.dumps(document)), NOW)
    assert (out.state, out.evidence) == (state, evidence)
    assert JSON_SPEC.name == "api.social.example"


def test_a_json_check_answered_without_the_guard_or_with_html_is_a_block():
    missing = classify_check(JSON_SPEC, fetch(body='{"error": "please wait"}'), NOW)
    html = classify_check(JSON_SPEC, fetch(body=CAPTCHA), NOW)
    assert (missing.code, missing.block) == (CheckFailure.PAGE_GUARD_MISSING, True)
    assert (html.code, html.block, html.state) == (CheckFailure.NOT_JSON, True, None)


def test_a_regex_check_with_a_regex_guard():
    s = CheckSpec.model_validate(
        {"url": "https://s.example/{target}", "marker": {"regex": 'has_story":true'}, "page_guard": {"regex": "uid"}}
    )
    assert classify_check(s, fetch(body='{"uid":1,"has_story":true}'), NOW).evidence == '{"uid":1,"has_story":true}'
    assert classify_check(s, fetch(body='{"uid":1}'), NOW).state is CheckState.ABSENT
    assert classify_check(s, fetch(body="{}"), NOW).code == CheckFailure.PAGE_GUARD_MISSING
