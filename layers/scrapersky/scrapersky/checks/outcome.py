"""Classifying one check's fetch: a state that ends the item (`present`, `absent`, `not_found`), or a failure
that says what the item, the proxy and the session do next.

A block (a status in `blocked_status`, a redirect to the login page, a 200 without the page guard) is never
taken as `absent`: the session is retired, the proxy cools for the host and the check retries elsewhere as an
attempt. A 429 (or a 503 with Retry-After) is a deferral: the session is kept and no attempt is spent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scrapersky.checks.markers import Document, Found, NotJson, find
from scrapersky.checks.spec import CheckSpec
from scrapersky.domain.outcomes import FetchFailure, OutcomeKind, parse_retry_after

BLOCK_COOL_S = 30.0  # how long a proxy cools for the host after a block the site gave no Retry-After for


class CheckState(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"
    NOT_FOUND = "not_found"


class CheckFailure(StrEnum):
    """The failure codes of the profile kind's own (beside `http_<status>` and the fetcher's codes)."""

    BLOCKED = "blocked"  # a status in blocked_status
    LOGIN_REQUIRED = "login_required"  # a redirect hop under login_url_prefix
    PAGE_GUARD_MISSING = "page_guard_missing"  # a 2xx without the page guard: a challenge or captcha page
    NOT_JSON = "not_json"  # a json_pointer marker or guard, and an answer that is not JSON (a challenge page)
    TOO_LARGE = "too_large"  # not found in the part of the body read before the byte cap: absent is not known


@dataclass(frozen=True)
class CheckFetch:
    """What the fetcher gives for one check: the last answer after redirects, every URL it was redirected to
    (in order, the final one included), and the body decoded to text."""

    status_code: int
    final_url: str
    redirect_urls: tuple[str, ...] = ()
    content_type: str | None = None
    body: str = ""
    retry_after: str | None = None
    truncated: bool = False


@dataclass(frozen=True)
class CheckOutcome:
    """What one check's fetch came to. `state` is set exactly when it succeeded; `block` says the session is
    to be retired and the proxy cooled for the host (for `retry_after_s`)."""

    kind: OutcomeKind
    state: CheckState | None = None
    evidence: str | None = None
    block: bool = False
    retry_after_s: float | None = None
    code: str | None = None
    message: str | None = None
    proxy_fault: bool = False
    status_code: int | None = None
    final_url: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.kind is OutcomeKind.SUCCESS


def classify_check(spec: CheckSpec, fetched: CheckFetch | FetchFailure, now: float) -> CheckOutcome:
    """The outcome of one check's fetch under `spec`. `now` (epoch seconds) reads a Retry-After date."""
    if isinstance(fetched, FetchFailure):
        kind = OutcomeKind.PERMANENT if fetched.permanent else OutcomeKind.TRANSIENT
        return CheckOutcome(kind, code=fetched.code, message=fetched.message, proxy_fault=fetched.proxy_fault)
    retry_after = parse_retry_after(fetched.retry_after, now)
    status = fetched.status_code
    if _through_login(spec.login_url_prefix, fetched):
        return _block(CheckFailure.LOGIN_REQUIRED, "redirected to the login page", fetched, retry_after)
    if status in spec.not_found_status:
        return _ended(CheckState.NOT_FOUND, fetched)
    if status in spec.blocked_status:
        return _block(CheckFailure.BLOCKED, f"the site refused the check (HTTP {status})", fetched, retry_after)
    if 200 <= status < 300:
        return _read(spec, fetched, retry_after)
    return _other_status(fetched, retry_after)


def _other_status(fetched: CheckFetch, retry_after: float | None) -> CheckOutcome:
    """A status the spec does not name, read as for a page: rate limits defer, 5xx retry, the rest fail."""
    status = fetched.status_code
    if status == 429 or (status == 503 and retry_after is not None):
        message = f"rate limited (HTTP {status})"
        return _failed(OutcomeKind.RATE_LIMITED, f"http_{status}", message, fetched, retry_after_s=retry_after)
    if status == 407:
        message = "proxy refused our credentials (407)"
        return _failed(OutcomeKind.TRANSIENT, "proxy_auth", message, fetched, proxy_fault=True)
    kind = OutcomeKind.TRANSIENT if status == 408 or status >= 500 else OutcomeKind.PERMANENT
    return _failed(kind, f"http_{status}", f"HTTP {status}", fetched)


def _read(spec: CheckSpec, fetched: CheckFetch, retry_after: float | None) -> CheckOutcome:
    """A 2xx answer: the page guard first (without it the page is not the one asked for), then the marker."""
    document = Document(fetched.body)
    try:
        guard = find(spec.page_guard, document) if spec.page_guard else Found(True)
        found = find(spec.marker, document) if guard.present else guard
    except NotJson:
        return _block(CheckFailure.NOT_JSON, "the answer is not JSON", fetched, retry_after)
    if found.present:
        return _ended(CheckState.PRESENT, fetched, found.evidence)
    if fetched.truncated:
        message = "the body was cut at max_bytes before the marker or page guard was seen"
        return _failed(OutcomeKind.PERMANENT, CheckFailure.TOO_LARGE, message, fetched)
    if not guard.present:
        message = "the answer is not the page asked for (no page guard: a challenge or captcha page?)"
        return _block(CheckFailure.PAGE_GUARD_MISSING, message, fetched, retry_after)
    return _ended(CheckState.ABSENT, fetched)


def _through_login(prefix: str | None, fetched: CheckFetch) -> bool:
    """Whether a redirect hop (the final URL included) starts with the login URL prefix."""
    if prefix is None or not fetched.redirect_urls:
        return False
    wanted = _comparable(prefix)
    return any(_comparable(url).startswith(wanted) for url in (*fetched.redirect_urls, fetched.final_url))


def _comparable(url: str) -> str:
    """The URL with its scheme and host lower-cased (they are case-insensitive; the path is not)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()))


def _ended(state: CheckState, fetched: CheckFetch, evidence: str | None = None) -> CheckOutcome:
    return CheckOutcome(
        OutcomeKind.SUCCESS,
        state=state,
        evidence=evidence,
        status_code=fetched.status_code,
        final_url=fetched.final_url,
    )


def _block(code: CheckFailure, message: str, fetched: CheckFetch, retry_after: float | None) -> CheckOutcome:
    cool = BLOCK_COOL_S if retry_after is None else retry_after
    return _failed(OutcomeKind.TRANSIENT, code, message, fetched, retry_after_s=cool, block=True)


def _failed(kind: OutcomeKind, code: str, message: str, fetched: CheckFetch, **more: Any) -> CheckOutcome:
    return CheckOutcome(
        kind, code=str(code), message=message, status_code=fetched.status_code, final_url=fetched.final_url, **more
    )
