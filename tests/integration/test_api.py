"""The HTTP contract of API.md through the handlers: auth, isolation, validation, admin."""

from __future__ import annotations

import json
import re
import typing
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel
from scrapersky import bootstrap, entrypoints
from scrapersky.adapters.ddb import de_item
from scrapersky.api import responses
from scrapersky.api.routes import admin_router, batches_router, scrape_router, status_router
from scrapersky.models import CreateProxyRequest, CreateTenantRequest, HostConfigRequest
from scrapersky.ports import Release

from devstack.cfn_yaml import load_template
from tests.conftest import EVENTS, ROOT, load_event


def list_batches(harness, tenant="t_local"):
    status, body = harness.api("status", "GET", "/batches", tenant=tenant)
    assert status == 200
    return body["batches"]


@pytest.mark.parametrize(
    ("raw_body", "status", "fragment"),
    [
        ("{not json", 400, "not valid JSON"),
        (json.dumps({"items": []}), 422, "not valid"),
        (json.dumps({"items": ["https://example.com/"], "kind": "video"}), 422, "not valid"),
        (json.dumps({"items": ["https://example.com/"], "options": {"max_attempts": 0}}), 422, "not valid"),
        (json.dumps({"items": ["https://example.com/"], "surprise": 1}), 422, "not valid"),
        (json.dumps({"items": ["ftp://a", "not a url"]}), 422, "no valid item"),
        (json.dumps({"items": ["https://example.com/"], "kind": "profile"}), 422, "options.check is required"),
        (json.dumps({"items": ["alice"], "kind": "profile", "options": {"check": {"url": "x"}}}), 422, "invalid"),
        (
            json.dumps({"items": ["example.com"], "kind": "sitemap", "options": {"sitemap": {"max_depth": 11}}}),
            422,
            "not valid",
        ),
        (
            json.dumps({"items": ["example.com"], "kind": "sitemap", "options": {"follow": {"limit": 0}}}),
            422,
            "not valid",
        ),
        (json.dumps({"items": ["x" * 3000]}), 422, "not valid"),
        # an option another kind reads is refused, not ignored
        (
            json.dumps({"items": ["https://e.com/"], "options": {"check": {"url": "https://s.example/{target}"}}}),
            422,
            "not valid",
        ),
        (json.dumps({"items": ["https://e.com/"], "options": {"sitemap": {"max_depth": 2}}}), 422, "not valid"),
        (json.dumps({"items": ["alice"], "kind": "profile", "options": {"follow": {"limit": 5}}}), 422, "not valid"),
    ],
)
def test_bad_batch_input_gets_a_clear_4xx_and_creates_nothing(harness, raw_body, status, fragment):
    got, body = harness.api("batches", "POST", "/batches", raw_body=raw_body)
    assert got == status
    assert fragment in body["message"]
    assert list_batches(harness) == []
    assert not harness.receive("FanoutQueue")


def test_validation_errors_say_which_field(harness):
    status, body = harness.api(
        "batches", "POST", "/batches", {"items": ["https://e.com/"], "options": {"max_attempts": 0}}
    )
    assert status == 422
    assert any(d["field"] == "options.max_attempts" for d in body["details"])


def test_an_option_of_another_kind_says_which_kind_reads_it(harness):
    status, body = harness.api(
        "batches", "POST", "/batches", {"items": ["https://e.com/"], "options": {"sitemap": {"max_depth": 2}}}
    )
    assert status == 422
    assert any("options.sitemap applies to kind 'sitemap' only" in d["message"] for d in body["details"]), body
    assert list_batches(harness) == []


def test_too_many_items_are_refused(harness):
    status, body = harness.api("batches", "POST", "/batches", {"items": [f"https://e{i}.com/" for i in range(10_001)]})
    assert status == 422
    assert body["details"][0]["field"] == "items"
    assert list_batches(harness) == []


def test_another_tenants_batch_is_a_404_like_an_unknown_id(harness):
    status, created = harness.api("batches", "POST", "/batches", {"items": ["https://example.com/"], "start": False})
    assert status == 201
    bid = created["batch_id"]
    for method, name, path in (
        ("GET", "status", f"/batches/{bid}"),
        ("GET", "status", f"/batches/{bid}/items"),
        ("POST", "batches", f"/batches/{bid}/start"),
        ("POST", "batches", f"/batches/{bid}/cancel"),
    ):
        status, body = harness.api(name, method, path, tenant="t_other")
        assert status == 404, (path, body)
        assert "not found" in body["message"]
    assert harness.api("status", "GET", "/batches/b_00000000000000000000")[0] == 404
    assert list_batches(harness, tenant="t_other") == []
    assert [b["batch_id"] for b in list_batches(harness)] == [bid]


