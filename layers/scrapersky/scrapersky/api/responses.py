"""Answer bodies of the HTTP API, for the OpenAPI document only.

The services build the answers (dicts) and the routes send them as they are: these models describe those
shapes in `/openapi.json` through the route decorators' `responses=`; nothing validates or re-serialises an
answer with them. The integration tests check real answers against them, so a drift shows up there."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field

from scrapersky.api.doc_model import DocModel
from scrapersky.api.pool_responses import CreatedProxy, HostList, HostView, ProxyList
from scrapersky.models import BatchStatus, ItemView, RejectedItem

JSON = "application/json"


# ---- errors -------------------------------------------------------------------------------------------------
class ErrorDetail(DocModel):
    """One reason a request was refused: a field and its problem, or an item and why it was rejected."""

    field: str | None = Field(default=None, description="dotted path of the field, e.g. options.max_attempts")
    message: str | None = None
    type: str | None = Field(default=None, description="validation error type (request validation only)")
    item: str | None = Field(default=None, description="the rejected item (item validation only)")
    reason: str | None = None


class ErrorBody(DocModel):
    """Every 4xx/5xx answer."""

    message: str = Field(description="human readable")
    details: list[ErrorDetail] | None = Field(default=None, description="present on validation errors")


class BusyBody(ErrorBody):
    """503: no proxy was free within the call's time budget (the Retry-After header says the same)."""

    retry_after_s: int = Field(ge=1)


# ---- batches ------------------------------------------------------------------------------------------------
class CreatedBatch(DocModel):
    batch_id: str
    status: Literal["pending", "queued"] = Field(description="queued: start=false, or its group is busy")
    status_url: str
    total_items: int = Field(description="accepted items, after normalisation and de-duplication")
    rejected_items: list[RejectedItem] = Field(description="the first 100 rejected items, each with its reason")
    rejected_count: int = Field(description="how many items were rejected in all")
    duplicate_items: int
    created_at: str
    estimated_completion_time: str


class StartedBatch(DocModel):
    batch_id: str
    status: Literal["pending"]


class CancelledBatch(DocModel):
    batch_id: str
    status: Literal["cancelled"]


class ErrorSample(DocModel):
    item: str
    code: str
    message: str
    at: str


class BatchErrors(DocModel):
    by_code: dict[str, int] = Field(description="failed items by their final error code")
    sample: list[ErrorSample]


class FollowView(DocModel):
    """How a sitemap batch's URLs were followed into its child (exact once `state` is `done`)."""

    state: Literal["following", "done", "failed", "cancelled"] = Field(
        description="cancelled: the batch was cancelled before its child was created (then it has none)"
    )
    urls: int | None = Field(default=None, description="unique URLs that became child items")
    duplicates: int | None = Field(default=None, description="listings of a URL another item's listing had claimed")
    skipped_robots: int | None = None
    limit: int | None = None
    limit_reached: bool | None = Field(default=None, description="the child holds `limit` items: the rest left out")
    robots: Literal["obey", "ignore"] | None = None
    error: str | None = Field(default=None, description="why following failed (state failed)")


class BatchView(DocModel):
    """Progress of one batch, read in O(1) whatever its size."""

    batch_id: str
    kind: str
    group: str | None
    status: BatchStatus
    total_items: int
    succeeded: int
    failed: int
    cancelled: int
    in_progress: int
    pending: int
    retries: int
    progress_pct: float
    created_at: str | None
    started_at: str | None
    updated_at: str | None
    completed_at: str | None
    duration_s: float | None
    throughput_per_min: float | None
    estimated_completion_time: str | None
    errors: BatchErrors
    rejected_items: int = Field(description="how many items were rejected at creation")
    duplicate_items: int
    detected: int | None = Field(default=None, description="kind profile only: items whose state is present")
    options: dict[str, Any]
    reason: str | None = Field(default=None, description="why it stopped early: tolerated_failure_exceeded, else null")
    parent_batch_id: str | None = Field(default=None, description="a child batch: the sitemap batch it follows")
    child_batch_id: str | None = Field(
        default=None,
        description="a sitemap batch with options.follow: its child page batch, set before the batch ends (null"
        " while its URLs are collected, and for good when none was left to follow or it was cancelled first)",
    )
    skipped_robots: int | None = Field(
        default=None, description="options.follow: unique URLs robots.txt disallows, not followed (null: no follow)"
    )
    follow: FollowView | None = Field(default=None, description="options.follow: where following stands")
    results_url: str | None = Field(
        description="JSON Lines of every item (one line per item, with `seq`) once the batch ended and its export"
        " is published, else null; needs no Authorization header"
    )
    results_csv_url: str | None = Field(description="the same results as CSV with a header row")


