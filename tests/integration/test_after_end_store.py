"""The end's mark on moto: a batch's end write marks it `unsent = E` in the same update, the sender clears it, the
sweep's query finds only marked batches created before its bound, and the create's `U` mark is left alone."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time

import boto3
import pytest
from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.dynamo_batches import DynamoBatchStore
from scrapersky.adapters.dynamo_sweeps import DynamoSweeps
from scrapersky.domain import events as ev
from scrapersky.models import ACTIVE_BATCH, BatchStatus
from scrapersky.ports import Clock
from scrapersky.records import BatchRecord
from scrapersky.services import sweeper
from scrapersky.services.batches import new_batch_id

NOW = 1_900_000_000.0
_n = itertools.count(1)


@pytest.fixture
def stores(moto_aws) -> tuple[DynamoBatchStore, DynamoSweeps]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return DynamoBatchStore("batches", ddb), DynamoSweeps("batches", ddb)


def stored(batches: DynamoBatchStore, fanout_sent: bool = True) -> BatchRecord:
    created = NOW + 10 * next(_n)
    batch = BatchRecord(
        batch_id=new_batch_id(created),  # ids sort by creation time, as the index's range key needs
        tenant_id="t_local",
        kind="page",
        status=BatchStatus.PENDING,
        total_items=1,
        shards=1,
        created_at=created,
        updated_at=created,
    )
    batches.create(batch, [1], None, take_group=False)
    if fanout_sent:
        batches.mark_fanout_sent(batch.batch_id)
    return batch


def mark(batches: DynamoBatchStore, batch_id: str) -> str | None:
    row = batches.ddb.get_item(TableName="batches", Key=bt.meta_key(batch_id), ConsistentRead=True)["Item"]
    return row.get(bt.UNSENT, {}).get("S")


def test_the_end_marks_the_batch_and_the_sender_clears_it(stores):
    batches, sweeps = stores
    batch = stored(batches)
    later = batch.created_at + 300
    assert mark(batches, batch.batch_id) is None and sweeps.after_end_pending(later, 10) == []

    assert batches.end(batch.batch_id, BatchStatus.COMPLETED, NOW + 500, ACTIVE_BATCH)

    assert mark(batches, batch.batch_id) == "E"
    assert batches.get(batch.batch_id).status is BatchStatus.COMPLETED  # the same write
    assert sweeps.after_end_pending(later, 10) == [batch.batch_id]
    assert sweeps.after_end_pending(batch.created_at - 1, 10) == []  # only batches created before the bound
    assert sweeps.unsent(later, 10) == []  # the create's redrive does not see it
    batches.after_end_sent(batch.batch_id)
    assert mark(batches, batch.batch_id) is None
    assert sweeps.after_end_pending(later, 10) == []
    batches.after_end_sent(batch.batch_id)  # again: nothing to clear, no error


def test_a_lost_end_sets_no_mark(stores):
    batches, sweeps = stores
    batch = stored(batches)
    assert batches.end(batch.batch_id, BatchStatus.CANCELLED, NOW + 500, ACTIVE_BATCH)
    batches.after_end_sent(batch.batch_id)
    assert not batches.end(batch.batch_id, BatchStatus.COMPLETED, NOW + 501, ACTIVE_BATCH)  # already ended
    assert mark(batches, batch.batch_id) is None
    assert sweeps.after_end_pending(batch.created_at + 300, 10) == []


def test_a_batch_whose_chunks_are_unsent_keeps_its_redrive_mark_when_it_ends(stores):
    batches, sweeps = stores
    unsent, sent = stored(batches, fanout_sent=False), stored(batches)
    later = sent.created_at + 300
    assert batches.end(unsent.batch_id, BatchStatus.CANCELLED, NOW + 500, ACTIVE_BATCH)
    assert batches.end(sent.batch_id, BatchStatus.COMPLETED, NOW + 500, ACTIVE_BATCH)

    assert mark(batches, unsent.batch_id) == "U"
    assert sweeps.unsent(later, 10) == [unsent.batch_id]  # each query finds only its own mark
    assert sweeps.after_end_pending(later, 10) == [sent.batch_id]
    batches.after_end_sent(unsent.batch_id)  # clears only the end's mark
    assert sweeps.unsent(later, 10) == [unsent.batch_id]
    batches.mark_fanout_sent(unsent.batch_id)
    assert sweeps.unsent(later, 10) == [] and sweeps.after_end_pending(later, 10) == [sent.batch_id]


def test_the_sweep_query_is_bounded_by_its_limit_oldest_first(stores):
    batches, sweeps = stores
    made = [stored(batches) for _ in range(3)]
    for b in made:
        assert batches.end(b.batch_id, BatchStatus.COMPLETED, NOW + 500, ACTIVE_BATCH)
    assert sweeps.after_end_pending(made[-1].created_at + 300, 2) == [b.batch_id for b in made[:2]]


class Later(Clock):
    """The real clock, moved on: the sweep runs as it would minutes after the crash."""

    def __init__(self, by_s: float) -> None:
        self.by_s = by_s

    def now(self) -> float:
        return time.time() + self.by_s

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def test_a_cancel_that_died_after_its_end_write_is_sent_again_by_the_sweep_on_moto(harness):
    status, created = harness.api("batches", "POST", "/batches", {"items": ["https://a.example/1"]})
    assert status == 201, created
    batch_id = created["batch_id"]
    harness.sqs.purge_queue(QueueUrl=harness.urls["FanoutQueue"])  # its chunk: not needed here
    # the cancel's end write, then its invocation died before sending anything
    assert harness.deps.batches.end(batch_id, BatchStatus.CANCELLED, time.time(), ACTIVE_BATCH)
    assert harness.receive("EventsQueue") == []

    assert sweeper.sweep(harness.deps)["after_end"] == []  # just now: its own caller may still be sending
    later = dataclasses.replace(harness.deps, clock=Later(sweeper.AFTER_END_S + 60))
    assert sweeper.sweep(later)["after_end"] == [batch_id]

    [event] = [json.loads(m["Body"]) for m in harness.receive("EventsQueue")]
    assert (event["event"], event["event_id"]) == ("batch.finished", ev.event_id("batch.finished", batch_id))
    fanned = [json.loads(m["Body"]) for m in harness.receive("FanoutQueue")]
    assert [(m["type"], m["batch_id"]) for m in fanned] == [("cancel", batch_id)]  # its last page exports
    assert sweeper.sweep(later)["after_end"] == []  # cleared: sent once