def test_client_token_makes_a_retried_create_return_the_same_batch(harness):
    req = {"items": ["https://example.com/"], "client_token": "tok-1", "start": False}
    first = harness.api("batches", "POST", "/batches", req)[1]
    second = harness.api("batches", "POST", "/batches", req)[1]
    assert first["batch_id"] == second["batch_id"]
    assert len(list_batches(harness)) == 1


def test_batches_are_listed_newest_first_with_counts_filters_and_cursor(harness):
    ids = [
        harness.api(
            "batches",
            "POST",
            "/batches",
            {"items": [f"https://e{i}.com/"], "start": False, "group": "g1" if i % 2 else None},
        )[1]["batch_id"]
        for i in range(5)
    ]
    status, page = harness.api("status", "GET", "/batches", query={"limit": "2"})
    assert status == 200
    assert [b["batch_id"] for b in page["batches"]] == ids[::-1][:2]
    assert page["batches"][0]["pending"] == 1
    _, rest = harness.api("status", "GET", "/batches", query={"limit": "10", "cursor": page["next_cursor"]})
    assert [b["batch_id"] for b in rest["batches"]] == ids[::-1][2:]
    _, grouped = harness.api("status", "GET", "/batches", query={"group": "g1"})
    assert {b["batch_id"] for b in grouped["batches"]} == {ids[1], ids[3]}
    assert harness.api("status", "GET", "/batches", query={"limit": "0"})[0] == 422
    assert harness.api("status", "GET", "/batches", query={"cursor": "%%%"})[0] == 422


def test_admin_routes_need_an_admin_key(harness):
    assert harness.api("admin", "GET", "/proxies")[0] == 403
    assert harness.api("admin", "POST", "/tenants", {"name": "acme"})[0] == 403
    status, body = harness.api("admin", "POST", "/tenants", {"name": "acme"}, tenant="t_admin", role="admin")
    assert status == 201 and body["api_key"].startswith("sk_")


ROUTERS = {"batches": batches_router, "status": status_router, "scrape": scrape_router, "admin": admin_router}


def routes_of(router) -> list[tuple[str, str, Any]]:
    """(method, rule, handler function) of every route registered on a router: read from the router itself, so a
    route added later is walked too."""
    return [(method, key[0], func) for key, func in router._routes.items() for method in key[1]]


def body_model(func) -> type[BaseModel] | None:
    for hint in typing.get_type_hints(func, include_extras=True).values():
        if typing.get_origin(hint) is typing.Annotated and any(isinstance(m, Body) for m in hint.__metadata__):
            return hint.__origin__
    return None


# A plausible, valid body per request model: the request must pass validation, so that only the key is refused.
SAMPLE_BODIES: dict[type[BaseModel], dict[str, Any]] = {
    CreateTenantRequest: {"name": "intruder", "role": "admin"},
    CreateProxyRequest: {"url": "http://mallory:pw@203.0.113.9:3128"},
    HostConfigRequest: {"rate": 5, "max_rate": 10},
}


def _stored(harness) -> dict[str, list[Any]]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return {t: sorted(map(json.dumps, ddb.scan(TableName=t)["Items"])) for t in ("batches", "proxies", "tenants")}


