"""A batch through the real handlers on moto, fetching from a loopback site through loopback proxies."""

from __future__ import annotations

import json

import pytest
from scrapersky.records import ItemEnd, ItemRef

from devstack.site import Site


def create(harness, items, **extra):
    status, body = harness.api("batches", "POST", "/batches", {"items": items, **extra})
    assert status == 201, body
    return body


def batch(harness, batch_id, tenant="t_local"):
    status, body = harness.api("status", "GET", f"/batches/{batch_id}", tenant=tenant)
    assert status == 200, body
    return body


def items(harness, batch_id, **query):
    status, body = harness.api("status", "GET", f"/batches/{batch_id}/items", query={"limit": "1000", **query})
    assert status == 200, body
    return body["items"]


def assert_matches_items(harness, view):
    """The counters agree with the item records themselves, status by status (not only in sum)."""
    rows = items(harness, view["batch_id"])
    assert len(rows) == view["total_items"]
    for status in ("succeeded", "failed", "cancelled", "in_progress", "pending"):
        assert sum(r["status"] == status for r in rows) == view[status], status


def test_mixed_batch_ends_partial_with_exact_counts_and_page_results(harness, pool, site):
    base = site.base_url
    created = create(
        harness,
        [f"{base}/page/1", f"{base}/page/2", f"{base}/redirect/3", f"{base}/missing/1", "ftp://nope", f"{base}/page/1"],
    )
    assert created["total_items"] == 4
    assert created["duplicate_items"] == 1
    assert [r["item"] for r in created["rejected_items"]] == ["ftp://nope"]

    harness.drain()

    view = batch(harness, created["batch_id"])
    assert (view["status"], view["succeeded"], view["failed"], view["pending"]) == ("partial", 3, 1, 0)
    assert view["errors"]["by_code"] == {"http_404": 1}
    assert view["errors"]["sample"][0]["code"] == "http_404"
    assert view["progress_pct"] == 100.0
    assert view["completed_at"] is not None
    by_item = {i["item"]: i for i in items(harness, created["batch_id"])}
    page = by_item[f"{base}/page/1"]["result"]
    assert page["status_code"] == 200
    assert page["title"] == "Demo page 1"
    assert page["description"] == "Description of page 1"
    assert page["canonical"] == "/page/1"
    assert page["h1"] == "Heading 1"
    assert page["bytes"] > 100
    assert by_item[f"{base}/redirect/3"]["result"]["final_url"] == f"{base}/page/3"
    missing = by_item[f"{base}/missing/1"]
    assert (missing["status"], missing["http_status"], missing["error"]["code"]) == ("failed", 404, "http_404")
    assert [i["item"] for i in items(harness, created["batch_id"], status="failed")] == [f"{base}/missing/1"]
    assert_matches_items(harness, view)


def test_rate_limited_pages_all_succeed_without_spending_attempts(harness, pool):
    # The site allows each proxy one request per 2 s: slower than the default pace, so it pushes back.
    with Site(rate=0.5, burst=1.0) as strict:
        created = create(harness, [f"{strict.base_url}/limited/{i}" for i in range(8)], options={"max_attempts": 1})
        harness.drain()
    view = batch(harness, created["batch_id"])
    assert (view["status"], view["succeeded"], view["failed"]) == ("completed", 8, 0)
    assert strict.stats.rejected > 0, "the site should have pushed back at least once"
    rows = items(harness, created["batch_id"])
    assert all(r["attempts"] == 1 for r in rows)
    assert sum(r["deferrals"] for r in rows) >= 1
    assert view["retries"] >= 1


def test_message_delivered_twice_is_counted_once(harness, pool, site):
    created = create(harness, [f"{site.base_url}/page/7"])
    harness.drain(queues=("FanoutQueue",))
    [msg] = harness.receive("WorkQueue")
    harness.deliver("WorkQueue", "worker", [msg])
    # the same body arrives again (at-least-once delivery)
    harness.sqs.send_message(QueueUrl=harness.urls["WorkQueue"], MessageBody=msg["Body"])
    harness.drain()
    view = batch(harness, created["batch_id"])
    assert (view["status"], view["succeeded"], view["total_items"]) == ("completed", 1, 1)
    assert site.stats.served["page"] == 1, "a redelivered finished item is not fetched again"


