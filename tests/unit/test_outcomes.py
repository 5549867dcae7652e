from email.utils import formatdate

import pytest
from scrapersky.domain.html import summarise_html
from scrapersky.domain.outcomes import FetchFailure, FetchResponse, OutcomeKind, classify, parse_retry_after

NOW = 1_800_000_000.0


def response(status, retry_after=None):
    return FetchResponse(
        status_code=status,
        final_url="https://x.example/",
        content_type="text/html",
        bytes=10,
        elapsed_ms=5,
        retry_after=retry_after,
    )


@pytest.mark.parametrize(
    ("status", "retry_after", "kind", "code"),
    [
        (200, None, OutcomeKind.SUCCESS, None),
        (301, None, OutcomeKind.SUCCESS, None),
        (404, None, OutcomeKind.PERMANENT, "http_404"),
        (410, None, OutcomeKind.PERMANENT, "http_410"),
        (429, None, OutcomeKind.RATE_LIMITED, "http_429"),
        (429, "7", OutcomeKind.RATE_LIMITED, "http_429"),
        (503, "3", OutcomeKind.RATE_LIMITED, "http_503"),
        (503, None, OutcomeKind.TRANSIENT, "http_503"),
        (500, None, OutcomeKind.TRANSIENT, "http_500"),
        (407, None, OutcomeKind.TRANSIENT, "proxy_auth"),
    ],
)
def test_http_answers_are_classified(status, retry_after, kind, code):
    out = classify(response(status, retry_after), NOW)
    assert out.kind is kind
    assert out.code == code


def test_retry_after_is_honoured_in_seconds_and_as_a_date():
    assert classify(response(429, "7"), NOW).retry_after_s == 7
    assert parse_retry_after(formatdate(NOW + 30, usegmt=True), NOW) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon", NOW) is None


def test_proxy_errors_are_transient_and_blamed_on_the_proxy_while_dns_failures_are_permanent():
    proxy = classify(FetchFailure("proxy_error", "refused", proxy_fault=True), NOW)
    assert (proxy.kind, proxy.proxy_fault) == (OutcomeKind.TRANSIENT, True)
    dns = classify(FetchFailure("dns_error", "nxdomain", permanent=True), NOW)
    assert (dns.kind, dns.code) == (OutcomeKind.PERMANENT, "dns_error")


def test_page_summary_has_title_description_canonical_and_first_h1():
    page = """<html><head><title> Hello
      World </title><meta name="Description" content="About it"><link rel="canonical" href="https://x/c">
      </head><body><h1>First <b>one</b></h1><h1>Second</h1></body></html>"""
    assert summarise_html(page) == {
        "title": "Hello World",
        "description": "About it",
        "canonical": "https://x/c",
        "h1": "First one",
    }
    assert summarise_html("<p>no head") == {"title": None, "description": None, "canonical": None, "h1": None}
