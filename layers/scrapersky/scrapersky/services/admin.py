"""Tenants and proxies (admin API), and the authorizer's key check."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from urllib.parse import unquote, urlsplit

from scrapersky.domain.progress import iso
from scrapersky.domain.targets import InvalidTarget, host_key
from scrapersky.errors import InvalidInput, NotFound
from scrapersky.models import CreateProxyRequest, CreateTenantRequest, HostConfigRequest
from scrapersky.services.context import Deps


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_tenant(
    deps: Deps, req: CreateTenantRequest, api_key: str | None = None, tenant_id: str | None = None
) -> dict[str, Any]:
    """The key is returned once and stored only as its hash."""
    key = api_key or f"sk_{secrets.token_urlsafe(32)}"
    tid = tenant_id or f"t_{secrets.token_hex(8)}"
    deps.tenants.put_tenant(tid, req.name, req.role, hash_key(key), deps.clock.now())
    return {"tenant_id": tid, "name": req.name, "role": req.role, "api_key": key}


def authenticate(deps: Deps, authorization: str | None) -> dict[str, Any] | None:
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


def proxy_view(deps: Deps, rec: dict[str, Any], now: float) -> dict[str, Any]:
    paces = deps.pool.paces(rec)
    cooldowns = {host: iso(until) for host, until in deps.pool.cooldowns(rec, now).items()}
    state = rec.get("state", "available")
    if state == "available" and cooldowns:
        state = "cooling"
    return {
        "proxy_id": rec["proxy_id"],
        "endpoint": rec.get("endpoint"),
        "labels": rec.get("labels", {}),
        "state": state,
        "leased": float(rec.get("lease_until", 0)) > now,
        "cooldowns": cooldowns,
        "succeeded": int(rec.get("succeeded", 0)),
        "failed": int(rec.get("failed", 0)),
        "rate_limited": int(rec.get("rate_limited", 0)),
        "last_used_at": iso(rec.get("last_used_at")),
        "consecutive_errors": int(rec.get("consecutive_errors", 0)),
        "pace": {host: round(rate, 3) for host, rate in paces.items()},
    }


def list_proxies(deps: Deps) -> dict[str, Any]:
    now = deps.clock.now()
    return {"proxies": [proxy_view(deps, p, now) for p in sorted(deps.pool.list_all(), key=lambda p: p["proxy_id"])]}


def delete_proxy(deps: Deps, proxy_id: str) -> None:
    if not deps.pool.delete(proxy_id):
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


def host_view(host: str, rec: dict[str, Any]) -> dict[str, Any]:
    def num(v: Any) -> float | None:
        return None if v is None else round(float(v), 3)

    return {
        "host": host,
        "rate": num(rec.get("start_rate")),
        "max_rate": num(rec.get("max_rate")),
        "learnt_ceiling": num(rec.get("ceiling")),
        "proxies": {
            pid: {
                "rate": num(p["rate"]),
                "ceiling": num(p.get("ceiling")),
                "answer_s": num(p.get("answer_s")),
                "next_at": iso(p.get("next_at")),
            }
            for pid, p in sorted(rec.get("proxies", {}).items())
        },
    }


def list_hosts(deps: Deps) -> dict[str, Any]:
    return {"hosts": [host_view(h, rec) for h, rec in sorted(deps.pool.hosts().items())]}


def configure_host(deps: Deps, raw_host: str, req: HostConfigRequest) -> dict[str, Any]:
    host = _host(raw_host)
    deps.pool.configure_host(host, req.rate, req.max_rate, deps.clock.now())
    return host_view(host, deps.pool.hosts().get(host, {}))


def forget_host(deps: Deps, raw_host: str) -> None:
    host = _host(raw_host)
    if not deps.pool.forget_host(host):
        raise NotFound(f"the pool knows nothing of host {host}")
