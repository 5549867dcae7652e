"""A batch's callback URL: https, under the SSRF rules of a target (the local stack also allows loopback http)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from scrapersky.domain.targets import InvalidTarget, TargetPolicy, normalise_page


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalise_callback(raw: str, policy: TargetPolicy) -> str:
    """The callback URL as it will be POSTed to. Raises InvalidTarget with the reason."""
    text = raw.strip()
    if "://" not in text:
        raise InvalidTarget("the callback URL must be absolute (https://...)")
    url = normalise_page(text, policy)  # http(s), a valid host, no credentials, allowed port and address
    parts = urlsplit(url)
    if parts.scheme != "https" and not (policy.allow_private and _loopback(parts.hostname or "")):
        raise InvalidTarget("the callback URL must use https")
    return url