def test_replayed_chunk_neither_duplicates_nor_resets_items(harness, pool, site):
    created = create(harness, [f"{site.base_url}/page/{i}" for i in range(3)])
    [chunk] = harness.receive("FanoutQueue")
    harness.deliver("FanoutQueue", "fanout", [chunk])
    harness.drain(queues=("WorkQueue",))
    assert batch(harness, created["batch_id"])["status"] == "completed"
    harness.sqs.send_message(QueueUrl=harness.urls["FanoutQueue"], MessageBody=chunk["Body"])
    harness.drain()
    view = batch(harness, created["batch_id"])
    assert (view["status"], view["succeeded"], view["total_items"]) == ("completed", 3, 3)
    assert len(items(harness, created["batch_id"])) == 3
    assert all(i["status"] == "succeeded" for i in items(harness, created["batch_id"]))


def test_items_wait_while_no_proxy_is_registered_and_run_once_one_is(harness, proxy_servers, site):
    created = create(harness, [f"{site.base_url}/page/1"])
    harness.drain(queues=("FanoutQueue",))
    [msg] = harness.receive("WorkQueue")
    result = harness.deliver("WorkQueue", "worker", [msg])
    assert len(result["batchItemFailures"]) == 1  # deferred, not failed
    view = batch(harness, created["batch_id"])
    assert (view["pending"], view["failed"]) == (1, 0)
    harness.api("admin", "POST", "/proxies", {"url": proxy_servers[0].url}, tenant="t_admin", role="admin")
    harness.drain()
    assert batch(harness, created["batch_id"])["status"] == "completed"


def test_transient_errors_retry_up_to_max_attempts_then_fail(harness, pool, site):
    created = create(harness, [f"{site.base_url}/error/1"], options={"max_attempts": 2})
    harness.drain()
    view = batch(harness, created["batch_id"])
    assert (view["status"], view["failed"], view["errors"]["by_code"]) == ("failed", 1, {"http_500": 1})
    [row] = items(harness, created["batch_id"])
    assert row["attempts"] == 2
    assert view["retries"] == 1


def test_cancel_mid_flight_ends_unfinished_items_cancelled(harness, pool, site):
    created = create(harness, [f"{site.base_url}/page/{i}" for i in range(6)])
    harness.drain(queues=("FanoutQueue",))
    first = harness.receive("WorkQueue", max_messages=2)
    harness.deliver("WorkQueue", "worker", first)
    status, body = harness.api("batches", "POST", f"/batches/{created['batch_id']}/cancel")
    assert (status, body["status"]) == (202, "cancelled")
    harness.drain()
    view = batch(harness, created["batch_id"])
    assert view["status"] == "cancelled"
    assert view["succeeded"] == len(first)
    assert view["cancelled"] == 6 - len(first)
    assert_matches_items(harness, view)
    status, body = harness.api("batches", "POST", f"/batches/{created['batch_id']}/cancel")
    assert status == 409


def test_group_runs_one_batch_at_a_time_and_starts_the_next_by_itself(harness, pool, site):
    first = create(harness, [f"{site.base_url}/page/1"], group="niche-1")
    second = create(harness, [f"{site.base_url}/page/2"], group="niche-1")
    assert (first["status"], second["status"]) == ("pending", "queued")
    status, body = harness.api("batches", "POST", f"/batches/{second['batch_id']}/start")
    assert status == 409 and "niche-1" in body["message"]
    harness.drain()
    assert batch(harness, first["batch_id"])["status"] == "completed"
    assert batch(harness, second["batch_id"])["status"] == "completed"


def test_queued_batch_waits_for_start(harness, pool, site):
    created = create(harness, [f"{site.base_url}/page/1"], start=False)
    assert created["status"] == "queued"
    harness.drain()
    assert batch(harness, created["batch_id"])["status"] == "queued"
    status, body = harness.api("batches", "POST", f"/batches/{created['batch_id']}/start")
    assert (status, body["status"]) == (202, "pending")
    harness.drain()
    assert batch(harness, created["batch_id"])["status"] == "completed"
    assert harness.api("batches", "POST", f"/batches/{created['batch_id']}/start")[0] == 409


