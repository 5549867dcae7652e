"""The whole service on the local stack, over real HTTP, through real proxies, as a client sees it."""

from __future__ import annotations

import json
import time

import pytest
import requests
from scrapersky_client import ApiError, Client

from tests.e2e.conftest import adds_up, dump

pytestmark = pytest.mark.e2e

WAIT_S = 300  # a bound for a busy machine, never a throughput expectation: every wait returns once its condition holds


def wait_until(condition, what: str, timeout: float = WAIT_S) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"{what} within {timeout}s")
        time.sleep(0.2)


def test_health_needs_no_key_and_openapi_is_served(stack):
    assert requests.get(f"{stack.api_url}/health", timeout=30).json() == {"status": "ok"}
    doc = requests.get(f"{stack.api_url}/openapi.json", timeout=30).json()
    assert "/batches/{batch_id}/items" in doc["paths"]


def test_mixed_batch_ends_partial_with_exact_counts(client, proxies, site):
    base = site.base_url
    created = client.submit(
        [
            f"{base}/page/1",
            f"{base}/page/2",
            f"{base}/page/3",
            f"{base}/redirect/4",
            f"{base}/missing/1",
            f"{base}/missing/2",
            "mailto:someone@example.com",
            f"{base}/page/2",
        ]
    )
    assert created["total_items"] == 6
    assert created["duplicate_items"] == 1
    assert len(created["rejected_items"]) == 1
    seen = []
    final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.3, on_update=seen.append)
    assert all(adds_up(s) for s in seen), dump(seen)
    assert (final["status"], final["succeeded"], final["failed"], final["cancelled"]) == ("partial", 4, 2, 0)
    assert final["errors"]["by_code"] == {"http_404": 2}
    assert final["progress_pct"] == 100.0 and final["duration_s"] > 0
    rows = {r["item"]: r for r in client.items(created["batch_id"])}
    assert rows[f"{base}/page/3"]["result"]["title"] == "Demo page 3"
    assert rows[f"{base}/redirect/4"]["result"]["final_url"] == f"{base}/page/4"
    assert rows[f"{base}/missing/2"]["error"]["code"] == "http_404"
    failed = list(client.items(created["batch_id"], status="failed"))
    assert {r["item"] for r in failed} == {f"{base}/missing/1", f"{base}/missing/2"}


def test_batch_through_rate_limiting_proxies_still_succeeds_entirely(client, proxies, site):
    created = client.submit([f"{site.base_url}/limited/{i}" for i in range(12)], options={"max_attempts": 1})
    final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
    assert (final["status"], final["succeeded"], final["failed"]) == ("completed", 12, 0), dump(final)
    assert site.stats.rejected > 0
    rows = list(client.items(created["batch_id"]))
    assert all(r["attempts"] == 1 for r in rows)


def test_a_message_delivered_twice_is_counted_once(client, proxies, site, stack, sqs):
    created = client.submit([f"{site.base_url}/page/50"])
    first = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.3)
    assert first["succeeded"] == 1
    body = json.dumps(
        {
            "batch_id": created["batch_id"],
            "tenant_id": "t_local",
            "seq": 0,
            "shard": 0,
            "kind": "page",
            "item": f"{site.base_url}/page/50",
            "max_attempts": 3,
            "timeout_s": 20.0,
            "max_bytes": 2_000_000,
            "deferrals": 0,
        }
    )
    queue = stack.outputs["WorkQueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        if attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"the redelivered message was not consumed within {WAIT_S}s")
    again = client.status(created["batch_id"])
    assert (again["succeeded"], again["total_items"], again["status"]) == (1, 1, "completed")


def test_auth_and_tenant_isolation(stack, client, admin):
    r = requests.get(f"{stack.api_url}/batches", timeout=30)
    assert r.status_code == 401 and "message" in r.json()
    r = requests.get(f"{stack.api_url}/batches", headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert r.status_code == 401 and "message" in r.json()
    with pytest.raises(ApiError) as denied:
        client.proxies()
    assert denied.value.status == 403
    other = Client(stack.api_url, admin.create_tenant("other-co")["api_key"])
    mine = client.submit(["https://example.com/"], start=False)
    for call in (
        lambda: other.status(mine["batch_id"]),
        lambda: list(other.items(mine["batch_id"])),
        lambda: other.cancel(mine["batch_id"]),
        lambda: other.status("b_00000000000000000000"),
    ):
        with pytest.raises(ApiError) as nf:
            call()
        assert nf.value.status == 404
    assert mine["batch_id"] not in [b["batch_id"] for b in other.batches()["batches"]]
    client.cancel(mine["batch_id"])


def test_group_conflict_and_queueing(client, proxies, site):
    first = client.submit([f"{site.base_url}/page/{i}" for i in range(60, 64)], group="e2e-group")
    second = client.submit([f"{site.base_url}/page/70"], group="e2e-group")
    assert second["status"] == "queued"
    with pytest.raises(ApiError) as conflict:
        client.start(second["batch_id"])
    assert conflict.value.status == 409
    assert client.wait(first["batch_id"], timeout=WAIT_S)["status"] == "completed"
    assert client.wait(second["batch_id"], timeout=WAIT_S)["status"] == "completed"


def test_cancel_ends_the_rest_as_cancelled(client, proxies, site):
    created = client.submit([f"{site.base_url}/limited/c{i}" for i in range(30)])
    wait_until(lambda: client.status(created["batch_id"])["succeeded"] > 0, "no item succeeded")  # mid-flight
    assert client.cancel(created["batch_id"])["status"] == "cancelled"
    final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
    assert final["status"] == "cancelled"
    assert final["succeeded"] > 0
    assert final["cancelled"] > 0
    assert final["succeeded"] + final["failed"] + final["cancelled"] == 30
    with pytest.raises(ApiError) as ended:
        client.cancel(created["batch_id"])
    assert ended.value.status == 409


def test_scrape_one_page_synchronously(client, proxies, site):
    got = client.scrape(f"{site.base_url}/page/9")
    assert (got["status"], got["http_status"], got["result"]["h1"]) == ("succeeded", 200, "Heading 9")
    with pytest.raises(ApiError) as bad:
        client.scrape("ftp://example.com/")
    assert bad.value.status == 422


def test_bad_input_gets_a_4xx_and_creates_nothing(stack, client):
    def batch_ids() -> list[str]:
        # Ids, not whole views: a view's presigned results URLs change every second.
        return [b["batch_id"] for b in client.batches(limit=100)["batches"]]

    before = batch_ids()
    url = f"{stack.api_url}/batches"
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    for body in (
        "{oops",
        '{"items": []}',
        '{"items": ["ftp://x"]}',
        '{"items": ["a.com"], "kind": "tv"}',
        '{"items": "https://a.com"}',
    ):
        r = requests.post(url, data=body, headers=headers, timeout=30)
        assert r.status_code in (400, 422), (body, r.status_code, r.text)
        assert r.json()["message"]
    assert batch_ids() == before
