"""API Gateway in front of the in-process handlers: a request (method, raw path, query, headers, body bytes) becomes
the REST proxy event the Lambda gets, as template.yaml routes it, and the Lambda's answer becomes the HTTP answer.

What it does as API Gateway would: a path no template route matches answers 403 `Missing Authentication Token`;
every route but the `Auth: NONE` ones runs the key authorizer first (no or unknown key: 401, JSON, never reaching
the function) and passes its context as `requestContext.authorizer`; a body that is not UTF-8 text arrives base64
encoded (`isBase64Encoded`); an answer past Lambda's 6 MB response limit, or a function that raises, is a 502.
`Server` serves it over real HTTP on loopback, for clients (schemathesis) that speak HTTP."""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from devstack.cfn_yaml import load_template
from tests.conftest import ROOT

STAGE = "v1"
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


@dataclass(frozen=True)
class Route:
    resource: str  # as the template writes it: /batches/{batch_id}
    method: str
    function: str  # the harness handler name: batches, status, scrape, admin
    public: bool
    pattern: re.Pattern[str] = field(compare=False)


def template_routes() -> list[Route]:
    resources = load_template((ROOT / "template.yaml").read_text())["Resources"]
    routes = []
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for ev in (res["Properties"].get("Events") or {}).values():
            if ev["Type"] != "Api":
                continue
            props = ev["Properties"]
            path = props["Path"]
            regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
            public = (props.get("Auth") or {}).get("Authorizer") == "NONE"
            function = name.removesuffix("Function").lower()
            routes.append(Route(path, props["Method"], function, public, re.compile(regex)))
    return routes


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _gateway_error(status: int, message: str) -> Answer:
    return Answer(status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode())


class FrontDoor:
    """`harness` gives the handlers (`harness.handler(name)`), the context and the tenant store the authorizer reads."""

    def __init__(self, harness: Any) -> None:
        from scrapersky.services import admin

        self.harness = harness
        self.routes = template_routes()
        self._handlers: dict[str, Any] = {}
        self._authenticate = admin.authenticate
        self.events: list[dict[str, Any]] = []  # every event a function got, in order

    def handler(self, name: str) -> Any:
        if name not in self._handlers:
            self._handlers[name] = self.harness.handler(name)
        return self._handlers[name]

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            m = route.pattern.match(raw_path)
            if m and route.method.upper() == method.upper():
                return route, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def authorizer_context(self, headers: dict[str, str]) -> dict[str, str] | None:
        """What the key authorizer (entrypoints.authorizer_handler) puts in the policy's context, or None for a 401."""
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        who = self._authenticate(self.harness.deps, auth)  # an authorizer that raises: the caller's 500
        if who is None:
            return None
        return {"tenant_id": who.tenant_id, "role": who.role, "principalId": who.tenant_id}

    def event(
        self,
        route: Route,
        params: dict[str, str],
        method: str,
        raw_path: str,
        query: str,
        headers: dict[str, str],
        body: bytes | None,
        authorizer: dict[str, str] | None,
    ) -> dict[str, Any]:
        multi_query = {k: v for k, v in parse_qs(query, keep_blank_values=True).items()} if query else {}
        text, is_b64 = None, False
        if body:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text, is_b64 = base64.b64encode(body).decode(), True
        return {
            "resource": route.resource,
            "path": raw_path,
            "httpMethod": method.upper(),
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.resource,
                "httpMethod": method.upper(),
                "path": f"/{STAGE}{raw_path}",
                "stage": STAGE,
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "accountId": "123456789012",
                "apiId": "abc123",
                "identity": {"sourceIp": "203.0.113.10", "userAgent": headers.get("User-Agent", "")},
                "requestTimeEpoch": 1795400000000,
                "authorizer": authorizer,
            },
            "body": text,
            "isBase64Encoded": is_b64,
        }

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Answer:
        """One HTTP request as API Gateway would take it; `target` is the request line's path and query."""
        parts = urlsplit(target)
        raw_path = parts.path or "/"
        found = self.match(method, raw_path)
        if found is None:
            return _gateway_error(403, "Missing Authentication Token")
        route, params = found
        authorizer = None
        if not route.public:
            try:
                authorizer = self.authorizer_context(headers)
            except Exception as e:  # API Gateway answers 500 when the authorizer fails
                return _gateway_error(500, f"authorizer failed ({type(e).__name__}: {e})"[:500])
            if authorizer is None:
                return _gateway_error(401, "missing or unknown API key")
        ev = self.event(route, params, method, raw_path, parts.query, headers, body, authorizer)
        return self.invoke(route.function, ev)

    def invoke(self, function: str, ev: dict[str, Any]) -> Answer:
        self.events.append(ev)
        try:
            out = self.handler(function)(ev, self.harness.context)
        except Exception as e:  # a Lambda that raises: API Gateway answers 502
            return _gateway_error(502, f"Internal server error ({type(e).__name__}: {e})"[:500])
        if len(json.dumps(out)) > LAMBDA_RESPONSE_LIMIT:
            return _gateway_error(502, "Internal server error (Lambda response past 6 MB)")
        raw = out.get("body") or ""
        payload = base64.b64decode(raw) if out.get("isBase64Encoded") else raw.encode()
        headers = {k: str(v) for k, v in (out.get("headers") or {}).items()}
        for k, values in (out.get("multiValueHeaders") or {}).items():
            headers[k] = ", ".join(map(str, values))
        return Answer(int(out["statusCode"]), headers, payload)


class Server:
    """The front door on a real loopback HTTP port (one request at a time, as the tests send them)."""

    def __init__(self, door: FrontDoor) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
                answer = door.request(self.command, self.path, headers, body)
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            def __getattr__(self, name: str) -> Any:  # every method (TRACE too) goes to the front door
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
