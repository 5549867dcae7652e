"""The batches API's use cases on the fakes: create (tokens, rejects, 422s), start, cancel, and the views."""

from __future__ import annotations

import pytest
from scrapersky.errors import Conflict, InvalidInput, NotFound
from scrapersky.kinds.page import PageProcessor
from scrapersky.kinds.registry import KindRegistry
from scrapersky.models import BatchOptions, BatchStatus, CreateBatchRequest
from scrapersky.services import batches, fanout, worker

from tests.fakes import FakeBatchStore, FakeDeps, make_deps, page
from tests.unit.seeding import drain, urls

TENANT, OTHER = "t_acme", "t_other"


def create(deps: FakeDeps, items: list[str], tenant: str = TENANT, **fields: object) -> dict:
    return batches.create_batch(deps, tenant, CreateBatchRequest(items=items, **fields))


def status_of(deps: FakeDeps, batch_id: str) -> str:
    return batches.get_batch(deps, TENANT, batch_id)["status"]


# ---- create ----------------------------------------------------------------------------------------------------
def test_create_answers_the_new_batch_and_sends_a_small_first_chunk_then_full_ones():
    deps = make_deps(first_chunk_items=10, chunk_items=100)

    got = create(deps, urls(25))

    assert (got["status"], got["total_items"], got["rejected_items"], got["duplicate_items"]) == ("pending", 25, [], 0)
    assert got["status_url"] == f"/batches/{got['batch_id']}"
    assert got["created_at"] == "2026-01-01T00:00:00.000Z"
    assert got["estimated_completion_time"] == "2026-01-01T00:00:12.500Z"  # 25 items at 120 a minute
    chunks = deps.queue.pop_fanout()
    assert [(c.type, c.first_seq, len(c.items)) for c in chunks] == [("chunk", 0, 10), ("chunk", 10, 15)]
    assert chunks[1].items[0] == "https://a.test/10"


def test_create_counts_rejected_and_duplicate_items_and_stores_only_the_valid_ones():
    deps = make_deps()
    got = create(deps, ["a.test/1", "https://a.test/1", "http://127.0.0.1/", "ftp://a.test/"])
    assert got["total_items"] == 1 and got["duplicate_items"] == 1
    assert [r["item"] for r in got["rejected_items"]] == ["http://127.0.0.1/", "ftp://a.test/"]
    view = batches.get_batch(deps, TENANT, got["batch_id"])
    assert (view["total_items"], view["rejected_items"], view["duplicate_items"]) == (1, 2, 1)
    (chunk,) = deps.queue.pop_fanout()
    assert chunk.items == ["https://a.test/1"]


def test_a_batch_without_a_valid_item_is_a_422_and_nothing_is_created():
    deps = make_deps()
    with pytest.raises(InvalidInput) as e:
        create(deps, ["http://10.0.0.1/", "localhost"])
    assert e.value.status_code == 422 and [d["item"] for d in e.value.details] == ["http://10.0.0.1/", "localhost"]
    assert deps.batches.batches == {} and deps.queue.fanout == []


def test_a_kind_this_deployment_does_not_serve_is_a_422_and_nothing_is_created():
    deps = make_deps()
    deps.kinds = KindRegistry({"page": PageProcessor()})
    with pytest.raises(InvalidInput) as e:
        create(deps, urls(2), kind="profile")
    assert e.value.details[0]["field"] == "kind"
    assert deps.batches.batches == {} and deps.queue.fanout == []


def test_a_repeated_client_token_answers_the_same_batch_and_sends_its_items_once():
    deps = make_deps()
    first = create(deps, urls(3), client_token="order-42")
    deps.clock.advance(5)
    again = create(deps, urls(3), client_token="order-42")
    theirs = create(deps, urls(3), tenant=OTHER, client_token="order-42")

    assert again["batch_id"] == first["batch_id"] != theirs["batch_id"]
    assert again["created_at"] == first["created_at"]
    assert len(deps.batches.batches) == 2
    assert [c.batch_id for c in deps.queue.pop_fanout()] == [first["batch_id"], theirs["batch_id"]]