class BatchList(DocModel):
    batches: list[BatchView]
    next_cursor: str | None


class ItemList(DocModel):
    items: list[ItemView]
    next_cursor: str | None


class DiscoveredUrlView(DocModel):
    url: str
    lastmod: str | None = Field(description="ISO 8601; YYYY and YYYY-MM as written; null when absent or unparseable")
    changefreq: str | None = Field(description="one of the seven sitemap values, or null")
    priority: float | None = Field(description="0..1, or null")
    sitemap: str = Field(description="the document that listed it")
    item: str = Field(description="the batch item (domain or sitemap URL) whose discovery found it")


class UrlList(DocModel):
    """The URLs a sitemap batch discovered, unique per item, in a stable order (item by item)."""

    urls: list[DiscoveredUrlView]
    next_cursor: str | None = Field(description="null at the end; a page may be short and still have one")


# ---- admin --------------------------------------------------------------------------------------------------
class ScrapedItem(ItemView):
    """POST /scrape: the item as /batches/{id}/items shows it; a sitemap item adds the URLs it found."""

    urls: list[DiscoveredUrlView] | None = Field(
        default=None, description="kind sitemap: the URLs found, in reading order (at most 1,000 of them)"
    )
    urls_truncated: bool | None = Field(
        default=None, description="kind sitemap: more URLs were found than `urls` shows (urls_found counts all)"
    )


class CreatedTenant(DocModel):
    tenant_id: str
    name: str
    role: Literal["tenant", "admin"]
    api_key: str = Field(description="shown once; stored only as its hash")
    webhook_secret: str = Field(description="signs the tenant's webhooks (X-ScraperSky-Signature); rotate it")


class TenantView(DocModel):
    tenant_id: str
    name: str
    webhook_secret: str | None = Field(description="masked: at most its last 4 characters")


class RotatedSecret(DocModel):
    webhook_secret: str = Field(description="the new secret: every webhook try from now on is signed with it")


class Health(DocModel):
    status: Literal["ok"]


# ---- the `responses=` of the route decorators ----------------------------------------------------------------
_ERRORS: dict[int, tuple[type[BaseModel], str]] = {
    400: (ErrorBody, "The body is not valid JSON"),
    401: (ErrorBody, "No or unknown key (answered by the API Gateway authorizer)"),
    403: (ErrorBody, "The key is not allowed on this route"),
    404: (ErrorBody, "Not found (another tenant's batch answers the same)"),
    409: (ErrorBody, "Conflict with the current state"),
    422: (ErrorBody, "The request is not valid; details say which field or item"),
    500: (ErrorBody, "Internal error"),
    503: (BusyBody, "No proxy free within the call's time budget"),
}
# 422 is listed on every route, even one without input: Powertools documents one for every validated route,
# in its own shape ({"detail": ...}), which is not what this API answers (ErrorBody).
BASE = (422, 500)
AUTH = (401, 403, *BASE)  # what any authenticated route may answer
WITH_BODY = (400, *AUTH)  # ... and one that reads a JSON body


def answer(model: type[BaseModel], description: str) -> OpenAPIResponse:
    return {"description": description, "content": {JSON: {"model": model}}}


