"""Webhook arithmetic, pure: the signature, the retry schedule, stable event ids, a masked secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "X-ScraperSky-Signature"
FIRST_RETRY_S = 30.0  # the first retry comes within a minute
MAX_RETRY_S = 3600.0  # then doubling, at most an hour apart
RETRY_WINDOW_S = 86_400.0  # a receiver that stays down is tried for a day, then the event goes to the DLQ
WEBHOOK_TIMEOUT_S = 10.0
SOURCE = "scrapersky"


def signature(secret: str, t: int, raw: bytes) -> str:
    """The X-ScraperSky-Signature value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, raw: bytes, now: float, tolerance_s: float = 300.0) -> bool:
    """What a receiver checks: the signature matches this body and its time is recent (no replay)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = signature(secret, t, raw).split("v1=", 1)[1]
    return abs(now - t) <= tolerance_s and hmac.compare_digest(expected, parts.get("v1", ""))


def retry_delay(tries: int, first_s: float = FIRST_RETRY_S) -> float:
    """Seconds before the next try after `tries` failed ones: 30 s, 60 s, 120 s, ... at most an hour."""
    return min(MAX_RETRY_S, first_s * 2 ** max(0, tries - 1))


def gives_up(first_try_at: float, now: float) -> bool:
    """A failed try this long after the first ends the retries (the event goes to the DLQ)."""
    return now - first_try_at >= RETRY_WINDOW_S


def event_id(name: str, *key: str) -> str:
    """A stable id: the same ending (or flip) redelivered gets the same id, so receivers can de-duplicate."""
    return "evt_" + hashlib.sha256(":".join((name, *key)).encode()).hexdigest()[:32]


def raw_body(body: dict[str, Any]) -> bytes:
    """The bytes that are sent and signed: compact JSON, keys sorted (every try sends the same bytes)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def masked(secret: str | None) -> str | None:
    """A secret as GET /tenant shows it: at most its last 4 characters."""
    if not secret:
        return None
    return "****" + secret[-4:] if len(secret) > 8 else "****"