def test_a_create_replayed_after_a_crash_before_its_chunks_were_sent_sends_them():
    deps = make_deps()
    deps.queue.fail_next("send_fanout", RuntimeError("sqs unavailable"))
    with pytest.raises(RuntimeError):
        create(deps, urls(3), client_token="order-42")
    assert len(deps.batches.batches) == 1 and deps.queue.fanout == []

    again = create(deps, urls(3), client_token="order-42")

    (chunk,) = deps.queue.pop_fanout()
    assert chunk.batch_id == again["batch_id"] and chunk.items == urls(3)
    assert len(deps.batches.batches) == 1


# ---- start and cancel ------------------------------------------------------------------------------------------
def test_a_batch_created_unstarted_stores_its_items_and_works_only_once_started():
    deps = make_deps(proxies=1)
    deps.fetcher.default = lambda call: page(call.url)
    got = create(deps, urls(3), start=False)
    assert got["status"] == "queued"
    assert drain(deps) == ["stored"]
    assert status_of(deps, got["batch_id"]) == "queued"

    assert batches.start_batch(deps, TENANT, got["batch_id"]) == {"batch_id": got["batch_id"], "status": "pending"}

    assert drain(deps) == ["dispatch", "succeeded", "succeeded", "succeeded", "exported"]
    view = batches.get_batch(deps, TENANT, got["batch_id"])
    assert (view["status"], view["succeeded"], view["progress_pct"]) == ("completed", 3, 100.0)


def test_starting_a_batch_that_is_not_queued_is_a_409():
    deps = make_deps()
    got = create(deps, urls(2))
    with pytest.raises(Conflict) as e:
        batches.start_batch(deps, TENANT, got["batch_id"])
    assert e.value.status_code == 409 and "pending, not queued" in e.value.message


def test_starting_a_batch_whose_group_is_running_another_is_a_409_and_it_stays_queued():
    deps = make_deps()
    create(deps, urls(2), group="nightly")
    waiting = create(deps, urls(2), group="nightly", start=False)
    with pytest.raises(Conflict) as e:
        batches.start_batch(deps, TENANT, waiting["batch_id"])
    assert "group 'nightly'" in e.value.message
    assert status_of(deps, waiting["batch_id"]) == "queued"


class CancelledWhileStarting(FakeBatchStore):
    """A cancel lands between the start's read of the batch and its conditional write."""

    def take_group(self, tenant_id: str, group: str, batch_id: str) -> bool:
        taken = super().take_group(tenant_id, group, batch_id)
        self.end(batch_id, BatchStatus.CANCELLED, 0.0, (BatchStatus.QUEUED,))
        return taken


def test_a_start_that_loses_to_a_cancel_is_a_409_and_frees_the_group_it_took():
    deps = make_deps()
    deps.batches = CancelledWhileStarting()
    deps.items.batches = deps.batches
    got = create(deps, urls(2), group="nightly", start=False)

    with pytest.raises(Conflict) as e:
        batches.start_batch(deps, TENANT, got["batch_id"])

    assert "no longer queued" in e.value.message
    assert deps.batches.locks == {}
    assert create(deps, urls(2), group="nightly")["status"] == "pending"


def test_cancel_ends_the_batch_and_sweeps_its_items_and_a_second_cancel_is_a_409():
    deps = make_deps()
    got = create(deps, urls(3))
    drain(deps)  # no proxy: the chunk is stored, its work sent and deferred

    assert batches.cancel_batch(deps, TENANT, got["batch_id"]) == {"batch_id": got["batch_id"], "status": "cancelled"}
    assert [m.type for m in deps.queue.fanout] == ["cancel"]
    drain(deps)

    view = batches.get_batch(deps, TENANT, got["batch_id"])
    assert (view["status"], view["cancelled"], view["pending"]) == ("cancelled", 3, 0)
    with pytest.raises(Conflict) as e:
        batches.cancel_batch(deps, TENANT, got["batch_id"])
    assert "already ended (cancelled)" in e.value.message


def test_cancelling_a_completed_batch_is_a_409_and_it_stays_completed():
    deps = make_deps(proxies=1)
    deps.fetcher.default = lambda call: page(call.url)
    got = create(deps, urls(1))
    drain(deps)
    with pytest.raises(Conflict):
        batches.cancel_batch(deps, TENANT, got["batch_id"])
    assert status_of(deps, got["batch_id"]) == "completed"


