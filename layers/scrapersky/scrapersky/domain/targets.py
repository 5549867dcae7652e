"""Normalising and guarding targets: what a `page` item may be, and where the fetcher may go."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna

from scrapersky.models import MAX_ITEM_LENGTH, RejectedItem

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")
_SCHEMES = {"http", "https"}
DEFAULT_PORT_OF = {"http": 80, "https": 443}
DEFAULT_PORTS = frozenset({80, 443, 8080, 8443})
_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class InvalidTarget(ValueError):
    """A target that can never be fetched; its message is the reason shown to the client."""


@dataclass(frozen=True)
class TargetPolicy:
    """Where fetches may go. A deployed stack refuses private addresses; the local stack allows loopback."""

    allow_private: bool = False
    allowed_ports: frozenset[int] = DEFAULT_PORTS
    any_port: bool = False

    def check_port(self, port: int) -> None:
        if not self.any_port and port not in self.allowed_ports:
            raise InvalidTarget(f"port {port} is not allowed (allowed: {sorted(self.allowed_ports)})")

    def check_address(self, address: str) -> None:
        """Only globally routable unicast addresses (private, loopback, link-local, shared 100.64/10, reserved,
        unspecified, metadata and multicast are refused), unless private targets are allowed (local stack)."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if self.allow_private:
            return
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise InvalidTarget(f"address {ip} is private, loopback, link-local or reserved")


def _with_scheme(text: str) -> str:
    """A bare domain (optionally with a port) gets https://; anything else with a colon is another scheme."""
    if "://" in text:
        return text
    if ":" in text.split("/", 1)[0] and not re.match(r"^[^:/]+:\d+(/|$)", text):
        raise InvalidTarget("unsupported scheme (only http and https)")
    return "https://" + text


def _split(text: str) -> tuple[SplitResult, int | None]:
    try:
        parts = urlsplit(text)
        return parts, parts.port
    except ValueError as e:
        raise InvalidTarget(f"not a valid URL: {e}") from e


def _parts(text: str) -> tuple[SplitResult, str, str, int | None]:
    """The URL's parts, scheme, host and port, refusing what is never a page: another scheme, no host,
    credentials, whitespace."""
    parts, port = _split(_with_scheme(text))
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidTarget(f"unsupported scheme '{scheme}' (only http and https)")
    host = ascii_host(parts.hostname or "")
    if not host:
        raise InvalidTarget("no host")
    if parts.username or parts.password:
        raise InvalidTarget("credentials in the URL are not allowed")
    if any(c.isspace() or c == "\\" for c in text):
        raise InvalidTarget("whitespace or a backslash inside the URL")
    return parts, scheme, host, port


def normalise_page(raw: str, policy: TargetPolicy) -> str:
    """A `page` item as an absolute http(s) URL; bare domains become https://domain/."""
    text = raw.strip()
    if not text:
        raise InvalidTarget("empty item")
    if len(text) > MAX_ITEM_LENGTH:
        raise InvalidTarget(f"longer than {MAX_ITEM_LENGTH} characters")
    parts, scheme, host, port = _parts(text)
    guard_host(host, policy)
    policy.check_port(port or DEFAULT_PORT_OF[scheme])
    netloc = host if ":" not in host else f"[{host}]"
    if port and port != DEFAULT_PORT_OF[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def host_key(raw: str) -> str:
    """A host as pacing keys it: what `urlsplit(url).hostname` gives for a normalised item URL (lower case,
    IPv6 without brackets). Raises InvalidTarget for anything that is not a host name or IP address."""
    host = raw.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _DOMAIN.match(host):
            raise InvalidTarget(f"'{raw}' is not a host name or IP address") from None
    return host


def guard_host(host: str, policy: TargetPolicy) -> None:
    """Checks a host name without resolving it (resolution happens at fetch time, per hop)."""
    if (host in _METADATA_HOSTS or host.endswith(".internal")) and not policy.allow_private:
        raise InvalidTarget(f"host {host} is not allowed")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        _guard_name(host, policy)
        return
    policy.check_address(host)


def _guard_name(host: str, policy: TargetPolicy) -> None:
    if host == "localhost" or host.endswith(".localhost"):
        if not policy.allow_private:
            raise InvalidTarget("localhost is not allowed")
        return
    if not _DOMAIN.match(host):
        raise InvalidTarget(f"'{host}' is not a valid host name")
    if "." not in host and not policy.allow_private:
        raise InvalidTarget(f"'{host}' is not a public domain name")


def ascii_host(host: str) -> str:
    """An internationalised domain name in its ASCII form (IDNA 2008 with UTS 46 mapping: `bücher.de` ->
    `xn--bcher-kva.de`), as DNS and the Host header carry it; ASCII hosts come back lower-cased."""
    if host.isascii():
        return host.lower()
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as e:
        raise InvalidTarget(f"'{host}' is not a valid internationalised domain name") from e


def guard_hop(
    scheme: str, host: str, port: int, policy: TargetPolicy, resolve: Callable[[str, int], Iterable[str]]
) -> None:
    """The SSRF check of one hop, given as the connecting client parsed it: scheme, port, and every address
    the host resolves to."""
    if scheme not in _SCHEMES:
        raise InvalidTarget(f"unsupported scheme '{scheme}'")
    host = ascii_host(host)
    guard_host(host, policy)
    policy.check_port(port)
    for address in resolve(host, port):
        policy.check_address(address)


def guard_resolved(url: str, policy: TargetPolicy, resolve: Callable[[str, int], Iterable[str]]) -> None:
    """guard_hop for a URL that parses the same way everywhere (a normalised item)."""
    parts = urlsplit(url)
    guard_hop(parts.scheme, parts.hostname or "", parts.port or DEFAULT_PORT_OF.get(parts.scheme, 0), policy, resolve)


@dataclass
class NormalisedItems:
    accepted: list[str] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    duplicates: int = 0


def normalise_each(raw_items: Iterable[str], normalise: Callable[[str], str]) -> NormalisedItems:
    """Normalises each item with the kind's rule, drops duplicates after normalisation, rejects invalid items
    with their reason."""
    out = NormalisedItems()
    seen: set[str] = set()
    for raw in raw_items:
        try:
            item = normalise(raw)
        except InvalidTarget as e:
            out.rejected.append(RejectedItem(item=raw[:MAX_ITEM_LENGTH], reason=str(e)))
            continue
        if item in seen:
            out.duplicates += 1
            continue
        seen.add(item)
        out.accepted.append(item)
    return out
