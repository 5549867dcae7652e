"""What every use case receives: the ports and the settings (built once by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass, field

from scrapersky.domain.targets import TargetPolicy
from scrapersky.event_ports import EventPorts
from scrapersky.follow_ports import FollowStore
from scrapersky.host_ports import HostLimitBook
from scrapersky.kinds.registry import KindRegistry, default_registry
from scrapersky.ports import (
    BatchStore,
    Clock,
    Fetcher,
    ItemStore,
    ProxyPool,
    Sweeps,
    TenantStore,
    WorkQueue,
)
from scrapersky.profile_ports import CheckFetcher, SessionStore, TargetHistory
from scrapersky.result_ports import ResultStore
from scrapersky.settings import Settings
from scrapersky.sitemap_ports import DiscoveredUrls, ItemDocuments


@dataclass
class CallCounter:
    """AWS API calls made by this container's clients (for the AwsApiCalls metric)."""

    count: int = 0

    def __call__(self, **_: object) -> None:
        self.count += 1


@dataclass
class Deps:
    settings: Settings
    batches: BatchStore
    items: ItemStore
    pool: ProxyPool
    hosts: HostLimitBook
    tenants: TenantStore
    queue: WorkQueue
    fetcher: Fetcher
    clock: Clock
    sweeps: Sweeps
    documents: ItemDocuments  # the sitemap kind's units of work
    urls: DiscoveredUrls  # the URLs sitemap items discovered
    results: ResultStore
    events: EventPorts  # the events queue, webhooks, EventBridge, webhook secrets, stopping a batch
    follow: FollowStore  # what options.follow keeps while following a sitemap batch into its child
    sessions: SessionStore  # the profile kind's cookie jars, per (tenant, proxy, host)
    targets: TargetHistory  # each profile target's history, written with its item's end
    check_fetcher: CheckFetcher  # a profile check's fetch, with its session's cookies
    api_calls: CallCounter = field(default_factory=CallCounter)
    kinds: KindRegistry = field(default_factory=default_registry)

    @property
    def policy(self) -> TargetPolicy:
        return TargetPolicy(allow_private=self.settings.allow_private_targets, any_port=self.settings.any_target_port)