def test_poison_message_reaches_the_dlq_and_ends_as_a_failed_item(harness, pool, site):
    created = create(harness, [f"{site.base_url}/page/1", f"{site.base_url}/page/2"])
    harness.drain(queues=("FanoutQueue",))
    msgs = harness.receive("WorkQueue")
    poisoned = json.loads(msgs[0]["Body"])
    poisoned["kind"] = "unknown-kind"  # fails validation in every delivery
    harness.sqs.delete_message(QueueUrl=harness.urls["WorkQueue"], ReceiptHandle=msgs[0]["ReceiptHandle"])
    harness.deliver("WorkQueue", "worker", msgs[1:])
    # as the redrive policy does after maxReceiveCount failed deliveries
    harness.sqs.send_message(QueueUrl=harness.urls["WorkDLQ"], MessageBody=json.dumps(poisoned))
    harness.drain()
    view = batch(harness, created["batch_id"])
    assert (view["status"], view["succeeded"], view["failed"]) == ("partial", 1, 1)
    assert view["errors"]["by_code"] == {"poison_message": 1}


@pytest.mark.parametrize("count", [10_000])
def test_ten_thousand_items_are_accepted_and_chunked(harness, count):
    created = create(harness, [f"https://site{i}.example.com/" for i in range(count)], start=False)
    assert created["total_items"] == count
    chunks = []
    while msgs := harness.receive("FanoutQueue"):
        chunks.extend(json.loads(m["Body"]) for m in msgs)
        for m in msgs:
            harness.sqs.delete_message(QueueUrl=harness.urls["FanoutQueue"], ReceiptHandle=m["ReceiptHandle"])
    assert sum(len(c["items"]) for c in chunks) == count
    assert sorted(c["first_seq"] for c in chunks)[:3] == [0, 10, 110]  # a small first chunk, then 100 each
    assert max(len(c["items"]) for c in chunks) == 100


def test_a_long_deferred_item_is_resent_fresh_instead_of_reaching_the_dlq(harness, site):
    # no proxy at all: every delivery defers; near maxReceiveCount the item must not be redriven to the DLQ
    created = create(harness, [f"{site.base_url}/page/1"])
    harness.drain(queues=("FanoutQueue",))
    [msg] = harness.receive("WorkQueue")
    msg["Attributes"]["ApproximateReceiveCount"] = str(harness.deps.settings.work_max_receive_count - 1)
    result = harness.deliver("WorkQueue", "worker", [msg])
    assert result["batchItemFailures"] == []  # the old message is deleted...
    assert harness.receive("WorkQueue") == []  # ...and a fresh one waits out its DelaySeconds
    [fresh] = harness.wait_for_messages("WorkQueue")
    assert json.loads(fresh["Body"])["deferrals"] == 1
    assert fresh["Attributes"]["ApproximateReceiveCount"] == "1"
    assert batch(harness, created["batch_id"])["pending"] == 1


def test_the_batch_finishes_once_every_shard_is_done_across_many_shards(harness, pool, site):
    # the items span 3 counter shards; only the last item of each shard looks at the whole batch. The test is
    # about shards, not throughput: small shards (a settings knob), few items, and the site configured (hosts
    # API) as allowing a fast pace, so no minutes go in pacing.
    harness.deps.settings = harness.deps.settings.model_copy(update={"counter_shard_items": 10})
    status, body = harness.api(
        "admin", "PUT", "/hosts/localhost", {"rate": 50, "max_rate": 50}, tenant="t_admin", role="admin"
    )
    assert status == 200, body
    created = create(harness, [f"{site.base_url}/page/{i}" for i in range(25)])
    assert harness.deps.batches.get(created["batch_id"]).shards == 3
    harness.drain(timeout=600)  # a bound for a busy machine; it returns as soon as the queues are empty
    view = batch(harness, created["batch_id"])
    assert (view["status"], view["succeeded"], view["pending"]) == ("completed", 25, 0)


