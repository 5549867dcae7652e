"""Lambda entry points assembled once: Powertools decorators around the use cases, deps from the root.

Each functions/<name>/app.py imports the one it serves, so handlers stay a line and the wiring is tested here.
A handler is built when its function imports it (PEP 562 `__getattr__`, from the tables below), at cold start as
before, but importing only what that function serves: the worker never loads the API's resolver and OpenAPI
models, an HTTP function never the SQS batch processor (bench.cold_start measures it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from scrapersky.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from scrapersky.services.context import Deps

Handler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]

# handler -> what it serves; each is built by `__getattr__` when its function's app.py imports it
HTTP_HANDLERS = {  # handler -> its routers in scrapersky.api.routes
    "batches_handler": ("batches_router", "tenant_router"),  # the tenant's own routes: any tenant's key
    "status_handler": ("status_router",),
    "scrape_handler": ("scrape_router",),
    "admin_handler": ("admin_router",),
}
SQS_HANDLERS = {  # handler -> (its record handler below, whether the records' visibility is kept up)
    "worker_handler": ("_work_records", True),
    "fanout_handler": ("_fanout_records", False),
    "dead_letter_handler": ("_dead_letter_records", False),
    "events_handler": ("_event_records", False),
}


def __getattr__(name: str) -> Handler:
    if name in HTTP_HANDLERS:
        from scrapersky.api import routes

        handler = http_handler(*(getattr(routes, r) for r in HTTP_HANDLERS[name]))
    elif name in SQS_HANDLERS:
        records, heartbeat = SQS_HANDLERS[name]
        handler = _sqs_handler(globals()[records], heartbeat=heartbeat)
    elif name == "authorizer_handler":
        handler = _authorizer()
    elif name == "maintenance_handler":
        handler = _maintenance_handler
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The composition root loads at cold start as before, but after the handler: Powertools' batch utility, when
    # it finds pydantic already loaded, builds pydantic models of every event source (SQS, Kinesis, Kafka, ...;
    # ~18 ms) that we never use.
    from scrapersky import bootstrap  # noqa: F401

    globals()[name] = handler  # built once per container
    return handler


def _deps() -> Deps:
    from scrapersky import bootstrap

    return bootstrap.deps()


def http_handler(*routers: Any, deps_factory: Callable[[], Deps] = _deps) -> Handler:
    from aws_lambda_powertools.logging import correlation_paths

    from scrapersky.api.body import json_by_default, unreadable_body
    from scrapersky.api.resolver import make_resolver

    app = make_resolver(*routers)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        refused = unreadable_body(event)
        if refused is not None:
            return refused
        deps = deps_factory()
        calls_before = deps.api_calls.count
        app.append_context(deps=deps)
        response = app.resolve(json_by_default(event), context)
        metrics.add_metric(name="AwsApiCalls", unit=MetricUnit.Count, value=deps.api_calls.count - calls_before)
        return response

    return handler


def _sqs_handler(
    record_handler_factory: Callable[[Deps], Callable[[SQSRecord], Any]],
    deps_factory: Callable[[], Deps] = _deps,
    heartbeat: bool = False,
) -> Handler:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        deps = deps_factory()
        if not event.get("Records"):  # a warm-up (devstack/warmup.py): code and clients are loaded, there is no work
            record_handler_factory(deps)
            return {"batchItemFailures": []}
        calls_before = deps.api_calls.count
        conflicts_before, leases_before = _pool_stat(deps, "conflicts"), _pool_stat(deps, "leases")
        with _heartbeat(deps, event, context, heartbeat) as deps:
            response = process_partial_response(
                event=event, record_handler=record_handler_factory(deps), processor=processor, context=context
            )
        metrics.add_metric(name="AwsApiCalls", unit=MetricUnit.Count, value=deps.api_calls.count - calls_before)
        metrics.add_metric(
            name="LeaseConflicts", unit=MetricUnit.Count, value=_pool_stat(deps, "conflicts") - conflicts_before
        )
        metrics.add_metric(name="Leases", unit=MetricUnit.Count, value=_pool_stat(deps, "leases") - leases_before)
        metrics.add_metric(name="MessagesHandled", unit=MetricUnit.Count, value=len(event.get("Records", [])))
        return dict(response)

    return handler


@contextmanager
def _heartbeat(deps: Deps, event: dict[str, Any], context: LambdaContext, on: bool) -> Iterator[Deps]:
    """The work queue's records stay hidden while the invocation works on them (see scrapersky.heartbeat): the
    use cases see the queue through the heartbeat, so a deferral's visibility change ends that record's beats."""
    from scrapersky.heartbeat import Heartbeat, HeartbeatQueue

    if not on:
        yield deps
        return
    remaining = context.get_remaining_time_in_millis() if context else None
    beat = Heartbeat.from_env(deps.queue, remaining)
    beat.start(r.get("receiptHandle", "") for r in event.get("Records", []))
    try:
        yield dataclasses.replace(deps, queue=HeartbeatQueue(deps.queue, beat))
    finally:
        beat.stop()


def _release(deps: Deps, record: SQSRecord) -> None:
    from scrapersky.heartbeat import HeartbeatQueue

    if isinstance(deps.queue, HeartbeatQueue):
        deps.queue.heartbeat.release(record.receipt_handle)


def _pool_stat(deps: Deps, name: str) -> int:
    return deps.pool.stats.get(name, 0)


def _work_records(deps: Deps) -> Callable[[SQSRecord], Any]:
    from scrapersky.models import WorkMessage
    from scrapersky.services import worker

    cache = worker.InvocationCache()

    def on_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> str:
        msg = WorkMessage.model_validate_json(record.body)
        logger.append_keys(batch_id=msg.batch_id, item_seq=msg.seq, tenant_id=msg.tenant_id)
        remaining = lambda_context.get_remaining_time_in_millis() if lambda_context else None
        receives = int(record.attributes.approximate_receive_count or 1)
        try:
            first = record.attributes.approximate_first_receive_timestamp
            first_at = int(first) / 1000 if first else None
            result = worker.handle_record(deps, msg, record.receipt_handle, receives, cache, remaining, first_at)
        except worker.Deferred as d:
            _emit(d.metrics)
            # the host goes to the log (the dashboard counts 429s per host from it), never to a metric dimension:
            # tenants choose hosts, so their number (and the metrics bill) would have no bound
            logger.info("item deferred", extra={"seconds": round(d.seconds, 2), "reason": d.reason, "host": d.host})
            raise  # its visibility was set through the heartbeat, which beats for it no more
        except Exception:
            _release(deps, record)  # it comes back for a retry within the short visibility timeout
            raise
        _emit(result.metrics)
        logger.info("item processed", extra={"outcome": result.outcome})
        return result.outcome

    return on_record


def _emit(values: dict[str, float]) -> None:
    names = {
        "succeeded": "ItemsSucceeded",
        "failed": "ItemsFailed",
        "retried": "ItemsRetried",
        "rate_limited": "RateLimited",
        "deferred": "ItemsDeferred",
    }
    for key, value in values.items():
        if key in names:
            metrics.add_metric(name=names[key], unit=MetricUnit.Count, value=value)
    if "fetch_ms" in values:
        metrics.add_metric(name="FetchLatency", unit=MetricUnit.Milliseconds, value=values["fetch_ms"])
    if "lease_wait_ms" in values:
        metrics.add_metric(name="LeaseWait", unit=MetricUnit.Milliseconds, value=values["lease_wait_ms"])


def _fanout_records(deps: Deps) -> Callable[[SQSRecord], Any]:
    from scrapersky.models import FanoutMessage
    from scrapersky.services import fanout

    def on_record(record: SQSRecord) -> str:
        msg = FanoutMessage.model_validate_json(record.body)
        logger.append_keys(batch_id=msg.batch_id, tenant_id=msg.tenant_id)
        return fanout.handle(deps, msg)

    return on_record


def _dead_letter_records(deps: Deps) -> Callable[[SQSRecord], Any]:
    from scrapersky.services import dead_letters

    def on_record(record: SQSRecord) -> str:
        outcome = dead_letters.handle(deps, record.body)
        logger.warning("dead letter settled", extra={"outcome": outcome, "message_id": record.message_id})
        metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=1)
        return outcome

    return on_record


def _event_records(deps: Deps) -> Callable[[SQSRecord], Any]:
    from scrapersky.models import EventMessage
    from scrapersky.services import event_delivery

    def on_record(record: SQSRecord) -> str:
        msg = EventMessage.model_validate_json(record.body)
        logger.append_keys(batch_id=msg.batch_id, tenant_id=msg.tenant_id, event_id=msg.event_id)
        outcome = event_delivery.handle(deps, msg)
        logger.info("event handled", extra={"event": msg.event, "outcome": outcome, "attempt": msg.attempt})
        if outcome == "given_up":
            metrics.add_metric(name="WebhooksGivenUp", unit=MetricUnit.Count, value=1)
        return outcome

    return on_record


def _authorizer() -> Handler:
    from aws_lambda_powertools.utilities.data_classes import event_source
    from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
        APIGatewayAuthorizerRequestEvent,
        APIGatewayAuthorizerResponse,
    )

    from scrapersky.services import admin

    @event_source(data_class=APIGatewayAuthorizerRequestEvent)
    def authorizer_handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
        header = event.headers.get("Authorization") or event.headers.get("authorization")
        who = admin.authenticate(_deps(), header)
        if who is None:
            raise Exception("Unauthorized")  # API Gateway answers 401 {"message": "Unauthorized"}
        arn = event.parsed_arn
        policy = APIGatewayAuthorizerResponse(
            principal_id=who.tenant_id,
            region=arn.region,
            aws_account_id=arn.aws_account_id,
            api_id=arn.api_id,
            stage=arn.stage,
            context={"tenant_id": who.tenant_id, "role": who.role},
        )
        policy.allow_all_routes()  # the result is cached per key, so it must hold for every route
        return policy.asdict()

    return authorizer_handler


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def _maintenance_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from scrapersky.services import maintenance

    deps = _deps()
    report = maintenance.run(deps)
    for state, count in report["proxies"].items():
        metrics.add_metric(name=f"Proxies{state.title()}", unit=MetricUnit.Count, value=count)
    logger.info("maintenance", extra={"report": json.dumps(report)})
    return report
