"""Hand-written bad requests, through the same front door as the fuzz run (template routes, the authorizer's
tenant, base64 for bodies that are not UTF-8): each is a 4xx with a JSON `message`, and nothing stored or queued
changed (API.md: bad input is never a 500)."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.integration.front_door import Answer, FrontDoor

TENANT = {"Authorization": "Bearer t_local-key", "Content-Type": "application/json"}
ADMIN = {"Authorization": "Bearer t_admin-key", "Content-Type": "application/json"}
BODY_ROUTES = [  # (method, path, headers, a valid body): the bad bodies below go to each of them
    ("POST", "/batches", TENANT, {"items": ["https://example.com/"]}),
    ("POST", "/scrape", TENANT, {"item": "https://example.com/"}),
    ("POST", "/tenants", ADMIN, {"name": "acme"}),
    ("POST", "/proxies", ADMIN, {"url": "http://u:p@203.0.113.9:3128"}),
    ("PUT", "/hosts/example.com", ADMIN, {"rate": 1}),
]
_DIGITS = "9" * 5000


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode()


@pytest.fixture
def door(harness) -> FrontDoor:
    return FrontDoor(harness)


@pytest.fixture
def world(harness) -> dict[str, str]:
    """A batch of ours, one of another tenant, a proxy and a host: what a forged cursor or id might reach."""
    for tid in ("t_other",):
        from scrapersky.models import CreateTenantRequest
        from scrapersky.services.admin import create_tenant

        create_tenant(harness.deps, CreateTenantRequest(name=tid), api_key=f"{tid}-key", tenant_id=tid)
    ours = harness.api("batches", "POST", "/batches", {"items": ["https://a.example/", "https://b.example/"]})[1]
    theirs = harness.api("batches", "POST", "/batches", {"items": ["https://c.example/"]}, tenant="t_other")[1]
    proxy = harness.api("admin", "POST", "/proxies", {"url": "http://u:p@203.0.113.5:3128"}, "t_admin", "admin")[1]
    assert harness.api("admin", "PUT", "/hosts/example.com", {"rate": 2}, "t_admin", "admin")[0] == 200
    return {"batch": ours["batch_id"], "other": theirs["batch_id"], "proxy": proxy["proxy_id"]}


def stored(harness) -> dict[str, Any]:
    """Every record of every table and the depth of every queue."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    tables = {t: sorted(map(json.dumps, ddb.scan(TableName=t)["Items"])) for t in ("batches", "proxies", "tenants")}
    queues = {
        q: harness.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        for q, url in harness.urls.items()
    }
    return {"tables": tables, "queues": {q: a["Attributes"] for q, a in queues.items()}}


def assert_refused(answer: Answer, *statuses: int, what: Any = None) -> dict[str, Any]:
    seen = (what, answer.status, answer.body[:300])
    assert 400 <= answer.status < 500, seen
    assert not statuses or answer.status in statuses, seen
    assert answer.headers.get("Content-Type", "").startswith("application/json"), seen
    body = answer.json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], seen
    return body


@pytest.fixture
def unchanged(harness, world) -> Iterator[None]:
    """What the test's requests must leave as it was: every record and queue, compared once at the end."""
    before = stored(harness)
    yield
    assert stored(harness) == before


def refused(door, method, path, headers, body: bytes | None, *statuses: int, what: Any = None) -> dict[str, Any]:
    return assert_refused(door.request(method, path, headers, body), *statuses, what=(what, method, path[:200]))


NASTY_BODIES = {
    "nested arrays": "[" * 100_000 + "]" * 100_000,
    "nested objects": '{"a": ' * 50_000 + "1" + "}" * 50_000,
    "5,000-digit integer": '{"items": ["https://example.com/"], "x": ' + _DIGITS + "}",
    "5,000-digit field": '{"item": "https://example.com/", "rate": ' + _DIGITS + "}",
    "5,000-digit float": '{"rate": 1' + "0" * 5000 + ".5}",
    "JSON null": "null",
    "top-level array": '[{"items": ["https://example.com/"]}]',
    "top-level string": '"https://example.com/"',
    "top-level number": "1",
    "not JSON": "{items: [https://example.com/]}",
    "truncated": '{"items": ["https://exa',
    "byte order mark": '\ufeff{"items": ["https://example.com/"]}',
    "NaN": '{"items": ["https://example.com/"], "rate": NaN, "options": {"max_attempts": NaN}}',
    "lone surrogate": '{"items": ["https://e.com/\\ud800"], "item": "\\udfff", "name": "\\ud800", "url": "\\ud800"}',
    "NUL": '{"items": ["https://example.com/\\u0000"], "item": "\\u0000", "name": "\\u0000", "url": "\\u0000"}',
    "items not strings": '{"items": [1, null, {}, [], true], "item": 1, "name": 1, "url": 1, "rate": "x"}',
    "invalid UTF-8": b'{"items": ["https://example.com/\xff\xfe"], "name": "\xc3\x28"}',
    "latin-1": '{"items": ["https://b\xfccher.example/"], "name": "\xe9"}'.encode("latin-1"),
    "UTF-16": '{"items": ["https://example.com/"]}'.encode("utf-16"),
    "oversize whitespace": '{"items": ["https://example.com/"]' + " " * (11 * 1024 * 1024) + "}",
    "oversize item": '{"items": ["https://example.com/' + "a" * (11 * 1024 * 1024) + '"]}',
}


