"""Results exports on the local stack: an ended page batch's results URL downloads without a key and holds one
JSON line per item with its `seq`; the CSV has a header row and the same items."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
import requests
from scrapersky_client import cli

pytestmark = pytest.mark.e2e

WAIT_S = 300  # a bound for a busy machine: every wait returns as soon as its condition holds


def test_results_of_an_ended_page_batch_download_without_a_key_one_line_per_item(client, proxies, site, tmp_path):
    base = site.base_url
    items = [f"{base}/page/{i}" for i in range(1, 6)] + [f"{base}/missing/1"]
    created = client.submit(items)
    batch_id = created["batch_id"]
    final = client.wait(batch_id, timeout=WAIT_S, interval=0.5)
    assert final["status"] == "partial"

    url = client.results_url(batch_id, wait_s=WAIT_S)  # the export follows the batch's end
    got = requests.get(url, timeout=60)  # no Authorization header
    assert got.status_code == 200, got.text[:500]
    lines = [json.loads(line) for line in got.text.splitlines()]
    assert [line["seq"] for line in lines] == list(range(len(items)))
    assert [line["item"] for line in lines] == items
    assert [line["status"] for line in lines] == ["succeeded"] * 5 + ["failed"]
    assert lines[0]["result"]["title"] == "Demo page 1"
    assert lines[-1]["error"]["code"] == "http_404"
    listed = list(client.items(batch_id))
    assert [{k: v for k, v in line.items() if k != "seq"} for line in lines] == listed

    rows = list(csv.DictReader(io.StringIO(requests.get(client.results_url(batch_id, "csv"), timeout=60).text)))
    assert [r["item"] for r in rows] == items and rows[0]["result.title"] == "Demo page 1"
    streamed = b"".join(client.results(batch_id))
    assert streamed.decode() == got.text
    args = ["--url", client.base_url, "--key", client.api_key]
    assert cli.main([*args, "results", batch_id, "-o", str(tmp_path / "r.jsonl")]) == 0
    assert (tmp_path / "r.jsonl").read_text() == got.text
    assert cli.main([*args, "urls", batch_id, "-o", str(tmp_path / "u.jsonl")]) == 0
    assert (tmp_path / "u.jsonl").read_text() == ""  # a page batch discovers no URLs


def test_results_url_is_null_while_a_batch_runs(client, proxies, site):
    created = client.submit([f"{site.base_url}/page/{i}" for i in range(3)], start=False)
    view = client.status(created["batch_id"])
    assert (view["status"], view["results_url"], view["results_csv_url"]) == ("queued", None, None)
    client.cancel(created["batch_id"])
    end = time.monotonic() + WAIT_S
    while client.status(created["batch_id"])["results_url"] is None:  # a cancelled batch is exported too
        assert time.monotonic() < end, "no results_url for the cancelled batch"
        time.sleep(0.5)
    lines = [json.loads(x) for x in b"".join(client.results(created["batch_id"])).decode().splitlines()]
    assert [(x["seq"], x["status"]) for x in lines] == [(0, "cancelled"), (1, "cancelled"), (2, "cancelled")]
