"""What follows a batch's end survives a crash right after the end write: the end marks the batch, the sender
clears the mark, and the maintenance sweep sends again what a crashed sender did not (services/sweeper.py)."""

from __future__ import annotations

import pytest
from scrapersky.domain.events import event_id
from scrapersky.models import CreateBatchRequest
from scrapersky.services import batches, fanout, sweeper

from tests.fakes import FakeDeps, make_deps, page
from tests.unit.seeding import drain, urls

TENANT = "t_acme"
CRASH = RuntimeError("the function timed out here")


def create(deps: FakeDeps, items: list[str], group: str | None = None) -> str:
    for u in items:
        deps.fetcher.script(u, page(u))
    got = batches.create_batch(deps, TENANT, CreateBatchRequest(items=items, group=group))
    deps.clock.advance(1)
    return str(got["batch_id"])


def view(deps: FakeDeps, batch_id: str) -> dict:
    return batches.get_batch(deps, TENANT, batch_id)


def finished_events(deps: FakeDeps, batch_id: str) -> list[str]:
    return [m.event_id for m, _ in deps.events.queue.pop() if m.event == "batch.finished" and m.batch_id == batch_id]


def test_a_crash_right_after_the_end_write_is_recovered_by_the_sweep():
    deps = make_deps(proxies=1)
    first = create(deps, urls(2), group="nightly")
    second = create(deps, urls(1, host="b.test"), group="nightly")
    deps.events.queue.fail_next("send_event", CRASH)  # the worker that ends the batch dies sending batch.finished
    with pytest.raises(RuntimeError):
        drain(deps)
    deps.queue.pop_fanout(), deps.queue.pop_work()  # what else the dead invocation had queued: gone with it
    assert view(deps, first)["status"] == "completed"
    assert finished_events(deps, first) == []
    assert view(deps, first)["results_url"] is None and view(deps, second)["status"] == "queued"

    assert sweeper.sweep(deps)["after_end"] == []  # ended just now: its sender may still be sending
    deps.clock.advance(sweeper.AFTER_END_S + 1)
    assert sweeper.sweep(deps)["after_end"] == [first]

    assert finished_events(deps, first) == [event_id("batch.finished", first)]  # the id every try carries
    assert view(deps, second)["status"] == "pending"  # the group handed over
    drain(deps)
    assert view(deps, first)["results_url"] is not None
    assert view(deps, second)["status"] == "completed"
    deps.clock.advance(sweeper.AFTER_END_S + 1)
    assert sweeper.sweep(deps)["after_end"] == []  # the mark is cleared: sent once
    assert finished_events(deps, first) == []


def test_a_normal_end_clears_its_mark_at_once_and_the_sweep_sends_nothing_again():
    deps = make_deps(proxies=1)
    batch_id = create(deps, urls(2))
    drain(deps)
    assert view(deps, batch_id)["status"] == "completed" and view(deps, batch_id)["results_url"] is not None
    assert finished_events(deps, batch_id) == [event_id("batch.finished", batch_id)]
    assert deps.batches.after_end == set()

    deps.clock.advance(sweeper.AFTER_END_S + 1)
    assert sweeper.sweep(deps)["after_end"] == []
    assert finished_events(deps, batch_id) == [] and deps.queue.fanout == []


def test_a_cancel_whose_fan_out_was_lost_is_swept_its_items_cancelled_and_exported():
    deps = make_deps(proxies=1)
    batch_id = create(deps, urls(3))
    for m in deps.queue.pop_fanout():
        fanout.handle(deps, m)  # its items are stored, pending
    deps.queue.pop_work()  # and their work messages not received yet
    deps.queue.fail_next("send_fanout", CRASH)  # the cancel's own fan-out message
    with pytest.raises(RuntimeError):
        batches.cancel_batch(deps, TENANT, batch_id)
    assert view(deps, batch_id)["status"] == "cancelled"
    assert finished_events(deps, batch_id) == [event_id("batch.finished", batch_id)]

    deps.clock.advance(sweeper.AFTER_END_S + 1)
    assert sweeper.sweep(deps)["after_end"] == [batch_id]
    assert [m.type for m in deps.queue.fanout] == ["cancel"]
    assert finished_events(deps, batch_id) == [event_id("batch.finished", batch_id)]  # again, the same id
    drain(deps)
    assert deps.batches.totals(batch_id).cancelled == 3  # none left pending
    assert view(deps, batch_id)["results_url"] is not None
    assert sweeper.sweep(deps)["after_end"] == []