def test_a_nasty_body_is_a_4xx_on_every_route_that_takes_one(door, unchanged):
    for name, raw in NASTY_BODIES.items():
        body = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
        for method, path, headers, _ in BODY_ROUTES:
            refused(door, method, path, headers, body, what=name)


def test_invalid_utf8_and_invalid_base64_events_are_4xx(door, unchanged):
    from tests.conftest import load_event

    for raw in ("//79/A==", "not base64 at all!", "e30", base64.b64encode(b"\xc3\x28").decode()):
        ev = {**load_event("api_create_batch.json"), "body": raw, "isBase64Encoded": True}
        assert_refused(door.invoke("batches", ev), what=raw)


def test_a_body_with_a_duplicated_key_is_a_400(door, unchanged):
    """Which of the two a reader takes is not said anywhere: another reader (a proxy, a WAF, a log) may take the
    other one. The API takes neither."""
    for value in (
        '{"items": ["https://example.com/"], "items": []}',
        '{"items": [], "items": ["https://example.com/"]}',
        '{"items": ["https://example.com/"], "start": false, "start": true}',
        '{"items": ["https://example.com/"], "options": {"max_attempts": 1, "max_attempts": 9}}',
    ):
        got = refused(door, "POST", "/batches", TENANT, value.encode(), 400, what=value)
        assert "duplicated" in got["message"]


