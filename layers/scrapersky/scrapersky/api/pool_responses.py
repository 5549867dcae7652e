"""Answer bodies of the admin pool routes (proxies and hosts), for the OpenAPI document only (see responses.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scrapersky.api.doc_model import DocModel


class CreatedProxy(DocModel):
    proxy_id: str
    endpoint: str = Field(description="masked: no credentials")


class ProxyView(DocModel):
    proxy_id: str
    endpoint: str | None
    labels: dict[str, str]
    state: Literal["available", "cooling", "quarantined", "disabled"]
    leased: bool
    cooldowns: dict[str, str | None] = Field(description="host -> until when this proxy rests for it")
    succeeded: int
    failed: int
    rate_limited: int
    last_used_at: str | None
    consecutive_errors: int
    pace: dict[str, float] = Field(description="host -> requests/s this proxy is paced at")
    sessions: int = Field(description="open profile sessions (cookie jars) bound to this proxy: a count only")


class ProxyList(DocModel):
    proxies: list[ProxyView]


class HostProxyPace(DocModel):
    rate: float | None
    ceiling: float | None
    answer_s: float | None
    next_at: str | None


class HostView(DocModel):
    host: str
    rate: float | None = Field(description="configured start rate per proxy (requests/s)")
    max_rate: float | None = Field(description="configured hard cap per proxy (requests/s)")
    learnt_ceiling: float | None
    total_rate: float | None = Field(description="configured cap summed over every proxy (requests/s)")
    crawl_delay_s: float | None = Field(
        description="seconds between two requests its robots.txt asked for our user agent (learnt; null: none, or "
        "expired a day after the robots.txt was last read)"
    )
    crawl_delay_learnt_at: str | None
    crawl_delay_expires_at: str | None
    total_limit: float | None = Field(
        description="requests/s to the host across the pool now in force: the stricter of total_rate and "
        "1/crawl_delay_s (null: no total limit)"
    )
    total_limit_source: Literal["total_rate", "crawl_delay"] | None
    next_slot_at: str | None = Field(description="with a total limit: the earliest start of the host's next request")
    proxies: dict[str, HostProxyPace]


class HostList(DocModel):
    hosts: list[HostView]