def test_every_admin_route_refuses_a_tenant_key_with_a_403_and_changes_nothing(harness):
    def admin(method, path, body=None):
        return harness.api("admin", method, path, body, tenant="t_admin", role="admin")

    # something real behind every path parameter, so a route that let the tenant through would act on it
    proxy_id = admin("POST", "/proxies", {"url": "http://alice:s3cret@203.0.113.5:3128"})[1]["proxy_id"]
    assert admin("PUT", "/hosts/shop.example.com", {"rate": 2})[0] == 200
    params = {"proxy_id": proxy_id, "host": "shop.example.com"}

    # DELETEs last: the admin walk below must find what the other routes need
    routes = sorted(routes_of(admin_router), key=lambda r: (r[0] == "DELETE", r[1], r[0]))
    assert {(m, r) for m, r, _ in routes} >= {("POST", "/tenants"), ("GET", "/proxies"), ("DELETE", "/hosts/<host>")}
    calls = []
    for method, rule, func in routes:
        missing = set(re.findall(r"<(\w+)>", rule)) - set(params)
        assert not missing, f"give {method} {rule} a plausible value for {missing}"
        model = body_model(func)
        assert model is None or model in SAMPLE_BODIES, f"give {method} {rule} a plausible {model.__name__} body"
        path = re.sub(r"<(\w+)>", lambda m: params[m.group(1)], rule)
        calls.append((method, path, SAMPLE_BODIES.get(model) if model else None))

    before = _stored(harness)
    for method, path, body in calls:
        for tenant, role, message in (
            ("t_local", "tenant", "this route needs an admin key"),
            ("t_other", None, "this route needs an admin key"),  # no role from the authorizer: a tenant
            (None, "admin", "no tenant on this request"),
        ):
            status, answer = harness.api("admin", method, path, body, tenant=tenant, role=role)
            assert (status, answer) == (403, {"message": message}), (method, path, tenant)
    assert _stored(harness) == before
    assert not harness.receive("FanoutQueue") and not harness.receive("WorkQueue")

    # the same requests with an admin key go through: the 403s above came from the key, not from the request
    for method, path, body in calls:
        status, answer = admin(method, path, body)
        assert status < 300, (method, path, answer)


def test_the_admin_guard_is_the_admin_routers_alone(harness):
    """Every other function's routes still answer a tenant key (the admin router's middleware is not theirs)."""
    assert harness.api("status", "GET", "/batches")[0] == 200
    assert harness.api("batches", "POST", "/batches", {"items": ["https://example.com/"], "start": False})[0] == 201
    assert harness.api("status", "GET", "/health", tenant=None) == (200, {"status": "ok"})


def test_proxy_credentials_are_never_returned_and_keys_are_stored_hashed(harness):
    status, body = harness.api(
        "admin", "POST", "/proxies", {"url": "http://alice:s3cret@203.0.113.5:3128"}, tenant="t_admin", role="admin"
    )
    assert status == 201
    assert "s3cret" not in json.dumps(body) and body["endpoint"] == "http://al***@203.0.113.5:3128"
    status, listing = harness.api("admin", "GET", "/proxies", tenant="t_admin", role="admin")
    assert "s3cret" not in json.dumps(listing)
    assert listing["proxies"][0]["state"] == "available"
    tenant = harness.api("admin", "POST", "/tenants", {"name": "acme"}, tenant="t_admin", role="admin")[1]
    raw = json.dumps([de_item(i) for i in harness.deps.tenants.ddb.scan(TableName="tenants")["Items"]])
    assert tenant["api_key"] not in raw
    status, _ = harness.api("admin", "DELETE", f"/proxies/{body['proxy_id']}", tenant="t_admin", role="admin")
    assert status == 204
    assert harness.api("admin", "DELETE", f"/proxies/{body['proxy_id']}", tenant="t_admin", role="admin")[0] == 404
    assert harness.api("admin", "POST", "/proxies", {"url": "socks5://h:1"}, tenant="t_admin", role="admin")[0] == 422