def test_a_body_in_another_format_is_a_4xx(door, unchanged):
    bodies = {
        "multipart": b'--x\r\nContent-Disposition: form-data; name="items"\r\n\r\nhttps://example.com/\r\n--x--\r\n',
        "form": b"items=https%3A%2F%2Fexample.com%2F",
        "xml": b"<batch><items>https://example.com/</items></batch>",
        "text": b"https://example.com/",
    }
    types = (None, "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "text/xml")
    for (name, body), content_type in itertools.product(bodies.items(), types):
        for method, path, headers, _ in BODY_ROUTES:
            sent = {k: v for k, v in headers.items() if k != "Content-Type"}
            if content_type:
                sent["Content-Type"] = content_type
            refused(door, method, path, sent, body, what=(name, content_type))


def test_no_body_or_an_empty_one_is_a_4xx(door, unchanged):
    for method, path, headers, _ in BODY_ROUTES:
        for body in (None, b"", b" ", b"\r\n"):
            refused(door, method, path, headers, body, what=body)


def forged_cursors(world) -> dict[str, str]:
    ours, other = world["batch"], world["other"]
    return {
        "random bytes": b64(bytes(range(256))),
        "not base64": "%%%not-base64%%%",
        "padding only": "====",
        "non-ASCII": "äöü\u2603",
        "huge": "A" * 2049,
        "just under the cap": b64({"pk": "B#" + ours, "sk": "I#" + "0" * 1500})[:2048],
        "deeply nested": b64(b"[" * 1530),
        "JSON list": b64(["B#" + ours, "I#000001"]),
        "JSON null": b64(None),
        "number keys": b64({"pk": 1, "sk": 2, "gsi1pk": 3, "gsi1sk": 4}),
        "empty strings": b64({"pk": "", "sk": "", "gsi1pk": "", "gsi1sk": ""}),
        "another tenant's batch item": b64({"pk": "B#" + other, "sk": "I#000001"}),
        "another tenant's listing": b64({"pk": "B#" + other, "sk": "A", "gsi1pk": "T#t_other", "gsi1sk": other}),
        "our batch record": b64({"pk": "B#" + ours, "sk": "A"}),
        "a counter shard": b64({"pk": "B#" + ours, "sk": "C#000"}),
        "lone surrogate": base64.urlsafe_b64encode(b'{"pk": "B#' + ours.encode() + b'", "sk": "I#\\ud800"}').decode(),
        "lone surrogate in the listing": b64(b'{"pk":"B#x","sk":"A","gsi1pk":"T#t_local","gsi1sk":"\\ud800"}'),
        "partition with a suffix": b64({"pk": f"B#{ours}#x", "sk": "I#000001"}),
        "listing of a suffixed partition": b64({"pk": f"B#{ours}", "sk": "A", "gsi1pk": "T#t_local#x", "gsi1sk": ours}),
        "extra key": b64({"pk": "B#" + ours, "sk": "I#000001", "x": "y"}),
        "long key": b64({"pk": "B#" + ours, "sk": "I#" + "1" * 1200}),
        "NUL": b64({"pk": "B#" + ours, "sk": "I#000001\u0000"}),
        # the block layout: the block must be the seq's, the seq within the batch, written in 7 ASCII digits
        "six-digit seq": b64({"pk": f"B#{ours}#I0000", "sk": "I#000001"}),
        "block not of its seq": b64({"pk": f"B#{ours}#I0001", "sk": "I#0000001"}),
        "seq past the batch": b64({"pk": f"B#{ours}#I0999", "sk": "I#0999999"}),
        "non-ASCII digits": b64({"pk": f"B#{ours}#I0000", "sk": "I#\u0661\u0661\u0661\u0661\u0661\u0661\u0661"}),
        "a counter shard's own key": b64({"pk": f"B#{ours}#C000", "sk": "C#000"}),
        "another tenant's block": b64({"pk": f"B#{other}#I0000", "sk": "I#0000001"}),
    }


def test_a_forged_cursor_is_a_422_on_every_listing(door, world, unchanged):
    listings = (f"/batches/{world['batch']}/items", "/batches", "/checks/x/targets")
    for name, cursor in forged_cursors(world).items():
        for path in listings:
            for extra in ("", "&status=pending", "&limit=1"):
                target = f"{path}?cursor={_q(cursor)}{extra}"
                got = refused(door, "GET", target, TENANT, None, 422, what=name)
                assert "cursor" in json.dumps(got), (name, path, got)


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


ODD_IDS = [
    "b_" + "!@$()*",
    "b_" + "0" * 19,
    "b_" + "z" * 41,
    "B_0123456789abcdefghij",
    "..",
    "%2E%2E",
    "..%2F..%2Fetc",
    "%00",
    "b_0123456789abcdefghij%00",
    "x" * 10_240,
    "b_" + "0" * 10_240,
    "host%23x",
    "host%23example.com",
    "p_%2E%2E",
    "%F0%9F%92%A9",
    "%ED%A0%80",  # a lone surrogate, UTF-8 encoded
    "%FF%FE",  # not UTF-8 at all
    "%25",
    "%",
    "a%20b",
    "-",
]


def test_an_odd_id_in_any_path_parameter_is_a_4xx(door, unchanged):
    for odd in ODD_IDS:
        for method, path, headers in (
            ("GET", f"/batches/{odd}", TENANT),
            ("GET", f"/batches/{odd}/items", TENANT),
            ("POST", f"/batches/{odd}/start", TENANT),
            ("POST", f"/batches/{odd}/cancel", TENANT),
            ("DELETE", f"/proxies/{odd}", ADMIN),
            ("PUT", f"/hosts/{odd}", ADMIN),
            ("DELETE", f"/hosts/{odd}", ADMIN),
        ):
            refused(door, method, path, headers, b'{"rate": 1}' if method == "PUT" else None, what=odd)


def test_another_tenants_batch_id_is_a_404_and_changes_nothing(door, world, unchanged):
    for method, path in (("GET", ""), ("GET", "/items"), ("POST", "/start"), ("POST", "/cancel")):
        refused(door, method, f"/batches/{world['other']}{path}", TENANT, None, 404)


OUT_OF_RANGE = [
    "limit=0",
    "limit=-1",
    "limit={max}",
    "limit=abc",
    "limit=",
    "limit=1.5",
    "limit=1e3",
    "limit=" + _DIGITS,
    "limit=%00",
    "limit=%FF",
    "limit=1&limit=2",
    "status=bogus",
    "status=",
    "status=%00",
    "status=PENDING",
    "cursor=a&cursor=b",
]


def test_a_query_parameter_out_of_range_is_a_422(door, world, unchanged):
    for path, most in ((f"/batches/{world['batch']}/items", 1000), ("/batches", 100)):
        for query in OUT_OF_RANGE + (["group=" + "g" * 65] if path == "/batches" else []):
            target = f"{path}?{query.format(max=most + 1)}"
            refused(door, "GET", target, TENANT, None, 422, what=query[:40])


def test_a_listing_limit_within_range_still_answers(door, world, unchanged):
    assert door.request("GET", f"/batches/{world['batch']}/items?limit=1000", TENANT, None).status == 200
    assert door.request("GET", "/batches?limit=100", TENANT, None).status == 200


def test_a_number_too_small_for_dynamodb_is_a_422_not_a_500(harness):
    # 1e-308 passes `> 0` but cannot be stored (DynamoDB numbers stop at 1e-130): found by the fuzz run
    status, body = harness.api(
        "batches", "POST", "/batches", {"items": ["a.example"], "options": {"timeout_s": 1e-308}}
    )
    assert status == 422, body
    assert harness.api("status", "GET", "/batches")[1]["batches"] == []
