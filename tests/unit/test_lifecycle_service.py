"""Batch lifecycle on the fakes: a batch ends once when its counts add up, and its group goes to the next batch."""

from __future__ import annotations

from dataclasses import replace

from scrapersky.models import BatchStatus, CreateBatchRequest
from scrapersky.records import BatchRecord, ItemEnd, ItemRef
from scrapersky.services import batches, lifecycle

from tests.fakes import FakeBatchStore, FakeDeps, make_deps, page
from tests.unit.seeding import drain, seed_batch, urls

TENANT = "t_acme"


def create(deps: FakeDeps, group: str | None = "nightly", tenant: str = TENANT, **fields: object) -> dict:
    got = batches.create_batch(deps, tenant, CreateBatchRequest(items=urls(2), group=group, **fields))
    deps.clock.advance(1)  # batch ids sort by creation time: the line is kept in creation order
    return got


def status(deps: FakeDeps, batch_id: str, tenant: str = TENANT) -> str:
    return batches.get_batch(deps, tenant, batch_id)["status"]


def cancel(deps: FakeDeps, batch_id: str) -> None:
    batches.cancel_batch(deps, TENANT, batch_id)


def dispatched(deps: FakeDeps) -> list[str]:
    """The batches the fan-out was asked to dispatch (started ones), in order."""
    return [m.batch_id for m in deps.queue.pop_fanout() if m.type == "dispatch"]


# ---- group hand-over -------------------------------------------------------------------------------------------
def test_a_batch_created_while_its_group_runs_waits_queued_and_starts_itself_once_that_one_completes():
    deps = make_deps(proxies=2)
    deps.fetcher.default = lambda call: page(call.url)
    running = create(deps)
    waiting = create(deps)
    assert (running["status"], waiting["status"]) == ("pending", "queued")

    outcomes = drain(deps)

    # the waiting batch's items are stored at once, and sent only after the running batch's last item
    assert [o for o in outcomes if o != "exported"] == [
        *("dispatched", "stored", "succeeded", "succeeded", "dispatch", "succeeded", "succeeded")
    ]
    assert outcomes.count("exported") == 2
    first, second = (deps.batches.batches[b["batch_id"]] for b in (running, waiting))
    assert (first.status, second.status) == (BatchStatus.COMPLETED, BatchStatus.COMPLETED)
    assert first.completed_at is not None and second.started_at is not None
    assert second.started_at >= first.completed_at


def test_cancelling_the_running_batch_hands_its_group_to_the_oldest_queued_one():
    deps = make_deps()
    a, b, c = (create(deps)["batch_id"] for _ in range(3))
    deps.queue.pop_fanout()

    cancel(deps, a)
    assert (status(deps, b), status(deps, c)) == ("pending", "queued")
    assert dispatched(deps) == [b]

    cancel(deps, b)
    assert status(deps, c) == "pending"
    assert dispatched(deps) == [c]


def test_a_queued_batch_cancelled_while_waiting_is_skipped_by_the_hand_over():
    deps = make_deps()
    a, b, c = (create(deps)["batch_id"] for _ in range(3))
    cancel(deps, b)
    assert status(deps, b) == "cancelled"
    deps.queue.pop_fanout()

    cancel(deps, a)

    assert (status(deps, b), status(deps, c)) == ("cancelled", "pending")
    assert dispatched(deps) == [c]


def test_a_cancelled_batch_still_listed_in_the_line_is_passed_over_for_the_next_one():
    deps = make_deps()
    a, b, c = (create(deps)["batch_id"] for _ in range(3))
    cancel(deps, b)
    deps.batches.waiting[TENANT, "nightly"].add(b)  # the line's index has not caught up with the cancel
    deps.queue.pop_fanout()

    cancel(deps, a)

    assert (status(deps, b), status(deps, c)) == ("cancelled", "pending")
    assert dispatched(deps) == [c]
    assert deps.batches.locks[TENANT, "nightly"] == c


def test_groups_are_separate_per_name_and_per_tenant():
    deps = make_deps()
    create(deps, group="nightly")
    assert create(deps, group="hourly")["status"] == "pending"
    assert create(deps, group="nightly", tenant="t_other")["status"] == "pending"
    assert create(deps, group=None)["status"] == "pending"