def test_hosts_are_configured_listed_and_forgotten_by_an_admin(harness):
    def admin(method, path, body=None):
        return harness.api("admin", method, path, body, tenant="t_admin", role="admin")

    status, view = admin("PUT", "/hosts/Shop.Example.com", {"rate": 2, "max_rate": 3.5})
    assert status == 200
    assert (view["host"], view["rate"], view["max_rate"], view["learnt_ceiling"]) == ("shop.example.com", 2, 3.5, None)
    assert admin("GET", "/hosts") == (200, {"hosts": [view]})
    assert admin("PUT", "/hosts/shop.example.com", {"max_rate": 1})[1]["rate"] is None  # a PUT replaces
    assert harness.api("admin", "PUT", "/hosts/shop.example.com", {"rate": 1})[0] == 403  # tenants cannot
    for bad_host, body in (
        ("shop.example.com", {"rate": 0}),
        ("shop.example.com", {"rate": 1e-200}),
        ("shop.example.com", {"max_rate": 0.01}),
        ("shop.example.com%3A8080", {"rate": 1}),
        ("shop.example.com", {"rate": 51}),
        ("shop.example.com", {"rate": 3, "max_rate": 2}),
        ("shop.example.com", {"rate": "fast"}),
        ("shop.example.com", {"burst": 2}),
        ("shop..example.com", {"rate": 1}),
        ("-shop.example.com", {"rate": 1}),
    ):
        status, err = admin("PUT", f"/hosts/{bad_host}", body)
        assert status == 422 and err["message"], (bad_host, body, err)
    assert admin("PUT", "/hosts/shop.example.com/path", {"rate": 1})[0] == 404  # not a route
    assert admin("GET", "/hosts")[1]["hosts"][0]["max_rate"] == 1  # nothing changed by the bad requests
    assert admin("DELETE", "/hosts/shop.example.com")[0] == 204
    assert admin("GET", "/hosts") == (200, {"hosts": []})
    # as the path arrives from API Gateway: percent-encoded (the client quotes the host)
    assert admin("PUT", "/hosts/2001%3Adb8%3A%3A1", {"rate": 1})[1]["host"] == "2001:db8::1"
    assert admin("PUT", "/hosts/%5B2001%3Adb8%3A%3A2%5D", {"rate": 1})[1]["host"] == "2001:db8::2"
    assert admin("PUT", "/hosts/example.com.", {"rate": 1})[1]["host"] == "example.com."
    assert [h["host"] for h in admin("GET", "/hosts")[1]["hosts"]] == ["2001:db8::1", "2001:db8::2", "example.com."]
    assert admin("DELETE", "/hosts/shop.example.com")[0] == 404
    # the proxies table also holds host records: a proxy id that names one is no proxy, and deletes nothing
    for forged in ("host%23example.com.", "host#example.com.", "p_%2E%2E"):
        assert admin("DELETE", f"/proxies/{forged}")[0] == 404
    assert "example.com." in [h["host"] for h in admin("GET", "/hosts")[1]["hosts"]]


def test_health_and_openapi_are_served(harness):
    assert harness.api("status", "GET", "/health", tenant=None) == (200, {"status": "ok"})
    status, doc = harness.api("status", "GET", "/openapi.json", tenant=None)
    assert status == 200
    assert {"/batches", "/batches/{batch_id}", "/scrape", "/proxies"} <= set(doc["paths"])


def _openapi(harness) -> dict[str, Any]:
    status, doc = harness.api("status", "GET", "/openapi.json", tenant=None)
    assert status == 200
    return doc


def _operation(doc, method: str, rule: str) -> dict[str, Any]:
    return doc["paths"][re.sub(r"<(\w+)>", r"{\1}", rule)][method.lower()]


def test_openapi_documents_a_response_schema_for_every_route_and_status(harness):
    doc = _openapi(harness)
    schemas = doc["components"]["schemas"]
    for router in ROUTERS.values():
        for method, rule, _ in routes_of(router):
            answers = _operation(doc, method, rule)["responses"]
            ok = [code for code in answers if code.startswith("2")]
            assert len(ok) == 1, (method, rule, ok)
            for code, declared in answers.items():
                assert declared["description"], (method, rule, code)
                if code == "204":
                    assert not declared.get("content"), (method, rule)
                    continue
                schema = declared["content"]["application/json"]["schema"]
                ref = schema.get("$ref", "")
                assert ref or rule == "/openapi.json", (method, rule, code, schema)
                name = ref.rsplit("/", 1)[-1]
                assert not ref or name in schemas, (method, rule, code, ref)
                if code >= "400":  # this API's error shape, not Powertools' default {"detail": ...}
                    assert name in ("ErrorBody", "BusyBody"), (method, rule, code, name)
    assert "Retry-After" in _operation(doc, "POST", "/scrape")["responses"]["503"]["headers"]
    public = {path for path, ops in doc["paths"].items() if any(op.get("security") == [] for op in ops.values())}
    assert public == {"/health", "/openapi.json"} and doc["security"] == [{"bearer": []}]


