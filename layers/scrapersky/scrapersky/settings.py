"""Settings parsed once from the environment (template.yaml Globals and function Variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field


class Settings(BaseModel):
    batches_table: str = "scrapersky-batches"
    proxies_table: str = "scrapersky-proxies"
    tenants_table: str = "scrapersky-tenants"
    fanout_queue_url: str = ""
    work_queue_url: str = ""
    allow_private_targets: bool = False
    any_target_port: bool = False
    lease_seconds: float = Field(default=90.0, gt=0)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    work_max_receive_count: int = 50  # the work queue's redrive maxReceiveCount
    chunk_items: int = 100
    first_chunk_items: int = 10  # a small first fan-out chunk: the first results come sooner
    counter_shards_max: int = 16
    scrape_budget_s: float = 20.0
    quarantine_after: int = 3
    pacing_max_wait_s: float = 1.0  # a worker waits in-process for a pacing slot opening this soon
    default_host_rate: float = 1.0  # requests/s per proxy for a host we know nothing about yet
    verify_after_s: float = 900.0  # probe a proxy before use when its last success is older than this
    no_proxy_retry_s: float = 30.0  # how soon to look again when the pool has no usable proxy at all
    items_per_minute_estimate: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        fields = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        return cls.model_validate(fields)
