"""Classifying what a fetch did into what the item and the proxy should do next."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any


class OutcomeKind(StrEnum):
    SUCCESS = "success"
    PERMANENT = "permanent"  # the item fails now, whatever proxy we use
    RATE_LIMITED = "rate_limited"  # the site pushed back on this proxy: defer, no attempt spent
    TRANSIENT = "transient"  # try again on another proxy, spends an attempt


@dataclass(frozen=True)
class FetchResponse:
    """What the target answered, after following redirects."""

    status_code: int
    final_url: str
    content_type: str | None
    bytes: int
    elapsed_ms: int
    summary: dict[str, str | None] = field(default_factory=dict)
    retry_after: str | None = None
    truncated: bool = False
    redirects: int = 0


@dataclass(frozen=True)
class FetchFailure:
    """A fetch that got no usable answer. `proxy_fault` marks errors the proxy is to blame for."""

    code: str
    message: str
    proxy_fault: bool = False
    permanent: bool = False


@dataclass(frozen=True)
class Outcome:
    """What one fetch came to for the item and the proxy: its kind, the error, the site's wait, the result."""

    kind: OutcomeKind
    proxy_fault: bool = False
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    retry_after_s: float | None = None
    result: dict[str, Any] | None = None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def classify(fetched: FetchResponse | FetchFailure, now: float) -> Outcome:
    if isinstance(fetched, FetchFailure):
        kind = OutcomeKind.PERMANENT if fetched.permanent else OutcomeKind.TRANSIENT
        return Outcome(kind=kind, code=fetched.code, message=fetched.message, proxy_fault=fetched.proxy_fault)
    status = fetched.status_code
    result = {
        "status_code": status,
        "final_url": fetched.final_url,
        "content_type": fetched.content_type,
        "bytes": fetched.bytes,
        "elapsed_ms": fetched.elapsed_ms,
        "title": fetched.summary.get("title"),
        "description": fetched.summary.get("description"),
        "canonical": fetched.summary.get("canonical"),
        "h1": fetched.summary.get("h1"),
        "truncated": fetched.truncated,
        "redirects": fetched.redirects,
    }
    retry_after = parse_retry_after(fetched.retry_after, now)
    if status == 429 or (status == 503 and retry_after is not None):
        return _http(OutcomeKind.RATE_LIMITED, status, f"rate limited (HTTP {status})", retry_after_s=retry_after)
    if status == 407:
        message = "proxy refused our credentials (407)"
        return Outcome(OutcomeKind.TRANSIENT, proxy_fault=True, code="proxy_auth", message=message, http_status=status)
    if 200 <= status < 400:
        return Outcome(OutcomeKind.SUCCESS, http_status=status, result=result)
    if status == 408 or status >= 500:
        return _http(OutcomeKind.TRANSIENT, status, f"HTTP {status}", result=result)
    return _http(OutcomeKind.PERMANENT, status, f"HTTP {status}", result=result)


def _http(kind: OutcomeKind, status: int, message: str, **more: Any) -> Outcome:
    return Outcome(kind, code=f"http_{status}", message=message, http_status=status, **more)


def full_jitter_backoff(attempt: int, base: float = 2.0, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter (AWS architecture blog), never below one second."""
    r = rng or random
    return max(1.0, r.uniform(0, min(cap, base * (2 ** max(0, attempt)))))