def assert_declared(doc, method: str, rule: str, status: int, body: Any) -> None:
    """The answer is what /openapi.json declares for this route and status: the model it names reads the body
    and writes it back the same (no field missing, none undeclared at the top level or in a nested model)."""
    declared = _operation(doc, method, rule)["responses"][str(status)]
    if status == 204:
        assert body is None
        return
    model = getattr(responses, declared["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1])
    assert model.model_validate(body).model_dump(mode="json", exclude_unset=True) == body, (method, rule, status)


def test_answers_are_what_openapi_declares(harness):
    doc = _openapi(harness)

    def call(name, method, rule, path=None, body=None, role="tenant", **kw):
        tenant = "t_admin" if role == "admin" else "t_local"
        status, answer = harness.api(name, method, path or rule, body, tenant=tenant, role=role, **kw)
        assert_declared(doc, method, rule, status, answer)
        return status, answer

    _, created = call("batches", "POST", "/batches", body={"items": ["https://e.com/", "e.com", "ftp://x"]})
    assert created["rejected_items"] and created["status"] == "pending"
    _, queued = call("batches", "POST", "/batches", body={"items": ["https://e.org/"], "start": False})
    bid = queued["batch_id"]
    assert call("status", "GET", "/batches/<batch_id>", f"/batches/{bid}")[0] == 200
    assert call("status", "GET", "/batches/<batch_id>/items", f"/batches/{bid}/items")[0] == 200
    assert call("status", "GET", "/batches")[0] == 200
    assert call("batches", "POST", "/batches/<batch_id>/start", f"/batches/{bid}/start")[0] == 202
    assert call("batches", "POST", "/batches/<batch_id>/cancel", f"/batches/{bid}/cancel")[0] == 202
    assert call("batches", "POST", "/batches/<batch_id>/cancel", f"/batches/{bid}/cancel")[0] == 409
    assert call("status", "GET", "/batches/<batch_id>", "/batches/b_00000000000000000000")[0] == 404
    assert call("status", "GET", "/batches", query={"limit": "0"})[0] == 422
    assert call("batches", "POST", "/batches", body={"items": ["ftp://x"]})[0] == 422
    assert harness.api("batches", "POST", "/batches", raw_body="{oops")[0] == 400
    assert_declared(doc, "POST", "/batches", 400, harness.api("batches", "POST", "/batches", raw_body="{oops")[1])
    assert call("status", "GET", "/health")[0] == 200
    assert call("admin", "POST", "/tenants", body={"name": "acme"})[0] == 403
    assert call("admin", "POST", "/tenants", body={"name": "acme"}, role="admin")[0] == 201
    _, proxy = call("admin", "POST", "/proxies", body={"url": "http://u:p@203.0.113.5:3128"}, role="admin")
    assert call("admin", "GET", "/proxies", role="admin")[1]["proxies"]
    assert call("admin", "PUT", "/hosts/<host>", "/hosts/e.com", {"rate": 1}, role="admin")[0] == 200
    assert call("admin", "GET", "/hosts", role="admin")[1]["hosts"]
    assert call("admin", "DELETE", "/hosts/<host>", "/hosts/e.com", role="admin")[0] == 204
    assert call("admin", "DELETE", "/proxies/<proxy_id>", f"/proxies/{proxy['proxy_id']}", role="admin")[0] == 204


def test_scrape_checks_one_page_through_the_pool(harness, pool, site):
    status, body = harness.api("scrape", "POST", "/scrape", {"item": f"{site.base_url}/page/5"})
    assert status == 200, body
    assert (body["status"], body["http_status"], body["result"]["title"]) == ("succeeded", 200, "Demo page 5")
    assert_declared(_openapi(harness), "POST", "/scrape", status, body)
    status, body = harness.api("scrape", "POST", "/scrape", {"item": f"{site.base_url}/missing/5"})
    assert (status, body["status"], body["error"]["code"]) == (200, "failed", "http_404")
    assert harness.api("scrape", "POST", "/scrape", {"item": "gopher://x"})[0] == 422


def test_scrape_without_a_free_proxy_answers_503_with_retry_after(harness, site):
    ev = harness.api  # no proxy registered at all
    harness.deps.settings = harness.deps.settings.model_copy(update={"scrape_budget_s": 1.0})
    status, body = ev("scrape", "POST", "/scrape", {"item": f"{site.base_url}/page/5"})
    assert status == 503 and body["retry_after_s"] >= 1
    assert_declared(_openapi(harness), "POST", "/scrape", status, body)


def test_authorizer_maps_a_known_key_to_its_tenant_and_refuses_others(harness, event, lambda_context, monkeypatch):
    monkeypatch.setattr(bootstrap, "deps", lambda: harness.deps)
    ev = event("authorizer_request.json")
    ev["headers"]["Authorization"] = "Bearer t_local-key"
    policy = entrypoints.authorizer_handler(ev, lambda_context)
    assert policy["context"] == {"tenant_id": "t_local", "role": "tenant"}
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["policyDocument"]["Statement"][0]["Resource"][0].endswith("/v1/*/*")
    for bad in ("Bearer nope", "t_local-key", ""):
        ev["headers"]["Authorization"] = bad
        with pytest.raises(Exception, match="Unauthorized"):
            entrypoints.authorizer_handler(ev, lambda_context)


def test_forged_cursors_and_ids_are_4xx_not_500(harness):
    import base64

    _, created = harness.api("batches", "POST", "/batches", {"items": ["https://example.com/"], "start": False})
    bid = created["batch_id"]
    forged = base64.urlsafe_b64encode(json.dumps({"pk": "B#b_someone_else", "sk": "I#000001"}).encode()).decode()
    for path in (f"/batches/{bid}/items", "/batches"):
        for cursor in (forged, base64.urlsafe_b64encode(b'{"a": 1}').decode(), "bm90IGpzb24="):
            got, body = harness.api("status", "GET", path, query={"cursor": cursor})
            assert got == 422, (path, cursor, body)
            assert "cursor" in body["message"]
    assert harness.api("status", "GET", "/batches/b_" + "x" * 3000)[0] == 404
    assert harness.api("batches", "POST", "/batches/../../etc/cancel")[0] in (404, 405)


def _api_routes() -> dict[tuple[str, str], str]:
    """(resource path, method) -> harness handler name, as template.yaml routes them."""
    resources = load_template((ROOT / "template.yaml").read_text())["Resources"]
    routes = {}
    for name, res in resources.items():
        for ev in (res.get("Properties", {}).get("Events") or {}).values():
            if res["Type"] == "AWS::Serverless::Function" and ev["Type"] == "Api":
                handler = name.removesuffix("Function").lower()
                routes[(ev["Properties"]["Path"], ev["Properties"]["Method"])] = handler
    return routes


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("api_*.json")))
def test_every_sample_api_event_reaches_a_route_of_the_function_the_template_sends_it_to(harness, pool, name):
    """The files in events/ are what `sam local invoke -e` replays: each must be routed, never a 5xx."""
    ev = load_event(name)
    handler = _api_routes()[(ev["resource"], ev["httpMethod"])]
    out = harness.handler(handler)(ev, harness.context)
    body = json.loads(out["body"]) if out.get("body") else {}
    assert out["statusCode"] < 500, body
    assert body.get("message") != "no such route"