def test_a_batch_created_unstarted_in_a_busy_group_does_not_start_itself_when_the_group_frees():
    deps = make_deps()
    running = create(deps)["batch_id"]
    later = create(deps, start=False)["batch_id"]
    cancel(deps, running)
    assert status(deps, later) == "queued"
    assert batches.start_batch(deps, TENANT, later)["status"] == "pending"
    assert deps.batches.locks[TENANT, "nightly"] == later


class EndsTheRunningBatchMeanwhile(FakeBatchStore):
    """The running batch of the group ends (and finds nobody waiting) between our lock attempt and our write."""

    def create(self, batch: BatchRecord, shard_totals: list[int], client_token: str | None, take_group: bool):
        record, created = super().create(batch, shard_totals, client_token, take_group)
        holder = self.locks.get((batch.tenant_id, batch.group or ""))
        if holder and holder != batch.batch_id:
            self.batches[holder] = replace(self.batches[holder], status=BatchStatus.COMPLETED)
            del self.locks[batch.tenant_id, batch.group or ""]
        return record, created


def test_a_batch_queued_just_as_its_group_freed_starts_itself_at_once():
    deps = make_deps()
    deps.batches = EndsTheRunningBatchMeanwhile()
    deps.items.batches = deps.batches
    create(deps)

    got = create(deps)

    assert got["status"] == "pending"
    assert dispatched(deps) == [got["batch_id"]]
    assert deps.batches.locks[TENANT, "nightly"] == got["batch_id"]


# ---- ending a batch --------------------------------------------------------------------------------------------
def end_items(deps: FakeDeps, batch: BatchRecord, ends: dict[int, str]) -> None:
    now = deps.clock.now()
    for seq, how in ends.items():
        ref = ItemRef(batch.batch_id, seq, batch.shard_of(seq))
        if how == "cancelled":
            deps.items.cancel(ref, now)
            continue
        deps.items.claim(ref, "w", now + 90, now)
        deps.items.finish(ref, "w", ItemEnd(succeeded=how == "succeeded", item=urls(3)[seq]), now)


def test_a_batch_ends_only_once_every_item_is_finished_and_only_the_first_caller_ends_it():
    deps = make_deps()
    batch = seed_batch(deps, urls(3))
    end_items(deps, batch, {0: "succeeded", 1: "failed"})
    assert lifecycle.finish_if_done(deps, batch.batch_id) is None
    end_items(deps, batch, {2: "succeeded"})

    assert lifecycle.finish_if_done(deps, batch.batch_id) is BatchStatus.PARTIAL
    assert lifecycle.finish_if_done(deps, batch.batch_id) is None

    assert deps.batches.batches[batch.batch_id].status is BatchStatus.PARTIAL
    assert deps.batches.batches[batch.batch_id].completed_at == deps.clock.now()


def test_a_batch_ends_completed_failed_or_cancelled_by_what_became_of_its_items():
    deps = make_deps()
    cases = {
        BatchStatus.COMPLETED: {0: "succeeded", 1: "succeeded", 2: "cancelled"},
        BatchStatus.FAILED: {0: "failed", 1: "failed", 2: "cancelled"},
        BatchStatus.CANCELLED: {0: "cancelled", 1: "cancelled", 2: "cancelled"},
    }
    for n, (expected, ends) in enumerate(cases.items(), start=1):
        batch = seed_batch(deps, urls(3), n=n)
        end_items(deps, batch, ends)
        assert lifecycle.finish_if_done(deps, batch.batch_id) is expected


def test_a_batch_that_ends_by_itself_hands_its_group_over():
    deps = make_deps()
    running = create(deps)["batch_id"]
    waiting = create(deps)["batch_id"]
    batch = deps.batches.batches[running]
    drain(deps)  # no proxy: the running batch's items wait
    end_items(deps, batch, {0: "succeeded", 1: "succeeded"})

    assert lifecycle.finish_if_done(deps, running) is BatchStatus.COMPLETED

    assert status(deps, waiting) == "pending"
    assert dispatched(deps) == [waiting]
