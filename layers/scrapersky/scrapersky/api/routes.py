"""Route definitions, one Router per Lambda function. Each route parses, calls one use case, answers.
What each route documents (summary, answers) lives in responses.py."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from scrapersky.api.resolver import admin_only, deps_of, json_response, openapi_json, tenant_of
from scrapersky.api.responses import doc
from scrapersky.api.target_responses import target_doc
from scrapersky.models import (
    BatchStatus,
    CreateBatchRequest,
    CreateProxyRequest,
    CreateTenantRequest,
    HostConfigRequest,
    ItemStatus,
    ScrapeRequest,
)
from scrapersky.services import admin, batches, profile_scrape, scrape, targets, urls

Cursor = Annotated[str | None, Query(max_length=2048)]

batches_router = Router()
status_router = Router()
scrape_router = Router()
admin_router = Router()
admin_router.use(middlewares=[admin_only])  # every admin route needs an admin key: see admin_only
tenant_router = Router()  # the calling tenant's own record (served by the batches function: any tenant's key)


def _no_content() -> Response:
    return Response(status_code=204, body="")


@batches_router.post("/batches", **doc("create_batch"))
def create_batch(body: Annotated[CreateBatchRequest, Body()]):
    return json_response(201, batches.create_batch(deps_of(batches_router), tenant_of(batches_router), body))


@batches_router.post("/batches/<batch_id>/start", **doc("start_batch"))
def start_batch(batch_id: str):
    return json_response(202, batches.start_batch(deps_of(batches_router), tenant_of(batches_router), batch_id))


@batches_router.post("/batches/<batch_id>/cancel", **doc("cancel_batch"))
def cancel_batch(batch_id: str):
    return json_response(202, batches.cancel_batch(deps_of(batches_router), tenant_of(batches_router), batch_id))


@status_router.get("/batches", **doc("list_batches"))
def list_batches(
    status: Annotated[BatchStatus | None, Query()] = None,
    group: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
):
    found = batches.list_batches(deps_of(status_router), tenant_of(status_router), status, group, limit, cursor)
    return json_response(200, found)


@status_router.get("/batches/<batch_id>", **doc("get_batch"))
def get_batch(batch_id: str):
    return json_response(200, batches.get_batch(deps_of(status_router), tenant_of(status_router), batch_id))


@status_router.get("/batches/<batch_id>/items", **doc("list_items"))
def list_items(
    batch_id: str,
    status: Annotated[ItemStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
):
    found = batches.list_items(deps_of(status_router), tenant_of(status_router), batch_id, status, limit, cursor)
    return json_response(200, found)


@status_router.get("/batches/<batch_id>/urls", **doc("list_urls"))
def list_urls(
    batch_id: str,
    item: Annotated[
        str | None,
        Query(max_length=2048, description="one item: its seq in the batch, or its value as /items shows it"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
):
    deps = deps_of(status_router)
    return json_response(200, urls.list_urls(deps, tenant_of(status_router), batch_id, item, limit, cursor))


@status_router.get("/checks/<name>/targets", **target_doc("list_targets"))
def list_targets(
    name: str,
    active: Annotated[bool | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
):
    deps = deps_of(status_router)
    return json_response(200, targets.list_targets(deps, tenant_of(status_router), name, active, limit, cursor))


@status_router.get("/checks/<name>/targets/<target>", **target_doc("get_target"))
def get_target(name: str, target: str):
    return json_response(200, targets.get_target(deps_of(status_router), tenant_of(status_router), name, target))


@status_router.get("/health", **doc("health"))
def health():
    return json_response(200, {"status": "ok"})


@status_router.get("/openapi.json", **doc("openapi"))
def openapi():
    return Response(status_code=200, content_type="application/json", body=openapi_json())


@tenant_router.get("/tenant", **doc("get_tenant"))
def get_tenant():
    return json_response(200, admin.get_tenant(deps_of(tenant_router), tenant_of(tenant_router)))


@tenant_router.post("/tenant/webhook-secret", **doc("rotate_webhook_secret"))
def rotate_webhook_secret():
    return json_response(200, admin.rotate_webhook_secret(deps_of(tenant_router), tenant_of(tenant_router)))


@scrape_router.post("/scrape", **doc("scrape"))
def scrape_one(body: Annotated[ScrapeRequest, Body()]):
    if body.kind == "profile":  # a check: the tenant's session and the target's history
        return json_response(200, profile_scrape.scrape_check(deps_of(scrape_router), tenant_of(scrape_router), body))
    tenant_of(scrape_router)  # a tenant's key is needed, whichever
    return json_response(200, scrape.scrape(deps_of(scrape_router), body))


@admin_router.post("/tenants", **doc("create_tenant"))
def create_tenant(body: Annotated[CreateTenantRequest, Body()]):
    return json_response(201, admin.create_tenant(deps_of(admin_router), body))


@admin_router.post("/proxies", **doc("add_proxy"))
def add_proxy(body: Annotated[CreateProxyRequest, Body()]):
    return json_response(201, admin.add_proxy(deps_of(admin_router), body))


@admin_router.get("/proxies", **doc("list_proxies"))
def list_proxies():
    return json_response(200, admin.list_proxies(deps_of(admin_router)))


@admin_router.delete("/proxies/<proxy_id>", **doc("delete_proxy"))
def delete_proxy(proxy_id: str):
    admin.delete_proxy(deps_of(admin_router), proxy_id)
    return _no_content()


@admin_router.get("/hosts", **doc("list_hosts"))
def list_hosts():
    return json_response(200, admin.list_hosts(deps_of(admin_router)))


@admin_router.put("/hosts/<host>", **doc("configure_host"))
def configure_host(host: str, body: Annotated[HostConfigRequest, Body()]):
    return json_response(200, admin.configure_host(deps_of(admin_router), host, body))


@admin_router.delete("/hosts/<host>", **doc("forget_host"))
def forget_host(host: str):
    admin.forget_host(deps_of(admin_router), host)
    return _no_content()
