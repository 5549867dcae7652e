"""The composition root: builds the real adapters once per cold start and hands them to the use cases."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

from scrapersky import faults
from scrapersky.adapters.dynamo_batches import DynamoBatchStore
from scrapersky.adapters.dynamo_documents import DynamoItemDocuments
from scrapersky.adapters.dynamo_follow import DynamoFollowStore
from scrapersky.adapters.dynamo_hosts import DynamoHostBook
from scrapersky.adapters.dynamo_items import DynamoItemStore
from scrapersky.adapters.dynamo_proxies import DynamoProxyPool
from scrapersky.adapters.dynamo_sessions import DynamoSessionStore
from scrapersky.adapters.dynamo_stops import DynamoBatchStops
from scrapersky.adapters.dynamo_sweeps import DynamoSweeps
from scrapersky.adapters.dynamo_targets import DynamoTargetHistory
from scrapersky.adapters.dynamo_tenants import DynamoTenantStore, DynamoWebhookSecrets
from scrapersky.adapters.dynamo_urls import DynamoDiscoveredUrls
from scrapersky.adapters.eventbridge_bus import EventBridgeBus
from scrapersky.adapters.http_check import CheckingFetcher
from scrapersky.adapters.http_webhooks import RequestsWebhookSender
from scrapersky.adapters.s3_results import S3ResultStore
from scrapersky.adapters.sqs_events import SqsEventQueue
from scrapersky.adapters.sqs_queue import SqsWorkQueue
from scrapersky.domain.pacing import PacingPolicy
from scrapersky.domain.targets import TargetPolicy
from scrapersky.event_ports import EventPorts
from scrapersky.ports import SystemClock
from scrapersky.services.context import CallCounter, Deps
from scrapersky.settings import Settings

_AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32, connect_timeout=5, read_timeout=30
)


def build(settings: Settings | None = None, session: Any = None) -> Deps:
    settings = settings or Settings.from_env()
    session = session or boto3.session.Session()
    ddb = session.client("dynamodb", config=_AWS_CONFIG)
    sqs = session.client("sqs", config=_AWS_CONFIG)
    s3 = session.client("s3", config=_AWS_CONFIG.merge(Config(signature_version="s3v4")))
    bus = session.client("events", config=_AWS_CONFIG)
    counter = CallCounter()
    injector = faults.from_env()  # only a local chaos run sets SCRAPERSKY_FAULTS; never the deployed template
    for client in (ddb, sqs, s3, bus):
        client.meta.events.register("before-call.*.*", counter)
        if injector is not None:
            injector.register(client)
    policy = TargetPolicy(allow_private=settings.allow_private_targets, any_port=settings.any_target_port)
    hosts = DynamoHostBook(settings.proxies_table, ddb)
    items = DynamoItemStore(settings.batches_table, ddb, retention_s=settings.retention_s)
    fetcher = CheckingFetcher(policy, settings.connect_timeout_s, settings.read_timeout_s)
    return Deps(
        settings=settings,
        batches=DynamoBatchStore(
            settings.batches_table, ddb, retention_s=settings.retention_s, max_shards=settings.counter_shards_max
        ),
        items=items,
        pool=DynamoProxyPool(
            settings.proxies_table,
            ddb,
            quarantine_after=settings.quarantine_after,
            no_proxy_retry_s=settings.no_proxy_retry_s,
            pacing=PacingPolicy(default_rate=settings.default_host_rate),
            hosts=hosts,
        ),
        hosts=hosts,
        tenants=DynamoTenantStore(settings.tenants_table, ddb),
        queue=SqsWorkQueue(settings.fanout_queue_url, settings.work_queue_url, sqs),
        fetcher=fetcher,
        clock=SystemClock(),
        sweeps=DynamoSweeps(settings.batches_table, ddb, retention_s=settings.retention_s),
        documents=DynamoItemDocuments(settings.batches_table, ddb, retention_s=settings.retention_s),
        urls=DynamoDiscoveredUrls(
            settings.batches_table, ddb, retention_s=settings.retention_s, concurrency=settings.url_write_concurrency
        ),
        results=S3ResultStore(settings.results_bucket, s3),
        events=EventPorts(
            queue=SqsEventQueue(settings.events_queue_url, settings.events_dlq_url, sqs),
            webhooks=RequestsWebhookSender(policy),
            bus=EventBridgeBus(bus),
            secrets=DynamoWebhookSecrets(settings.tenants_table, ddb),
            stops=DynamoBatchStops(settings.batches_table, ddb),
        ),
        follow=DynamoFollowStore(settings.batches_table, ddb, retention_s=settings.retention_s),
        sessions=DynamoSessionStore(settings.batches_table, ddb),
        targets=DynamoTargetHistory(settings.batches_table, ddb, items, retention_s=settings.retention_s),
        check_fetcher=fetcher,
        api_calls=counter,
    )


@functools.cache
def deps() -> Deps:
    """One Deps per Lambda container (cold start)."""
    return build()