def test_cancel_ends_an_item_whose_worker_crashed_mid_fetch(harness, pool, site):
    created = create(harness, [f"{site.base_url}/page/1"])
    harness.drain(queues=("FanoutQueue",))
    [msg] = harness.receive("WorkQueue")
    now = harness.deps.clock.now()
    # a worker claimed it and died: its claim has lapsed, the item is still in_progress
    harness.deps.items.claim(ItemRef(created["batch_id"], 0, 0), "crashed-worker", now - 1, now - 100)
    assert batch(harness, created["batch_id"])["in_progress"] == 1
    assert harness.api("batches", "POST", f"/batches/{created['batch_id']}/cancel")[0] == 202
    harness.deliver("WorkQueue", "worker", [msg])  # the redelivery after the visibility timeout
    harness.drain()
    view = batch(harness, created["batch_id"])
    assert (view["status"], view["cancelled"], view["in_progress"]) == ("cancelled", 1, 0)
    assert_matches_items(harness, view)


def test_a_redelivery_closes_a_batch_whose_worker_died_after_the_final_write(harness, pool, site):
    created = create(harness, [f"{site.base_url}/page/1"])
    harness.drain(queues=("FanoutQueue",))
    [msg] = harness.receive("WorkQueue")
    now = harness.deps.clock.now()
    harness.deps.items.claim(ItemRef(created["batch_id"], 0, 0), "dying-worker", now + 30, now)
    end = ItemEnd(succeeded=True, item=f"{site.base_url}/page/1")
    harness.deps.items.finish(ItemRef(created["batch_id"], 0, 0), "dying-worker", end, now)
    # ...and the worker died before closing the batch
    assert batch(harness, created["batch_id"])["status"] == "pending"  # the item is done, the batch is not closed
    harness.deliver("WorkQueue", "worker", [msg])
    view = batch(harness, created["batch_id"])
    assert (view["status"], view["succeeded"]) == ("completed", 1)


def test_a_record_the_invocation_has_no_time_left_for_goes_back_untouched(harness, pool, site):
    from scrapersky.models import WorkMessage
    from scrapersky.services import worker

    created = create(harness, [f"{site.base_url}/page/1"])
    harness.drain(queues=("FanoutQueue",))
    [msg] = harness.receive("WorkQueue")
    with pytest.raises(worker.Deferred):
        worker.handle_record(
            harness.deps,
            WorkMessage.model_validate_json(msg["Body"]),
            msg["ReceiptHandle"],
            1,
            worker.InvocationCache(),
            remaining_ms=5_000,
        )
    assert site.stats.served["page"] == 0  # not fetched
    assert batch(harness, created["batch_id"])["pending"] == 1
    assert len(harness.receive("WorkQueue")) == 1  # visible again at once


def test_a_chunks_work_goes_out_part_by_part_as_its_items_are_written(harness, monkeypatch):
    """Workers start on a chunk's first items while the fan-out is still writing the rest."""
    created = create(harness, [f"https://site{i}.example.com/" for i in range(60)])
    seen: list[tuple[str, int]] = []
    store, queue = harness.deps.items, harness.deps.queue
    put, send = store.put_pending, queue.send_work
    waiting_at_write: list[int] = []  # work messages a worker could already take, each time records are written

    def waiting() -> int:
        attrs = harness.sqs.get_queue_attributes(
            QueueUrl=harness.urls["WorkQueue"], AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    monkeypatch.setattr(
        store,
        "put_pending",
        lambda *a: waiting_at_write.append(waiting()) or seen.append(("write", len(a[2]))) or put(*a),
    )
    monkeypatch.setattr(queue, "send_work", lambda msgs, **kw: seen.append(("send", len(msgs))) or send(msgs, **kw))
    harness.drain(queues=("FanoutQueue",))
    assert max(waiting_at_write) >= 25  # a whole part was ready for workers while the chunk was still being written
    pairs = list(zip(seen[::2], seen[1::2], strict=True))  # chunks (10, then 50) may run in either order
    assert [(w[0], s[0]) for w, s in pairs] == [("write", "send")] * 3  # each part is sent once written
    assert sorted(w[1] for w, s in pairs) == [10, 25, 25] and all(w[1] == s[1] for w, s in pairs)
    queued = [json.loads(m["Body"])["seq"] for _ in range(10) for m in harness.receive("WorkQueue")]
    assert sorted(queued) == list(range(60))
    assert batch(harness, created["batch_id"])["pending"] == 60
