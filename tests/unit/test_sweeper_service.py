"""The maintenance sweeps on the fakes: what a crash at the wrong moment left stuck gets going again."""

from __future__ import annotations

import pytest
from scrapersky.models import BatchStatus, CreateBatchRequest
from scrapersky.services import batches, sweeper

from tests.fakes import FakeDeps, make_deps, page
from tests.unit.seeding import drain, urls

TENANT = "t_acme"


def create(deps: FakeDeps, items: list[str], group: str | None = None) -> dict:
    got = batches.create_batch(deps, TENANT, CreateBatchRequest(items=items, group=group))
    deps.clock.advance(1)
    return got


def status(deps: FakeDeps, batch_id: str) -> str:
    return batches.get_batch(deps, TENANT, batch_id)["status"]


def test_a_batch_whose_create_crashed_before_sending_its_chunks_is_sent_by_the_sweep_and_ends():
    deps = make_deps(proxies=1)
    for u in urls(3):
        deps.fetcher.script(u, page(u))
    deps.queue.fail_next("send_fanout", RuntimeError("the function timed out here"))
    with pytest.raises(RuntimeError):
        create(deps, urls(3))
    [stored] = deps.batches.batches.values()
    assert not stored.fanout_sent and deps.queue.fanout == []  # stored, nothing on its way

    assert sweeper.sweep(deps)["redriven"] == []  # too young: its create may still be sending
    deps.clock.advance(sweeper.UNSENT_AFTER_S + 1)
    assert sweeper.sweep(deps)["redriven"] == [stored.batch_id]
    drain(deps)
    assert status(deps, stored.batch_id) == "completed"
    assert deps.batches.totals(stored.batch_id).succeeded == 3
    assert sweeper.sweep(deps)["redriven"] == []  # sent once


def test_a_lock_held_by_an_ended_batch_is_released_and_the_next_batch_starts():
    deps = make_deps()
    first = create(deps, urls(1), group="nightly")["batch_id"]
    second = create(deps, urls(1, host="b.test"), group="nightly")["batch_id"]
    assert status(deps, second) == "queued"
    # the first batch ended, and its worker died before handing the group over
    assert deps.batches.end(first, BatchStatus.COMPLETED, deps.clock.now(), (BatchStatus.PENDING,))
    deps.queue.pop_fanout()

    report = sweeper.sweep(deps)

    assert report["released"] == [first] and report["started"] == [second]
    assert status(deps, second) == "pending"
    assert [m.batch_id for m in deps.queue.pop_fanout() if m.type == "dispatch"] == [second]


def test_a_free_group_with_a_batch_still_queued_starts_it():
    deps = make_deps()
    first = create(deps, urls(1), group="nightly")["batch_id"]
    second = create(deps, urls(1, host="b.test"), group="nightly")["batch_id"]
    assert deps.batches.end(first, BatchStatus.COMPLETED, deps.clock.now(), (BatchStatus.PENDING,))
    assert deps.batches.release_group(TENANT, "nightly", first)  # released, but the hand-over never happened
    assert sweeper.sweep(deps)["started"] == [second]
    assert status(deps, second) == "pending"


def test_a_live_batch_keeps_its_lock_and_its_line_waits():
    deps = make_deps()
    first = create(deps, urls(1), group="nightly")["batch_id"]
    second = create(deps, urls(1, host="b.test"), group="nightly")["batch_id"]
    report = sweeper.sweep(deps)
    assert report == {"redriven": [], "after_end": [], "released": [], "started": []}
    assert (status(deps, first), status(deps, second)) == ("pending", "queued")
    assert deps.batches.locks[TENANT, "nightly"] == first
