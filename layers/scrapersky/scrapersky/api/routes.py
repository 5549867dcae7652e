"""Route definitions, one Router per Lambda function. Each route parses, calls one use case, answers."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from scrapersky.api import responses as r
from scrapersky.api.resolver import admin_only, caller, deps_of, json_response, openapi_json
from scrapersky.models import (
    CreateBatchRequest,
    CreateProxyRequest,
    CreateTenantRequest,
    HostConfigRequest,
    ScrapeRequest,
)
from scrapersky.services import admin, batches, scrape

ItemStatusQ = Literal["pending", "in_progress", "succeeded", "failed", "cancelled"]
BatchStatusQ = Literal["queued", "pending", "processing", "completed", "partial", "failed", "cancelled"]

batches_router = Router()
status_router = Router()
scrape_router = Router()
admin_router = Router()
admin_router.use(middlewares=[admin_only])  # every admin route needs an admin key: see admin_only


@batches_router.post(
    "/batches", summary="Create a batch", responses=r.responses(201, r.CreatedBatch, "Batch created", r.WITH_BODY)
)
def create_batch(body: Annotated[CreateBatchRequest, Body()]):
    who = caller(batches_router)
    return json_response(201, batches.create_batch(deps_of(batches_router), who["tenant_id"], body))


@batches_router.post(
    "/batches/<batch_id>/start",
    summary="Start a queued batch",
    responses=r.responses(202, r.StartedBatch, "Started", (*r.AUTH, 404, 409)),
)
def start_batch(batch_id: str):
    who = caller(batches_router)
    return json_response(202, batches.start_batch(deps_of(batches_router), who["tenant_id"], batch_id))


@batches_router.post(
    "/batches/<batch_id>/cancel",
    summary="Cancel a batch",
    responses=r.responses(202, r.CancelledBatch, "Cancelled", (*r.AUTH, 404, 409)),
)
def cancel_batch(batch_id: str):
    who = caller(batches_router)
    return json_response(202, batches.cancel_batch(deps_of(batches_router), who["tenant_id"], batch_id))


@status_router.get(
    "/batches",
    summary="List the tenant's batches, newest first",
    responses=r.responses(200, r.BatchList, "The batches, newest first"),
)
def list_batches(
    status: Annotated[BatchStatusQ | None, Query()] = None,
    group: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    who = caller(status_router)
    return json_response(
        200, batches.list_batches(deps_of(status_router), who["tenant_id"], status, group, limit, cursor)
    )


@status_router.get(
    "/batches/<batch_id>",
    summary="Progress of one batch (O(1))",
    responses=r.responses(200, r.BatchView, "The batch", (*r.AUTH, 404)),
)
def get_batch(batch_id: str):
    who = caller(status_router)
    return json_response(200, batches.get_batch(deps_of(status_router), who["tenant_id"], batch_id))


@status_router.get(
    "/batches/<batch_id>/items",
    summary="Items of a batch with their results",
    responses=r.responses(200, r.ItemList, "A page of items", (*r.AUTH, 404)),
)
def list_items(
    batch_id: str,
    status: Annotated[ItemStatusQ | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    who = caller(status_router)
    return json_response(
        200, batches.list_items(deps_of(status_router), who["tenant_id"], batch_id, status, limit, cursor)
    )


@status_router.get(
    "/health", summary="Liveness (no auth)", security=[], responses=r.responses(200, r.Health, "Alive", r.BASE)
)
def health():
    return json_response(200, {"status": "ok"})


@status_router.get(
    "/openapi.json",
    summary="This API's OpenAPI document",
    security=[],
    responses={
        200: {"description": "OpenAPI 3 document", "content": {r.JSON: {"schema": {"type": "object"}}}},
        **r.error_responses(r.BASE),
    },
)
def openapi():
    return Response(status_code=200, content_type="application/json", body=openapi_json())


@scrape_router.post(
    "/scrape",
    summary="Check one item synchronously",
    responses=r.responses(200, r.ItemView, "The item, succeeded or failed", (*r.WITH_BODY, 503)),
)
def scrape_one(body: Annotated[ScrapeRequest, Body()]):
    caller(scrape_router)
    return json_response(200, scrape.scrape(deps_of(scrape_router), body))


@admin_router.post(
    "/tenants",
    summary="Create a tenant and its API key (shown once)",
    responses=r.responses(201, r.CreatedTenant, "Tenant created", r.WITH_BODY),
)
def create_tenant(body: Annotated[CreateTenantRequest, Body()]):
    return json_response(201, admin.create_tenant(deps_of(admin_router), body))


@admin_router.post(
    "/proxies", summary="Register a proxy", responses=r.responses(201, r.CreatedProxy, "Registered", r.WITH_BODY)
)
def add_proxy(body: Annotated[CreateProxyRequest, Body()]):
    return json_response(201, admin.add_proxy(deps_of(admin_router), body))


@admin_router.get(
    "/proxies",
    summary="The proxy pool and each proxy's state",
    responses=r.responses(200, r.ProxyList, "The pool"),
)
def list_proxies():
    return json_response(200, admin.list_proxies(deps_of(admin_router)))


@admin_router.delete(
    "/proxies/<proxy_id>", summary="Remove a proxy", responses=r.responses(204, None, "Removed", (*r.AUTH, 404))
)
def delete_proxy(proxy_id: str):
    admin.delete_proxy(deps_of(admin_router), proxy_id)
    return Response(status_code=204, body="")


@admin_router.get(
    "/hosts",
    summary="Each host's pacing: configured rate and cap, and what the pool learnt",
    responses=r.responses(200, r.HostList, "Every host the pool knows"),
)
def list_hosts():
    return json_response(200, admin.list_hosts(deps_of(admin_router)))


@admin_router.put(
    "/hosts/<host>",
    summary="Configure a host's pacing: start rate and hard cap per proxy",
    responses=r.responses(200, r.HostView, "The host as now configured", r.WITH_BODY),
)
def configure_host(host: str, body: Annotated[HostConfigRequest, Body()]):
    return json_response(200, admin.configure_host(deps_of(admin_router), host, body))


@admin_router.delete(
    "/hosts/<host>",
    summary="Forget a host: its configuration and everything learnt of it",
    responses=r.responses(204, None, "Forgotten", (*r.AUTH, 404)),
)
def forget_host(host: str):
    admin.forget_host(deps_of(admin_router), host)
    return Response(status_code=204, body="")
