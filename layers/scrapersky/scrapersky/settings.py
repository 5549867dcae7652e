"""Settings parsed once from the environment (template.yaml Globals and function Variables).

Table names, queue URLs and the results bucket are required: a function missing one fails at cold start, not at its
first use.
Defaults agree with template.yaml's parameters; the settings are frozen once read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Required = Annotated[str, StringConstraints(min_length=1)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    batches_table: Required
    proxies_table: Required
    tenants_table: Required
    fanout_queue_url: Required
    work_queue_url: Required
    results_bucket: Required  # every function reads results: the status one presigns, the fan-out one writes
    events_queue_url: Required  # a batch's end sends batch.finished (every function that can end a batch)
    events_dlq_url: Required  # where a webhook given up after a day goes (the events consumer)
    allow_private_targets: bool = False
    any_target_port: bool = False
    lease_seconds: float = Field(default=90.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=15.0, gt=0)
    work_max_receive_count: int = Field(default=8, ge=4)  # the template's WorkMaxReceiveCount default
    chunk_items: int = Field(default=100, ge=1)
    first_chunk_items: int = Field(default=10, ge=1)  # a small first fan-out chunk: the first results come sooner
    counter_shards_max: int = Field(default=16, ge=1)
    counter_shard_items: int = Field(default=250, ge=1)  # items per counter shard (write rate on one shard row)
    scrape_budget_s: float = Field(default=20.0, gt=0)  # the template sets SCRAPE_BUDGET_S on the scrape function
    quarantine_after: int = Field(default=3, ge=1)
    pacing_max_wait_s: float = Field(default=1.0, ge=0)  # a worker waits in-process for a slot opening this soon
    default_host_rate: float = Field(default=1.0, gt=0)  # requests/s per proxy for a host we know nothing about
    verify_after_s: float = Field(default=900.0, gt=0)  # probe a proxy before use when its last success is older
    no_proxy_retry_s: float = Field(default=30.0, gt=0)  # how soon to look again when the pool has no usable proxy
    items_per_minute_estimate: float = Field(default=120.0, gt=0)
    results_url_ttl_s: int = Field(default=14_400, ge=3600, le=604_800)  # presigned results URLs: 4 h
    export_part_bytes: int = Field(default=8 * 2**20, ge=1)  # S3 wants >= 5 MiB for every part but the last
    webhook_first_retry_s: float = Field(default=30.0, gt=0, le=60)  # a failed webhook try is retried this soon
    robots_user_agent: str = "ScraperSky"  # the user agent whose robots.txt rules options.follow obeys
    follow_page_urls: int = Field(default=2000, ge=1)  # parent URLs one follow message judges (~1 s of claims)
    follow_send_chunks: int = Field(default=20, ge=1)  # kept child chunks one follow message sends
    url_write_concurrency: int = Field(default=8, ge=1)  # transactions of discovered URLs one document runs at once
    retention_days: float = Field(default=30, gt=0)  # the template's RetentionDays: batches, items, results

    def hold_s(self, timeout_s: float) -> float:
        """How long a delivery holds its claim and its proxy lease for a fetch of `timeout_s`: the slot wait, a
        proxy check, the fetch's total deadline and time to record it. A killed worker's item and proxy are free
        again that soon (never later than lease_seconds)."""
        return min(self.lease_seconds, timeout_s + self.pacing_max_wait_s + self.connect_timeout_s + 10.0)

    @property
    def retention_s(self) -> float:
        return self.retention_days * 86_400

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads the fields from upper-case environment variables; raises ValidationError when one is missing."""
        env = os.environ if env is None else env
        fields = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        return cls.model_validate(fields)
