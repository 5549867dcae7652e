"""Results exports on moto: the files land in the results bucket through the fan-out consumer, and the batch's
results URLs are presigned GETs valid for at least an hour (moto has no server to GET them from here)."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import parse_qs, urlsplit

import boto3
from scrapersky.adapters.s3_results import S3ResultStore

from devstack.sitemap_site import EXPECTED_PATHS, SitemapSite
from tests.integration.conftest import RESULTS_BUCKET


def _object(url: str) -> tuple[str, bytes]:
    """The key a presigned URL points at, and that object's content read through boto3."""
    parts = urlsplit(url)
    path = parts.path.lstrip("/")
    key = path if parts.netloc.startswith(f"{RESULTS_BUCKET}.") else path.removeprefix(f"{RESULTS_BUCKET}/")
    got = boto3.client("s3", region_name="us-east-1").get_object(Bucket=RESULTS_BUCKET, Key=key)
    return key, got["Body"].read()


def test_an_ended_page_batch_exports_json_lines_and_csv_behind_presigned_urls(harness, pool, site):
    base = site.base_url
    status, created = harness.api(
        "batches", "POST", "/batches", {"items": [f"{base}/page/1", f"{base}/missing/1", f"{base}/page/2"]}
    )
    assert status == 201, created
    batch_id = created["batch_id"]

    harness.drain()

    status, view = harness.api("status", "GET", f"/batches/{batch_id}")
    assert status == 200 and view["status"] == "partial"
    for name in ("results_url", "results_csv_url"):
        query = parse_qs(urlsplit(view[name]).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Signature"]
        assert int(query["X-Amz-Expires"][0]) >= 3600
    key, body = _object(view["results_url"])
    assert key == f"results/t_local/{batch_id}/results.jsonl"
    lines = [json.loads(line) for line in body.decode().splitlines()]
    _, listed = harness.api("status", "GET", f"/batches/{batch_id}/items")
    assert lines == [{"seq": i, **item} for i, item in enumerate(listed["items"])]
    assert [line["status"] for line in lines] == ["succeeded", "failed", "succeeded"]
    _, body = _object(view["results_csv_url"])
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [(r["seq"], r["error_code"], r["result.title"]) for r in rows] == [
        ("0", "", "Demo page 1"),
        ("1", "http_404", rows[1]["result.title"]),
        ("2", "", "Demo page 2"),
    ]
    head = boto3.client("s3", region_name="us-east-1").head_object(Bucket=RESULTS_BUCKET, Key=key)
    assert head["ContentType"] == "application/x-ndjson"


def test_a_multipart_export_survives_a_repeated_part_and_a_repeated_completion(harness):
    s3 = boto3.client("s3", region_name="us-east-1")
    store = S3ResultStore(RESULTS_BUCKET, s3)
    upload = store.begin("results/t/b/x.jsonl", "application/x-ndjson")
    big = b"x" * (5 * 2**20) + b"\n"
    store.write_part("results/t/b/x.jsonl", upload, 1, big)
    store.write_part("results/t/b/x.jsonl", upload, 1, big)  # a redelivered message
    store.write_part("results/t/b/x.jsonl", upload, 2, b"last\n")
    store.complete("results/t/b/x.jsonl", upload)
    store.complete("results/t/b/x.jsonl", upload)  # another delivery of the last message: nothing changes
    body = s3.get_object(Bucket=RESULTS_BUCKET, Key="results/t/b/x.jsonl")["Body"].read()
    assert body == big + b"last\n"


def test_the_results_bucket_is_made_from_the_template_rules(harness):
    s3 = boto3.client("s3", region_name="us-east-1")
    block = s3.get_public_access_block(Bucket=RESULTS_BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=RESULTS_BUCKET)["Rules"]
    assert rule["Expiration"]["Days"] == 30


def test_the_sample_export_event_replays_through_the_fan_out_function(harness):
    from tests.conftest import load_event

    result = harness.handler("fanout")(load_event("sqs_fanout_export.json"), harness.context)
    assert result == {"batchItemFailures": []}  # its batch is unknown here: settled, never a failure


def test_a_sitemap_batchs_results_hold_one_line_per_listed_url_and_the_csv_the_same_columns(harness, pool):
    with SitemapSite() as sitemap_site:
        base = sitemap_site.base_url
        items = [f"{base}/", f"{base}/a.xml"]  # /a/1 and /a/2 found by both items: twice in the files
        status, created = harness.api("batches", "POST", "/batches", {"kind": "sitemap", "items": items})
        assert status == 201, created
        batch_id = created["batch_id"]
        harness.drain()

    status, view = harness.api("status", "GET", f"/batches/{batch_id}")
    assert status == 200 and view["status"] == "completed", view
    listed, cursor = [], None
    while True:
        query = {"limit": "5", **({"cursor": cursor} if cursor else {})}
        status, page = harness.api("status", "GET", f"/batches/{batch_id}/urls", query=query)
        assert status == 200, page
        listed += page["urls"]
        if not (cursor := page["next_cursor"]):
            break
    assert len(listed) == len(EXPECTED_PATHS) + 2

    key, body = _object(view["results_url"])
    assert key == f"results/t_local/{batch_id}/results.jsonl"
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines == listed  # the /urls entries exactly, in their order
    assert sorted(line["url"] for line in lines if line["item"] == f"{base}/") == sorted(
        base + p for p in EXPECTED_PATHS
    )
    _, body = _object(view["results_csv_url"])
    text = body.decode()
    assert text.splitlines()[0] == "url,lastmod,changefreq,priority,sitemap,item"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["url"], r["sitemap"], r["item"]) for r in rows] == [(u["url"], u["sitemap"], u["item"]) for u in listed]
    assert {r["changefreq"] for r in rows} == {"daily", ""}  # the urlsets say daily; text and feeds say nothing
