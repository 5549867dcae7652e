"""Dead letters on the fakes: whatever reached a DLQ ends its items (failed, or cancelled), once, and no batch hangs."""

from __future__ import annotations

import json

import pytest
from scrapersky.models import BatchStatus, FanoutMessage, ItemStatus
from scrapersky.records import ItemEnd, ItemRef
from scrapersky.services import dead_letters

from tests.fakes import FakeDeps, make_deps
from tests.unit.seeding import seed_batch, urls, work


def poison(deps: FakeDeps, body: object) -> str:
    return dead_letters.handle(deps, body if isinstance(body, str) else json.dumps(body))


def test_a_poisoned_work_item_ends_failed_once_and_its_batch_ends():
    deps = make_deps()
    batch = seed_batch(deps, urls(1))
    body = work(batch, 0).model_dump_json()

    assert poison(deps, body) == "item_failed"
    assert poison(deps, body) == "item_failed"  # the DLQ delivered it twice

    rec = deps.items.record(batch.batch_id, 0)
    assert rec.status is ItemStatus.FAILED and rec.error is not None and rec.error.code == "poison_message"
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.failed, totals.finished, totals.errors) == (1, 1, {"poison_message": 1})
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.FAILED


def test_a_poisoned_item_its_crashed_worker_held_ends_failed_and_leaves_nothing_in_progress():
    deps = make_deps()
    batch = seed_batch(deps, urls(2))
    now = deps.clock.now()
    deps.items.claim(ItemRef(batch.batch_id, 1, 0), "crashed", now + 90, now)
    deps.items.claim(ItemRef(batch.batch_id, 0, 0), "w", now + 90, now)
    deps.items.finish(ItemRef(batch.batch_id, 0, 0), "w", ItemEnd(succeeded=True, item=urls(1)[0]), now)

    assert poison(deps, work(batch, 1).model_dump_json()) == "item_failed"

    totals = deps.batches.totals(batch.batch_id)
    assert (totals.succeeded, totals.failed, totals.in_progress) == (1, 1, 0)
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.PARTIAL


def test_a_finished_item_reaching_the_dlq_keeps_its_result():
    deps = make_deps()
    batch = seed_batch(deps, urls(1))
    now = deps.clock.now()
    deps.items.claim(ItemRef(batch.batch_id, 0, 0), "w", now + 90, now)
    deps.items.finish(ItemRef(batch.batch_id, 0, 0), "w", ItemEnd(succeeded=True, item=urls(1)[0]), now)

    poison(deps, work(batch, 0).model_dump_json())

    assert deps.items.record(batch.batch_id, 0).status is ItemStatus.SUCCEEDED
    assert deps.batches.totals(batch.batch_id).failed == 0


def test_a_poisoned_pending_item_of_a_cancelled_batch_ends_cancelled_not_failed():
    deps = make_deps()
    batch = seed_batch(deps, urls(2), status=BatchStatus.CANCELLED)

    assert poison(deps, work(batch, 0).model_dump_json()) == "item_cancelled"

    assert deps.items.record(batch.batch_id, 0).status is ItemStatus.CANCELLED
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.cancelled, totals.failed) == (1, 0)


def test_a_poisoned_chunk_fails_every_item_even_those_never_stored_and_ends_the_batch():
    deps = make_deps()
    batch = seed_batch(deps, urls(3), stored=False)
    body = FanoutMessage(type="chunk", batch_id=batch.batch_id, tenant_id="t_acme", items=urls(3)).model_dump_json()

    assert poison(deps, body) == "chunk_settled"
    assert poison(deps, body) == "chunk_settled"

    assert deps.items.statuses(batch.batch_id) == dict.fromkeys(range(3), ItemStatus.FAILED)
    assert deps.items.record(batch.batch_id, 2).item == "https://a.test/2"
    totals = deps.batches.totals(batch.batch_id)
    assert (totals.failed, totals.finished) == (3, 3)
    assert deps.batches.batches[batch.batch_id].status is BatchStatus.FAILED


def test_a_poisoned_dispatch_fails_the_pending_items_and_a_poisoned_cancel_cancels_them():
    deps = make_deps()
    dispatched = seed_batch(deps, urls(2), n=1)
    cancelled = seed_batch(deps, urls(2), n=2, status=BatchStatus.CANCELLED)

    for kind, batch in (("dispatch", dispatched), ("cancel", cancelled)):
        assert poison(deps, {"type": kind, "batch_id": batch.batch_id, "tenant_id": "t_acme"}) == f"{kind}_settled"

    assert set(deps.items.statuses(dispatched.batch_id).values()) == {ItemStatus.FAILED}
    assert deps.batches.batches[dispatched.batch_id].status is BatchStatus.FAILED
    assert set(deps.items.statuses(cancelled.batch_id).values()) == {ItemStatus.CANCELLED}


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '{"seq": 0}',
        '"b_00000000000000000001"',
    ],
)
def test_an_unreadable_body_is_settled_without_changing_anything(body):
    deps = make_deps()
    batch = seed_batch(deps, urls(1))
    assert dead_letters.handle(deps, body) == "unreadable"
    assert deps.items.statuses(batch.batch_id) == {0: ItemStatus.PENDING}


@pytest.mark.parametrize(
    "body",
    [
        {"batch_id": "b_00000000000000000001", "seq": "zero"},
        {"batch_id": "b_00000000000000000001", "type": "resend"},
        {"batch_id": "b_00000000000000000001", "type": "chunk", "items": "https://a.test/0"},
    ],
)
def test_a_body_naming_a_batch_but_otherwise_unreadable_is_settled_without_changing_anything(body):
    deps = make_deps()
    batch = seed_batch(deps, urls(1))
    assert poison(deps, body) == "unreadable"
    assert deps.items.statuses(batch.batch_id) == {0: ItemStatus.PENDING}


def test_a_dead_letter_of_an_unknown_batch_changes_nothing():
    deps = make_deps()
    batch = seed_batch(deps, urls(1))
    assert poison(deps, work(batch, 0, batch_id="b_" + "9" * 20).model_dump_json()) == "unknown_batch"
    assert deps.items.statuses(batch.batch_id) == {0: ItemStatus.PENDING}