def _error(status: int) -> OpenAPIResponse:
    model, description = _ERRORS[status]
    out = answer(model, description)
    if status == 503:
        out["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return out


def responses(
    status: int, model: type[BaseModel] | None, description: str, errors: tuple[int, ...] = AUTH
) -> dict[int, OpenAPIResponse]:
    """The success answer (model None: no body, e.g. 204) and the error answers of a route."""
    ok: OpenAPIResponse = answer(model, description) if model else {"description": description, "content": {}}
    return {status: ok, **error_responses(errors)}


def error_responses(errors: tuple[int, ...]) -> dict[int, OpenAPIResponse]:
    return {code: _error(code) for code in sorted(set(errors))}


_PUBLIC: dict[str, Any] = {"security": []}
# Each route's documentation: its summary and every answer it may give (routes.py stays one call per route).
_DOCS: dict[str, dict[str, Any]] = {
    "create_batch": {
        "summary": "Create a batch",
        "responses": responses(201, CreatedBatch, "Batch created", WITH_BODY),
    },
    "start_batch": {
        "summary": "Start a queued batch",
        "responses": responses(202, StartedBatch, "Started", (*AUTH, 404, 409)),
    },
    "cancel_batch": {
        "summary": "Cancel a batch",
        "responses": responses(202, CancelledBatch, "Cancelled", (*AUTH, 404, 409)),
    },
    "list_batches": {
        "summary": "List the tenant's batches, newest first",
        "responses": responses(200, BatchList, "The batches, newest first"),
    },
    "get_batch": {
        "summary": "Progress of one batch (O(1))",
        "responses": responses(200, BatchView, "The batch", (*AUTH, 404)),
    },
    "list_items": {
        "summary": "Items of a batch with their results",
        "responses": responses(200, ItemList, "A page of items", (*AUTH, 404)),
    },
    "list_urls": {
        "summary": "URLs a sitemap batch discovered, unique per item",
        "responses": responses(200, UrlList, "A page of URLs", (*AUTH, 404)),
    },
    "health": {"summary": "Liveness (no auth)", **_PUBLIC, "responses": responses(200, Health, "Alive", BASE)},
    "openapi": {
        "summary": "This API's OpenAPI document",
        **_PUBLIC,
        "responses": {
            200: {"description": "OpenAPI 3 document", "content": {JSON: {"schema": {"type": "object"}}}},
            **error_responses(BASE),
        },
    },
    "scrape": {
        "summary": "Check one item synchronously",
        "responses": responses(200, ScrapedItem, "The item, succeeded or failed", (*WITH_BODY, 503)),
    },
    "create_tenant": {
        "summary": "Create a tenant and its API key (shown once)",
        "responses": responses(201, CreatedTenant, "Tenant created", WITH_BODY),
    },
    # the calling tenant (any tenant's key; served by the batches function)
    "get_tenant": {
        "summary": "The calling tenant",
        "responses": responses(200, TenantView, "The tenant", (*AUTH, 404)),
    },
    "rotate_webhook_secret": {
        "summary": "Rotate the webhook secret",
        "responses": responses(200, RotatedSecret, "New"),
    },
    "add_proxy": {"summary": "Register a proxy", "responses": responses(201, CreatedProxy, "Registered", WITH_BODY)},
    "list_proxies": {
        "summary": "The proxy pool and each proxy's state",
        "responses": responses(200, ProxyList, "The pool"),
    },
    "delete_proxy": {"summary": "Remove a proxy", "responses": responses(204, None, "Removed", (*AUTH, 404))},
    "list_hosts": {
        "summary": "Each host's pacing: configured rate and cap, and what the pool learnt",
        "responses": responses(200, HostList, "Every host the pool knows"),
    },
    "configure_host": {
        "summary": "Configure a host's pacing: start rate and hard cap per proxy, a cap over the whole pool",
        "responses": responses(200, HostView, "The host as now configured", WITH_BODY),
    },
    "forget_host": {
        "summary": "Forget a host: its configuration and everything learnt of it",
        "responses": responses(204, None, "Forgotten", (*AUTH, 404)),
    },
}


def doc(route: str) -> dict[str, Any]:
    """The route decorator's documentation keywords (summary, responses, security) for one route."""
    return _DOCS[route]