def test_an_admin_sees_a_proxy_cooling_for_a_host_after_a_429_and_not_after_a_success(harness, pool):
    proxies = harness.deps.pool
    now = harness.deps.clock.now()
    ok = proxies.lease("calm.example", "w1", now, 30)
    proxies.release(ok, now + 0.01, Release.SUCCESS)
    refused = proxies.lease("strict.example", "w2", now, 30)
    proxies.release(refused, now + 0.01, Release.RATE_LIMITED, 60.0)
    listing = {
        p["proxy_id"]: p for p in harness.api("admin", "GET", "/proxies", tenant="t_admin", role="admin")[1]["proxies"]
    }
    assert listing[refused.proxy_id]["state"] == "cooling"
    assert list(listing[refused.proxy_id]["cooldowns"]) == ["strict.example"]
    assert "calm.example" not in listing[ok.proxy_id]["cooldowns"]
    assert listing[ok.proxy_id]["pace"]["calm.example"] == 1.5


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"items": [' * 50_000 + "]}" * 50_000,
        '{"items": ["a.com"], "x": ' + "9" * 5000 + "}",
    ],
)
def test_a_body_no_json_reader_should_take_is_a_400_and_creates_nothing(harness, raw):
    event = {**load_event("api_create_batch.json"), "body": raw}
    out = harness.handler("batches")(event, harness.context)
    assert out["statusCode"] == 400, out
    assert json.loads(out["body"])["message"].startswith("the body is not JSON")
    assert harness.api("status", "GET", "/batches")[1]["batches"] == []


def test_a_batch_with_thousands_of_rejected_items_lists_the_first_100_and_counts_them_all(harness):
    items = ["https://ok.example.com/"] + [f"ftp://bad.example.com/{'x' * 1900}/{i}" for i in range(3000)]
    status, body = harness.api("batches", "POST", "/batches", {"items": items})
    assert status == 201, body
    assert len(body["rejected_items"]) == 100 and body["rejected_count"] == 3000
    assert len(json.dumps(body)) < 1_000_000
