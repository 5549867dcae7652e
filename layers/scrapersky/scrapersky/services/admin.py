"""Tenants and proxies (admin API), and the authorizer's key check."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any
from urllib.parse import unquote, urlsplit

from scrapersky.domain.events import masked
from scrapersky.domain.progress import iso
from scrapersky.domain.targets import InvalidTarget, host_key
from scrapersky.errors import InvalidInput, NotFound
from scrapersky.host_ports import HostConfig
from scrapersky.models import CreateProxyRequest, CreateTenantRequest, HostConfigRequest, ProxyState
from scrapersky.records import HostRecord, ProxyRecord, TenantRecord
from scrapersky.services.context import Deps

_PROXY_ID = re.compile(r"p_[0-9a-z]{1,32}")  # what add_proxy gives out (p_ + 16 hex)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_tenant(
    deps: Deps, req: CreateTenantRequest, api_key: str | None = None, tenant_id: str | None = None
) -> dict[str, Any]:
    """The key is returned once and stored only as its hash; the webhook secret signs the tenant's webhooks."""
    key = api_key or f"sk_{secrets.token_urlsafe(32)}"
    tid = tenant_id or f"t_{secrets.token_hex(8)}"
    deps.tenants.put_tenant(tid, req.name, req.role, hash_key(key), deps.clock.now())
    secret = new_webhook_secret()
    deps.events.secrets.set_secret(tid, secret, deps.clock.now())
    return {"tenant_id": tid, "name": req.name, "role": req.role, "api_key": key, "webhook_secret": secret}


# ---- the calling tenant: its record and its webhook secret ---------------------------------------------------
def new_webhook_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def get_tenant(deps: Deps, tenant_id: str) -> dict[str, Any]:
    tenant = deps.events.secrets.tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return {"tenant_id": tenant.tenant_id, "name": tenant.name, "webhook_secret": masked(tenant.webhook_secret)}


def rotate_webhook_secret(deps: Deps, tenant_id: str) -> dict[str, Any]:
    """A new secret signs every webhook try from now on (a try already sent was signed with the old one)."""
    secret = new_webhook_secret()
    if not deps.events.secrets.set_secret(tenant_id, secret, deps.clock.now()):
        raise NotFound(f"tenant {tenant_id} not found")
    return {"webhook_secret": secret}


def authenticate(deps: Deps, authorization: str | None) -> TenantRecord | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return deps.tenants.by_key_hash(hash_key(token.strip()))


def mask_endpoint(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username[:2]}***@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}"


def add_proxy(deps: Deps, req: CreateProxyRequest) -> dict[str, Any]:
    try:
        parts = urlsplit(req.url)
        port = parts.port
    except ValueError as e:
        raise InvalidInput(f"proxy url is not valid: {e}", [{"field": "url", "message": str(e)}]) from e
    if parts.scheme not in ("http", "https") or not parts.hostname or not port:
        raise InvalidInput(
            "proxy url must look like http://user:pass@host:port",
            [{"field": "url", "message": "scheme http/https, a host and a port are required"}],
        )
    proxy_id = f"p_{secrets.token_hex(8)}"
    endpoint = mask_endpoint(req.url)
    deps.pool.add(proxy_id, req.url, endpoint, req.labels, deps.clock.now())
    return {"proxy_id": proxy_id, "endpoint": endpoint}


def proxy_view(rec: ProxyRecord, now: float) -> dict[str, Any]:
    state = rec.state
    if state is ProxyState.AVAILABLE and rec.cooldowns:
        state = ProxyState.COOLING
    return {
        "proxy_id": rec.proxy_id,
        "endpoint": rec.endpoint,
        "labels": rec.labels,
        "state": state.value,
        "leased": rec.lease_until > now,
        "cooldowns": {host: iso(until) for host, until in rec.cooldowns.items()},
        "succeeded": rec.succeeded,
        "failed": rec.failed,
        "rate_limited": rec.rate_limited,
        "last_used_at": iso(rec.last_used_at),
        "consecutive_errors": rec.consecutive_errors,
        "pace": {host: round(p.rate, 3) for host, p in rec.paces.items()},
    }


def list_proxies(deps: Deps) -> dict[str, Any]:
    now = deps.clock.now()
    proxies = sorted(deps.pool.list_all(now), key=lambda p: p.proxy_id)
    return {"proxies": [{**proxy_view(p, now), "sessions": deps.sessions.open_count(p.proxy_id, now)} for p in proxies]}


def delete_proxy(deps: Deps, proxy_id: str) -> None:
    # only an id we give out: the proxies table also holds host records (`host#<h>`), never deletable here
    if not _PROXY_ID.fullmatch(proxy_id) or not deps.pool.delete(proxy_id):
        raise NotFound(f"proxy {proxy_id} not found")


# ---- hosts: what the pool is told of a site (its limit, a cap) and what it learnt -------------------------
def _host(raw: str) -> str:
    try:
        return host_key(unquote(raw))
    except InvalidTarget as e:
        raise InvalidInput(
            "host must be a host name or IP address as in the item URLs, e.g. example.com",
            [{"field": "host", "message": f"{e}; no scheme, port or path"}],
        ) from e


def _num(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _rate(v: float | None) -> float | None:
    return None if v is None else float(f"{v:.4g}")  # a total rate may be far below 0.001 requests/s


def host_view(rec: HostRecord, now: float) -> dict[str, Any]:
    limit = rec.limit(now)
    learnt = rec.crawl_delay_s is not None and (rec.crawl_delay_until or 0.0) > now  # in force, not expired
    return {
        "host": rec.host,
        "rate": _num(rec.rate),
        "max_rate": _num(rec.max_rate),
        "learnt_ceiling": _num(rec.ceiling),
        "total_rate": _rate(rec.total_rate),
        "crawl_delay_s": _num(rec.crawl_delay_s) if learnt else None,
        "crawl_delay_learnt_at": iso(rec.crawl_delay_at) if learnt else None,
        "crawl_delay_expires_at": iso(rec.crawl_delay_until) if learnt else None,
        "total_limit": None if limit is None else _rate(limit.rate),
        "total_limit_source": None if limit is None else limit.source,
        "next_slot_at": None if limit is None else iso(rec.next_at),
        "proxies": {
            pid: {
                "rate": _num(p.rate),
                "ceiling": _num(p.ceiling),
                "answer_s": _num(p.answer_s),
                "next_at": iso(p.next_at),
            }
            for pid, p in sorted(rec.proxies.items())
        },
    }


def list_hosts(deps: Deps) -> dict[str, Any]:
    now = deps.clock.now()
    return {"hosts": [host_view(rec, now) for _, rec in sorted(deps.hosts.hosts().items())]}


def configure_host(deps: Deps, raw_host: str, req: HostConfigRequest) -> dict[str, Any]:
    host = _host(raw_host)
    now = deps.clock.now()
    deps.hosts.configure(host, HostConfig(req.rate, req.max_rate, req.total_rate), now)
    return host_view(deps.hosts.hosts().get(host) or HostRecord(host), now)


def forget_host(deps: Deps, raw_host: str) -> None:
    host = _host(raw_host)
    if not deps.hosts.forget(host):
        raise NotFound(f"the pool knows nothing of host {host}")
