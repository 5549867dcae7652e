"""What every use case receives: the ports and the settings (built once by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass

from scrapersky.domain.targets import TargetPolicy
from scrapersky.ports import BatchStore, Clock, Fetcher, ProxyPool, TenantStore, WorkQueue
from scrapersky.settings import Settings


@dataclass
class Deps:
    settings: Settings
    store: BatchStore
    pool: ProxyPool
    tenants: TenantStore
    queue: WorkQueue
    fetcher: Fetcher
    clock: Clock

    @property
    def policy(self) -> TargetPolicy:
        return TargetPolicy(allow_private=self.settings.allow_private_targets, any_port=self.settings.any_target_port)
