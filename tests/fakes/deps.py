"""Deps built from fakes, for unit tests of the use cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapersky.services.context import Deps
from scrapersky.settings import Settings

from tests.fakes.batches import FakeBatchStore
from tests.fakes.clock import FakeClock
from tests.fakes.documents import FakeDiscoveredUrls, FakeItemDocuments
from tests.fakes.edges import FakeFetcher, FakeQueue, FakeTenantStore
from tests.fakes.events import FakeEventPorts, make_event_ports
from tests.fakes.follow import FakeFollowStore
from tests.fakes.items import FakeItemStore
from tests.fakes.profiles import FakeCheckFetcher, FakeSessionStore, FakeTargetHistory
from tests.fakes.proxies import FakeHostBook, FakeProxyPool
from tests.fakes.results import FakeResultStore
from tests.fakes.sweeps import FakeSweeps

DUMMY_SETTINGS: dict[str, Any] = {
    "batches_table": "test-batches",
    "proxies_table": "test-proxies",
    "tenants_table": "test-tenants",
    "fanout_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/test-fanout",
    "work_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/test-work",
    "results_bucket": "test-results",
    "events_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/test-events",
    "events_dlq_url": "https://sqs.us-east-1.amazonaws.com/123456789012/test-events-dlq",
}


def make_settings(**overrides: Any) -> Settings:
    """Settings with the required table names and queue URLs filled in; any field can be overridden."""
    return Settings(**{**DUMMY_SETTINGS, **overrides})


@dataclass
class FakeDeps(Deps):
    """Deps whose ports are typed as the fakes, so tests reach their helpers without casts."""

    batches: FakeBatchStore
    items: FakeItemStore
    pool: FakeProxyPool
    hosts: FakeHostBook
    tenants: FakeTenantStore
    queue: FakeQueue
    fetcher: FakeFetcher
    clock: FakeClock
    sweeps: FakeSweeps
    documents: FakeItemDocuments
    urls: FakeDiscoveredUrls
    results: FakeResultStore
    events: FakeEventPorts
    follow: FakeFollowStore
    sessions: FakeSessionStore
    targets: FakeTargetHistory
    check_fetcher: FakeCheckFetcher


def make_deps(
    *, settings: Settings | None = None, clock: FakeClock | None = None, proxies: int = 0, **overrides: Any
) -> FakeDeps:
    """Every port faked and wired together: the item store counts on the batch store's shards, the pool paces
    by the host book, the fetcher takes its time on the clock. `proxies` adds that many proxies p_1..p_n;
    other keyword arguments override settings fields (`make_deps(lease_seconds=30)`)."""
    settings = settings or make_settings(**overrides)
    clock = clock or FakeClock()
    batches = FakeBatchStore()
    book = FakeHostBook(default_rate=settings.default_host_rate)
    pool = FakeProxyPool(book, quarantine_after=settings.quarantine_after, no_proxy_retry_s=settings.no_proxy_retry_s)
    pool.add_proxies(proxies, clock.now())
    pool.calls.clear()
    tenants = FakeTenantStore()
    items = FakeItemStore(batches)
    return FakeDeps(
        settings=settings,
        batches=batches,
        items=items,
        pool=pool,
        hosts=book,
        tenants=tenants,
        queue=FakeQueue(),
        fetcher=FakeFetcher(clock=clock),
        clock=clock,
        sweeps=FakeSweeps(batches),
        documents=FakeItemDocuments(),
        urls=FakeDiscoveredUrls(),
        results=FakeResultStore(),
        events=make_event_ports(batches, tenants),
        follow=FakeFollowStore(batches),
        sessions=FakeSessionStore(),
        targets=FakeTargetHistory(items),
        check_fetcher=FakeCheckFetcher(),
    )
