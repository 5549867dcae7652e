"""Results exports on the fakes: published once a batch ends (completed or cancelled), part by part from a cursor,
the same files whatever redeliveries happen, and `results_url` null until then."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

from scrapersky.models import BatchStatus, CreateBatchRequest, FanoutMessage, ItemStatus
from scrapersky.records import BatchRecord
from scrapersky.services import batches, export, fanout, worker
from scrapersky.services.lifecycle import request_export
from scrapersky.services.urls import list_urls

from tests.fakes import FakeDeps, Streamed, make_deps, page
from tests.unit.seeding import drain, seed_batch, urls
from tests.unit.sitemap_site import ROOT, Site, robots, run, seed, urlset

TENANT = "t_acme"


def create(deps: FakeDeps, items: list[str]) -> str:
    return batches.create_batch(deps, TENANT, CreateBatchRequest(items=items))["batch_id"]


def lines(deps: FakeDeps, batch_id: str) -> list[dict]:
    key = deps.batches.batches[batch_id].result_keys["jsonl"]
    return [json.loads(line) for line in deps.results.file(key).decode().splitlines()]


def csv_rows(deps: FakeDeps, batch_id: str) -> list[dict[str, str]]:
    key = deps.batches.batches[batch_id].result_keys["csv"]
    return list(csv.DictReader(io.StringIO(deps.results.file(key).decode())))


def cancelled_batch(deps: FakeDeps, n: int) -> BatchRecord:
    """A cancelled batch whose n items all ended cancelled (its sweep done)."""
    batch = seed_batch(deps, urls(n), shards=2, status=BatchStatus.CANCELLED)
    for seq in range(n):
        deps.items.cancel(deps.items.get(batch.batch_id, seq).ref, deps.clock.now())  # type: ignore[union-attr]
    return batch


def run_export(deps: FakeDeps) -> list[str]:
    outcomes = []
    while msgs := deps.queue.pop_fanout():
        outcomes += [fanout.handle(deps, m) for m in msgs]
    return outcomes


def test_results_urls_are_null_until_the_ended_batch_is_exported_then_hold_one_line_per_item_in_seq_order():
    deps = make_deps(proxies=1)
    deps.fetcher.default = lambda call: page(call.url, title=f"T {call.url}")
    batch_id = create(deps, urls(3))
    held: list[FanoutMessage] = []
    while deps.queue.fanout or deps.queue.work:  # everything but the export
        for m in deps.queue.pop_fanout():
            held.append(m) if m.type == "export" else fanout.handle(deps, m)
        for w in deps.queue.pop_work():
            worker.process(deps, w, worker.InvocationCache())
    deps.queue.fanout = held
    view = batches.get_batch(deps, TENANT, batch_id)
    assert view["status"] == "completed"
    assert (view["results_url"], view["results_csv_url"]) == (None, None)  # ended, not exported yet

    assert run_export(deps) == ["exported"]

    view = batches.get_batch(deps, TENANT, batch_id)
    assert view["results_url"].startswith("https://results.example/results/t_acme/")
    assert "expires=14400" in view["results_url"] and view["results_csv_url"].endswith(".csv")
    got = lines(deps, batch_id)
    listed = batches.list_items(deps, TENANT, batch_id, None, 100, None)["items"]
    assert got == [{"seq": i, **item} for i, item in enumerate(listed)]
    assert [g["item"] for g in got] == urls(3)
    rows = csv_rows(deps, batch_id)
    assert [r["seq"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["result.title"] == "T https://a.test/0" and rows[0]["status"] == "succeeded"
    assert rows[0]["error_code"] == "" and rows[0]["result.h1"] == ""
    assert list(rows[0]) == export.columns("page")
    listed_batch = batches.list_batches(deps, TENANT, None, None, 10, None)["batches"][0]
    assert listed_batch["results_url"] == view["results_url"]


def test_a_cancelled_batch_is_exported_once_its_sweep_ended_every_item():
    deps = make_deps()
    batch_id = create(deps, urls(4))
    batches.cancel_batch(deps, TENANT, batch_id)

    outcomes = drain(deps)

    assert outcomes[-2:] == ["cancel", "exported"]
    assert [line["status"] for line in lines(deps, batch_id)] == ["cancelled"] * 4
    assert batches.get_batch(deps, TENANT, batch_id)["results_url"] is not None


def test_a_large_export_is_written_one_part_per_message_each_resuming_from_its_cursor():
    deps = make_deps(export_part_bytes=20_000)
    deps.results.min_part_bytes = 20_000  # S3's minimum part size, scaled down
    batch = cancelled_batch(deps, 2 * export.PAGE + 500)
    request_export(deps, batch)

    outcomes = run_export(deps)

    assert outcomes == ["export_part", "export_part", "exported"]
    parts = [c.args[2] for c in deps.results.calls_to("write_part")]
    assert parts == [1, 1, 2, 2, 3, 3]  # one part of each file per message
    assert [line["seq"] for line in lines(deps, batch.batch_id)] == list(range(2 * export.PAGE + 500))
    assert len(csv_rows(deps, batch.batch_id)) == 2 * export.PAGE + 500  # one header row only
    total = sum(len(f) for f in deps.results.files.values())
    assert deps.results.largest_part < total / 2  # never the whole export in one piece


def test_a_redelivered_export_message_rewrites_the_same_part_and_publishes_the_same_files():
    deps = make_deps(export_part_bytes=20_000)
    batch = cancelled_batch(deps, 2 * export.PAGE + 1)
    request_export(deps, batch)
    first = deps.queue.pop_fanout()[0]
    assert fanout.handle(deps, first) == "export_part"
    second = deps.queue.pop_fanout()[0]
    assert fanout.handle(deps, second) == "export_part"
    assert fanout.handle(deps, second) == "export_part"  # redelivered: the chain forks, both write part 2
    assert run_export(deps) == ["exported", "already_exported"]
    once = dict(deps.results.files)

    clean = make_deps(export_part_bytes=20_000)
    request_export(clean, cancelled_batch(clean, 2 * export.PAGE + 1))
    assert run_export(clean) == ["export_part", "export_part", "exported"]
    assert clean.results.files == once
    assert fanout.handle(deps, first) == "already_exported"  # a late redelivery of the first message


def test_an_export_that_runs_twice_at_once_publishes_the_same_files():
    deps = make_deps()
    batch = cancelled_batch(deps, 5)
    request_export(deps, batch)
    request_export(deps, batch)
    a, b = deps.queue.pop_fanout()
    assert fanout.handle(deps, a) == "exported"
    before = dict(deps.results.files)
    deps.batches.batches[batch.batch_id] = batch  # b read the record before a recorded its keys
    assert export.handle(deps, b, batch) == "exported"
    assert deps.results.files == before


def test_an_export_waits_for_the_running_items_of_a_cancelled_batch_within_a_bound():
    deps = make_deps(lease_seconds=30)
    batch = seed_batch(deps, urls(3), status=BatchStatus.CANCELLED)
    claimed = deps.items.get(batch.batch_id, 1)
    assert claimed is not None
    now = deps.clock.now()
    deps.items.claim(claimed.ref, "w", now + 30, now)
    for seq in (0, 2):
        deps.items.cancel(deps.items.get(batch.batch_id, seq).ref, now)  # type: ignore[union-attr]
    request_export(deps, batch)

    msg = deps.queue.pop_fanout()[0]
    assert fanout.handle(deps, msg) == "export_waiting"
    assert deps.queue.fanout_delays == [export.WAIT_S]
    deps.items.cancel(claimed.ref, deps.clock.now(), claimed_by="w")  # its worker saw the cancel
    assert run_export(deps) == ["exported"]
    assert [line["status"] for line in lines(deps, batch.batch_id)] == ["cancelled"] * 3


def test_an_item_that_never_ends_delays_the_export_only_so_long():
    deps = make_deps(lease_seconds=30)
    batch = seed_batch(deps, urls(2), status=BatchStatus.CANCELLED)
    now = deps.clock.now()
    deps.items.claim(deps.items.get(batch.batch_id, 0).ref, "crashed", now + 30, now)  # type: ignore[union-attr]
    request_export(deps, batch)
    deps.clock.advance(export.settle_s(deps) + 1)

    assert run_export(deps) == ["exported"]
    assert [line["status"] for line in lines(deps, batch.batch_id)] == ["in_progress", "pending"]


def test_an_export_message_for_a_batch_still_running_changes_nothing():
    deps = make_deps()
    batch = seed_batch(deps, urls(2))
    msg = FanoutMessage(type="export", batch_id=batch.batch_id, tenant_id=batch.tenant_id)
    assert fanout.handle(deps, msg) == "not_ended"
    assert deps.results.calls == [] and deps.queue.fanout == []


def test_a_dead_lettered_export_message_touches_no_item():
    from scrapersky.services import dead_letters

    deps = make_deps()
    batch = seed_batch(deps, urls(2), status=BatchStatus.CANCELLED)
    msg = FanoutMessage(type="export", batch_id=batch.batch_id, tenant_id=batch.tenant_id)
    assert dead_letters.handle(deps, msg.model_dump_json()) == "export_abandoned"
    assert set(deps.items.statuses(batch.batch_id).values()) == {ItemStatus.PENDING}


def sitemap_batch(deps: FakeDeps, items: list[str], pages: dict) -> BatchRecord:
    """A sitemap batch run to its end on the fake site (its export held back)."""
    Site(deps, pages)
    batch = seed(deps, items)
    run(deps, batch)
    assert deps.batches.batches[batch.batch_id].status.terminal
    return batch


def all_urls(deps: FakeDeps, batch: BatchRecord) -> list[dict]:
    listed, cursor = [], None
    while True:
        page_ = list_urls(deps, batch.tenant_id, batch.batch_id, None, 7, cursor)
        listed += page_["urls"]
        if not (cursor := page_["next_cursor"]):
            return listed


SMALL_SITE = {
    "/robots.txt": Streamed(robots("/a.xml")),
    "/a.xml": Streamed(urlset("/1", "/2", "/3")),
    "/b.xml": Streamed(urlset("/3", "/4")),
}


def test_a_sitemap_batchs_files_hold_one_line_per_discovered_url_as_urls_lists_them():
    deps = make_deps(proxies=2, default_host_rate=20.0)
    batch = sitemap_batch(deps, [ROOT, "https://s.test/b.xml", "https://s.test/none.xml"], SMALL_SITE)
    deps.queue.pop_fanout()
    request_export(deps, deps.batches.batches[batch.batch_id])

    assert run_export(deps) == ["exported"]

    got = lines(deps, batch.batch_id)
    assert got == all_urls(deps, batch) and len(got) == 5  # /3 found by two items is there twice
    assert [line["url"] for line in got if line["url"].endswith("/3")] == ["https://s.test/3"] * 2
    assert set(got[0]) == {"url", "lastmod", "changefreq", "priority", "sitemap", "item"}
    rows = csv_rows(deps, batch.batch_id)
    assert list(rows[0]) == list(export.URL_COLUMNS) == export.columns("sitemap")
    assert [r["url"] for r in rows] == [line["url"] for line in got]
    assert rows[0]["lastmod"] == "2024-05-01" and rows[0]["priority"] == ""


def test_a_large_sitemap_export_is_written_in_parts_from_the_urls_cursor():
    deps = make_deps(proxies=2, default_host_rate=20.0, export_part_bytes=20_000)
    deps.results.min_part_bytes = 20_000
    paths = [f"/p/{i}" for i in range(1500)]
    batch = sitemap_batch(deps, [ROOT], {"/robots.txt": Streamed(robots("/a.xml")), "/a.xml": Streamed(urlset(*paths))})
    deps.queue.pop_fanout()
    request_export(deps, deps.batches.batches[batch.batch_id])

    outcomes = run_export(deps)

    assert outcomes == ["export_part", "exported"]  # a page of 1,000 URLs is past the part size
    assert [c.args[2] for c in deps.results.calls_to("write_part")] == [1, 1, 2, 2]
    got = lines(deps, batch.batch_id)
    assert got == all_urls(deps, batch) and len(got) == 1500
    assert len(csv_rows(deps, batch.batch_id)) == 1500  # one header row only


def test_a_cancelled_sitemap_batchs_export_waits_for_its_running_documents():
    deps = make_deps(lease_seconds=30)
    batch = seed(deps, [ROOT])
    deps.batches.batches[batch.batch_id] = batch = dataclasses.replace(batch, status=BatchStatus.CANCELLED)
    deps.items.cancel(deps.items.get(batch.batch_id, 0).ref, deps.clock.now())  # type: ignore[union-attr]
    request_export(deps, batch)

    assert fanout.handle(deps, deps.queue.pop_fanout()[0]) == "export_waiting"  # every item ended, a unit may run
    deps.clock.advance(export.settle_s(deps) + 1)
    assert run_export(deps) == ["exported"]
    assert lines(deps, batch.batch_id) == []
