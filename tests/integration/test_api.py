"""The HTTP contract of API.md through the handlers: auth, isolation, validation, admin."""

from __future__ import annotations

import json

import pytest
from scrapersky import entrypoints
from scrapersky.adapters.ddb import de_item

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
        (json.dumps({"items": ["https://example.com/"], "kind": "sitemap"}), 422, "not served"),
        (json.dumps({"items": ["x" * 3000]}), 422, "not valid"),
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


def test_health_and_openapi_are_served(harness):
    assert harness.api("status", "GET", "/health", tenant=None) == (200, {"status": "ok"})
    status, doc = harness.api("status", "GET", "/openapi.json", tenant=None)
    assert status == 200
    assert {"/batches", "/batches/{batch_id}", "/scrape", "/proxies"} <= set(doc["paths"])


def test_scrape_checks_one_page_through_the_pool(harness, pool, site):
    status, body = harness.api("scrape", "POST", "/scrape", {"item": f"{site.base_url}/page/5"})
    assert status == 200, body
    assert (body["status"], body["http_status"], body["result"]["title"]) == ("succeeded", 200, "Demo page 5")
    status, body = harness.api("scrape", "POST", "/scrape", {"item": f"{site.base_url}/missing/5"})
    assert (status, body["status"], body["error"]["code"]) == (200, "failed", "http_404")
    assert harness.api("scrape", "POST", "/scrape", {"item": "gopher://x"})[0] == 422


def test_scrape_without_a_free_proxy_answers_503_with_retry_after(harness, site):
    ev = harness.api  # no proxy registered at all
    harness.deps.settings.scrape_budget_s = 1.0
    status, body = ev("scrape", "POST", "/scrape", {"item": f"{site.base_url}/page/5"})
    assert status == 503 and body["retry_after_s"] >= 1


def test_authorizer_maps_a_known_key_to_its_tenant_and_refuses_others(harness, event, lambda_context, monkeypatch):
    monkeypatch.setattr(entrypoints.bootstrap, "deps", lambda: harness.deps)
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
    proxies.release(ok, "calm.example", now + 0.01, "success", None, False)
    refused = proxies.lease("strict.example", "w2", now, 30)
    proxies.release(refused, "strict.example", now + 0.01, "rate_limited", 60.0, False)
    listing = {
        p["proxy_id"]: p for p in harness.api("admin", "GET", "/proxies", tenant="t_admin", role="admin")[1]["proxies"]
    }
    assert listing[refused.proxy_id]["state"] == "cooling"
    assert list(listing[refused.proxy_id]["cooldowns"]) == ["strict.example"]
    assert "calm.example" not in listing[ok.proxy_id]["cooldowns"]
    assert listing[ok.proxy_id]["pace"]["calm.example"] == 1.5
