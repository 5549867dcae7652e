"""Builds the Powertools REST resolver of a function and maps every error to JSON once."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from scrapersky.errors import Forbidden, InvalidCursor, NoProxyAvailable, ScraperSkyError
from scrapersky.observability import logger
from scrapersky.services.context import Deps

API_TITLE = "ScraperSky API"
API_VERSION = "1.0.0"
PUBLIC_PATHS = ("/health", "/openapi.json")  # template.yaml: Authorizer NONE


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, default=str),
        headers=headers or {},
    )


def _details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        out.append({"field": ".".join(loc) or "body", "message": e.get("msg", e.get("type")), "type": e.get("type")})
    return out


def make_resolver(*routers: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    for r in routers:
        app.include_router(r)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return json_response(400, {"message": "request body is not valid JSON", "details": _details(exc)})
        return json_response(422, {"message": "request is not valid", "details": _details(exc)})

    @app.exception_handler(NoProxyAvailable)
    def _busy(exc: NoProxyAvailable) -> Response:
        from time import time

        retry = max(1, int(exc.retry_at - time() + 0.999))
        return json_response(503, {"message": exc.message, "retry_after_s": retry}, {"Retry-After": str(retry)})

    @app.exception_handler(ScraperSkyError)
    def _domain(exc: ScraperSkyError) -> Response:
        body: dict[str, Any] = {"message": exc.message}
        if exc.details:
            body["details"] = exc.details
        return json_response(exc.status_code, body)

    @app.exception_handler(InvalidCursor)
    def _bad_cursor(exc: InvalidCursor) -> Response:  # for every listing route, whether its service maps it or not
        message = str(exc) or "cursor is not valid"
        return json_response(422, {"message": message, "details": [{"field": "cursor", "message": message}]})

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        return json_response(404, {"message": "no such route"})

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return json_response(500, {"message": "internal error"})

    return app


def deps_of(router: Router) -> Deps:
    return router.context["deps"]


def _who(raw_event: dict[str, Any]) -> dict[str, Any]:
    """The tenant the authorizer mapped the bearer key to (REST API: requestContext.authorizer)."""
    ctx = (raw_event.get("requestContext") or {}).get("authorizer") or {}
    tenant_id = ctx.get("tenant_id")
    if not tenant_id:
        raise Forbidden("no tenant on this request")
    return {"tenant_id": tenant_id, "role": ctx.get("role", "tenant")}


def caller(router: Router) -> dict[str, Any]:
    return _who(router.current_event.raw_event)


def tenant_of(router: Router) -> str:
    """The calling tenant's id (403 when the request carries none)."""
    return str(caller(router)["tenant_id"])


def admin_only(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """Router middleware of the admin router (`admin_router.use(...)`): every one of its routes needs an admin key.

    Powertools runs it after request validation (a malformed body is a 400/422 as before) and before the route;
    the Forbidden it raises becomes the usual 403 `{"message": ...}` in the exception handler. Router middlewares
    join the resolver's global list in `include_router`, so this guard holds for every route of a resolver that
    includes the admin router: each function serves its own router (entrypoints), the admin one alone."""
    if _who(app.current_event.raw_event)["role"] != "admin":
        raise Forbidden("this route needs an admin key")
    return next_middleware(app)


@cache
def openapi_json() -> str:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer  # GET /openapi.json only

    from scrapersky.api.routes import admin_router, batches_router, scrape_router, status_router, tenant_router

    app = make_resolver(batches_router, tenant_router, status_router, scrape_router, admin_router)
    doc = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description="Batch page checks through a leased proxy pool. Every route but /health needs a bearer key.",
            security_schemes={"bearer": HTTPBearer()},
            security=[{"bearer": []}],
        )
    )
    # Powertools drops a route's `security=[]` (an empty list reads as "not given"): say so here, as the
    # template does (these paths have no authorizer)
    for path in PUBLIC_PATHS:
        for operation in doc["paths"][path].values():
            operation["security"] = []
    return json.dumps(doc, indent=2)