@pytest.mark.parametrize(
    "use_case",
    [
        lambda deps, bid: batches.get_batch(deps, OTHER, bid),
        lambda deps, bid: batches.start_batch(deps, OTHER, bid),
        lambda deps, bid: batches.cancel_batch(deps, OTHER, bid),
        lambda deps, bid: batches.list_items(deps, OTHER, bid, None, 10, None),
    ],
    ids=["get", "start", "cancel", "items"],
)
def test_another_tenants_batch_is_a_404_and_is_left_alone(use_case):
    deps = make_deps()
    got = create(deps, urls(2), start=False)
    with pytest.raises(NotFound) as e:
        use_case(deps, got["batch_id"])
    assert e.value.status_code == 404
    assert status_of(deps, got["batch_id"]) == "queued"


def test_an_id_we_could_not_have_given_out_is_a_404_without_a_read():
    deps = make_deps()
    with pytest.raises(NotFound):
        batches.get_batch(deps, TENANT, "b_../../etc")
    assert deps.batches.calls == []


# ---- views -----------------------------------------------------------------------------------------------------
def test_the_batch_view_shows_counts_progress_and_errors_while_it_runs():
    deps = make_deps(proxies=1)
    deps.fetcher.default = lambda call: page(call.url, 404 if call.url.endswith("/1") else 200)
    got = create(deps, urls(4))
    for chunk in deps.queue.pop_fanout():
        fanout.handle(deps, chunk)
    for msg in deps.queue.pop_work()[:2]:  # two of the four items are done
        worker.process(deps, msg, worker.InvocationCache())

    view = batches.get_batch(deps, TENANT, got["batch_id"])

    assert (view["status"], view["succeeded"], view["failed"], view["pending"]) == ("processing", 1, 1, 2)
    assert view["progress_pct"] == 50.0 and view["group"] is None and view["kind"] == "page"
    assert view["errors"]["by_code"] == {"http_404": 1}
    assert view["errors"]["sample"][0]["item"] == "https://a.test/1"
    assert view["options"] == BatchOptions().model_dump()


def test_batches_list_newest_first_page_by_page_and_by_status():
    deps = make_deps()
    ids = []
    for n in range(5):
        ids.append(create(deps, urls(1), start=n % 2 == 0)["batch_id"])
        deps.clock.advance(1)
    create(deps, urls(1), tenant=OTHER)

    seen, cursor = [], None
    while True:
        got = batches.list_batches(deps, TENANT, None, None, 2, cursor)
        seen += [b["batch_id"] for b in got["batches"]]
        cursor = got["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    queued = batches.list_batches(deps, TENANT, "queued", None, 10, None)
    assert [b["batch_id"] for b in queued["batches"]] == [ids[3], ids[1]]


def test_a_cursor_we_did_not_give_out_is_a_422_naming_the_cursor():
    deps = make_deps()
    got = create(deps, urls(3))
    with pytest.raises(InvalidInput) as e:
        batches.list_batches(deps, TENANT, None, None, 10, "forged")
    assert e.value.status_code == 422 and e.value.details[0]["field"] == "cursor"
    with pytest.raises(InvalidInput) as e:
        batches.list_items(deps, TENANT, got["batch_id"], None, 10, "forged")
    assert e.value.details[0]["field"] == "cursor"


def test_the_items_view_shows_each_items_outcome_and_filters_by_status():
    deps = make_deps(proxies=1)
    deps.fetcher.default = lambda call: page(call.url, 404 if call.url.endswith("/1") else 200, title="T")
    got = create(deps, urls(3))
    drain(deps)

    every = batches.list_items(deps, TENANT, got["batch_id"], None, 10, None)
    failed = batches.list_items(deps, TENANT, got["batch_id"], "failed", 10, None)

    assert [(i["item"], i["status"]) for i in every["items"]] == [
        ("https://a.test/0", "succeeded"),
        ("https://a.test/1", "failed"),
        ("https://a.test/2", "succeeded"),
    ]
    first = every["items"][0]
    assert (first["attempts"], first["http_status"], first["result"]["title"]) == (1, 200, "T")
    assert first["started_at"].startswith("2026-01-01T") and first["duration_ms"] >= 0
    (bad,) = failed["items"]
    assert bad["error"] == {"code": "http_404", "message": "HTTP 404"} and every["next_cursor"] is None
    page_one = batches.list_items(deps, TENANT, got["batch_id"], None, 2, None)
    rest = batches.list_items(deps, TENANT, got["batch_id"], None, 2, page_one["next_cursor"])
    assert [i["item"] for i in page_one["items"] + rest["items"]] == urls(3) and rest["next_cursor"] is None
