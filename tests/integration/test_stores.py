"""The batch, item and tenant adapters on moto, with the tables exactly as template.yaml declares them."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
from dataclasses import dataclass

import boto3
import pytest
from botocore.exceptions import ClientError
from scrapersky.adapters.dynamo_batches import DynamoBatchStore
from scrapersky.adapters.dynamo_items import DynamoItemStore
from scrapersky.adapters.dynamo_tenants import DynamoTenantStore
from scrapersky.errors import InvalidCursor
from scrapersky.models import ACTIVE_BATCH, BatchStatus, ItemStatus
from scrapersky.ports import Claim, ClaimRefused
from scrapersky.records import BatchRecord, GroupLock, ItemEnd, ItemError, ItemRef, ShardCounts, TenantRecord

NOW = 1_900_000_000.0
TENANT = "t_local"
_ids = itertools.count(1)


@dataclass
class Stores:
    batches: DynamoBatchStore
    items: DynamoItemStore
    tenants: DynamoTenantStore


@pytest.fixture
def stores(moto_aws) -> Stores:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return Stores(DynamoBatchStore("batches", ddb), DynamoItemStore("batches", ddb), DynamoTenantStore("tenants", ddb))


def new_batch(
    total: int = 4,
    shards: int = 1,
    status: BatchStatus = BatchStatus.PENDING,
    group: str | None = None,
    tenant: str = TENANT,
) -> BatchRecord:
    n = next(_ids)
    # ids sort by creation time, as the service makes them
    return BatchRecord(
        batch_id=f"b_{n:012x}{'0' * 12}",
        tenant_id=tenant,
        kind="page",
        status=status,
        total_items=total,
        shards=shards,
        created_at=NOW + n,
        updated_at=NOW + n,
        options={"max_attempts": 3},
        group=group,
    )


def totals(batch: BatchRecord) -> list[int]:
    return [batch.shard_share(s) for s in range(batch.shards)]


def stored(stores: Stores, total: int = 4, shards: int = 1, **kw) -> BatchRecord:
    """A created batch whose items are all stored pending."""
    fresh = new_batch(total, shards, **kw)
    batch, created = stores.batches.create(fresh, totals(fresh), None, False)
    assert created
    stores.items.put_pending(batch, 0, [f"https://example.com/{i}" for i in range(total)], NOW)
    return batch


def ref(batch: BatchRecord, seq: int) -> ItemRef:
    return ItemRef(batch.batch_id, seq, batch.shard_of(seq))


def counts(stores: Stores, batch_id: str) -> ShardCounts:
    """The batch's shards summed (what GET /batches/{id} shows)."""
    got = stores.batches.get_with_counts(batch_id)
    assert got is not None
    shards = got[1]
    errors: dict[str, int] = {}
    for s in shards:
        for code, n in s.errors.items():
            errors[code] = errors.get(code, 0) + n
    return ShardCounts(
        total=sum(s.total for s in shards),
        succeeded=sum(s.succeeded for s in shards),
        failed=sum(s.failed for s in shards),
        cancelled=sum(s.cancelled for s in shards),
        in_progress=sum(s.in_progress for s in shards),
        retries=sum(s.retries for s in shards),
        errors=errors,
        samples=tuple(x for s in shards for x in s.samples),
    )


def claimed(stores: Stores, batch: BatchRecord, seq: int, token: str = "w1", now: float = NOW) -> Claim:
    got = stores.items.claim(ref(batch, seq), token, now + 30, now)
    assert isinstance(got, Claim)
    return got


SUCCESS = ItemEnd(succeeded=True, item="https://example.com/0", http_status=200, result={"title": "ok"})
TIMEOUT = ItemEnd(succeeded=False, item="https://example.com/0", error=ItemError("timeout", "read timed out"))
POISON = ItemError("poison_message", "moved to the dead-letter queue")


# ---- batches -------------------------------------------------------------------------------------------------
def test_a_repeated_client_token_returns_the_batch_the_first_create_stored(stores):
    first, created = stores.batches.create(new_batch(), [4], "tok-1", take_group=False)
    again, created_again = stores.batches.create(new_batch(), [4], "tok-1", take_group=False)
    assert created and not created_again
    assert again == first
    assert stores.batches.get(first.batch_id) == first


def test_a_held_group_lock_stores_the_batch_queued_and_it_starts_only_once_started(stores):
    running, _ = stores.batches.create(new_batch(group="g"), [4], None, take_group=True)
    behind, created = stores.batches.create(new_batch(group="g"), [4], None, take_group=True)
    assert created and running.status is BatchStatus.PENDING
    assert behind.status is BatchStatus.QUEUED and behind.auto_start
    assert stores.batches.get(behind.batch_id) == behind
    assert stores.batches.next_waiting_in_group(TENANT, "g") == behind.batch_id
    assert not stores.batches.take_group(TENANT, "g", behind.batch_id)

    assert stores.batches.release_group(TENANT, "g", running.batch_id)
    assert not stores.batches.release_group(TENANT, "g", running.batch_id)
    assert stores.batches.take_group(TENANT, "g", behind.batch_id)
    assert stores.batches.start(behind.batch_id, NOW + 10)
    assert not stores.batches.start(behind.batch_id, NOW + 11)  # no longer queued
    now_pending = stores.batches.get(behind.batch_id)
    assert now_pending and now_pending.status is BatchStatus.PENDING and not now_pending.auto_start
    assert stores.batches.next_waiting_in_group(TENANT, "g") is None


def test_a_batch_runs_pending_processing_then_ends_once(stores):
    batch, _ = stores.batches.create(new_batch(), [4], None, take_group=False)
    assert not stores.batches.start(batch.batch_id, NOW)  # it was never queued
    assert stores.batches.begin_processing(batch.batch_id, NOW + 1)
    assert not stores.batches.begin_processing(batch.batch_id, NOW + 2)
    assert stores.batches.end(batch.batch_id, BatchStatus.COMPLETED, NOW + 3, ACTIVE_BATCH)
    assert not stores.batches.end(batch.batch_id, BatchStatus.CANCELLED, NOW + 4, ACTIVE_BATCH)
    ended = stores.batches.get(batch.batch_id)
    assert ended and ended.status is BatchStatus.COMPLETED
    assert (ended.started_at, ended.completed_at) == (NOW + 1, NOW + 3)
    stores.batches.mark_fanout_sent(batch.batch_id)
    assert stores.batches.get(batch.batch_id).fanout_sent  # type: ignore[union-attr]


def test_a_cancelled_queued_batch_leaves_its_groups_waiting_line(stores):
    stores.batches.create(new_batch(group="g"), [4], None, take_group=True)
    behind, _ = stores.batches.create(new_batch(group="g"), [4], None, take_group=True)
    assert stores.batches.end(behind.batch_id, BatchStatus.CANCELLED, NOW, (BatchStatus.QUEUED, *ACTIVE_BATCH))
    assert stores.batches.next_waiting_in_group(TENANT, "g") is None


def test_the_waiting_line_can_be_read_past_a_batch_the_index_still_lists(stores):
    stores.batches.create(new_batch(group="g"), [4], None, take_group=True)
    second, _ = stores.batches.create(new_batch(group="g"), [4], None, take_group=True)
    third, _ = stores.batches.create(new_batch(group="g"), [4], None, take_group=True)
    assert stores.batches.next_waiting_in_group(TENANT, "g") == second.batch_id
    assert stores.batches.next_waiting_in_group(TENANT, "g", after=second.batch_id) == third.batch_id
    assert stores.batches.next_waiting_in_group(TENANT, "g", after=third.batch_id) is None


def test_get_with_counts_sums_the_shards_and_reads_no_item(stores):
    batch = stored(stores, total=10, shards=3)
    got = stores.batches.get_with_counts(batch.batch_id)
    assert got is not None
    record, shards = got
    assert record == batch and record.shards == 3
    assert [s.total for s in shards] == [4, 3, 3]
    assert stores.batches.get_with_counts("b_unknown00000000000000") is None


def test_list_gives_newest_first_with_status_and_group_filters_and_exact_pages(stores):
    made = [stores.batches.create(new_batch(group="g" if i % 2 else None), [4], None, False)[0] for i in range(7)]
    stores.batches.create(new_batch(tenant="t_other"), [4], None, False)
    stores.batches.end(made[3].batch_id, BatchStatus.CANCELLED, NOW, ACTIVE_BATCH)
    newest_first = [b.batch_id for b in reversed(made)]

    seen, cursor = [], None
    while True:
        page, cursor = stores.batches.list(TENANT, 3, cursor, None, None)
        seen += [b.batch_id for b, _shards in page]
        if not cursor:
            break
    assert seen == newest_first

    grouped, _ = stores.batches.list(TENANT, 10, None, None, "g")
    assert [b.batch_id for b, _ in grouped] == [b for b in newest_first if b in {m.batch_id for m in made[1::2]}]
    cancelled, _ = stores.batches.list(TENANT, 10, None, BatchStatus.CANCELLED, None)
    assert [b.batch_id for b, _ in cancelled] == [made[3].batch_id]
    (_record, shards), *_ = cancelled
    assert shards[0].total == 4


def test_a_list_cursor_of_another_tenant_or_forged_is_refused(stores):
    for _ in range(3):
        stores.batches.create(new_batch(tenant="t_other"), [4], None, False)
    _, theirs = stores.batches.list("t_other", 1, None, None, None)
    assert theirs
    with pytest.raises(InvalidCursor):
        stores.batches.list(TENANT, 1, theirs, None, None)
    with pytest.raises(InvalidCursor):
        stores.batches.list(TENANT, 1, "not-a-cursor!", None, None)


# ---- items: claims -------------------------------------------------------------------------------------------
def test_a_claim_is_refused_while_busy_and_a_lapsed_one_is_taken_over_without_counting_again(stores):
    batch = stored(stores)
    first = claimed(stores, batch, 0, "w1")
    assert (first.attempts, first.deferrals, first.last_proxy) == (0, 0, None)
    assert counts(stores, batch.batch_id).in_progress == 1

    busy = stores.items.claim(ref(batch, 0), "w2", NOW + 40, NOW + 10)
    assert busy == ClaimRefused(terminal=False, busy_until=NOW + 30)

    taken = stores.items.claim(ref(batch, 0), "w2", NOW + 61, NOW + 31)  # w1 crashed: its claim lapsed
    assert isinstance(taken, Claim) and taken.token == "w2"
    assert counts(stores, batch.batch_id).in_progress == 1
    assert not stores.items.finish(ref(batch, 0), "w1", SUCCESS, NOW + 32)  # the crashed delivery lost it
    assert stores.items.finish(ref(batch, 0), "w2", SUCCESS, NOW + 33)
    c = counts(stores, batch.batch_id)
    assert (c.succeeded, c.in_progress) == (1, 0)


def test_a_claim_of_a_finished_or_missing_item_is_refused_for_good(stores):
    batch = stored(stores)
    claimed(stores, batch, 0)
    stores.items.finish(ref(batch, 0), "w1", SUCCESS, NOW + 1)
    assert stores.items.claim(ref(batch, 0), "w2", NOW + 40, NOW + 2) == ClaimRefused(terminal=True)
    assert stores.items.claim(ref(batch, 99), "w2", NOW + 40, NOW + 2) == ClaimRefused(terminal=True)
    assert counts(stores, batch.batch_id).in_progress == 0


# ---- items: finishing ----------------------------------------------------------------------------------------
def test_a_duplicate_delivery_finishes_and_counts_the_item_once(stores):
    batch = stored(stores)
    claimed(stores, batch, 0)
    assert stores.items.finish(ref(batch, 0), "w1", TIMEOUT, NOW + 1)
    assert not stores.items.finish(ref(batch, 0), "w1", TIMEOUT, NOW + 2)
    c = counts(stores, batch.batch_id)
    assert (c.failed, c.succeeded, c.in_progress) == (1, 0, 0)
    assert c.errors == {"timeout": 1}
    assert [(s.code, s.message) for s in c.samples] == [("timeout", "read timed out")]
    item = stores.items.get(batch.batch_id, 0)
    assert item and item.status is ItemStatus.FAILED and item.attempts == 1
    assert item.error == ItemError("timeout", "read timed out") and item.claim is None


def test_a_success_keeps_its_result_and_http_status(stores):
    batch = stored(stores)
    claimed(stores, batch, 0)
    stores.items.finish(ref(batch, 0), "w1", SUCCESS, NOW + 1)
    item = stores.items.get(batch.batch_id, 0)
    assert item and (item.status, item.http_status, item.result) == (ItemStatus.SUCCEEDED, 200, {"title": "ok"})
    assert (item.started_at, item.finished_at) == (NOW, NOW + 1)


def test_shard_done_is_true_only_for_the_last_item_of_its_shard(stores):
    batch = stored(stores, total=5, shards=2)  # shard 0: seq 0, 2, 4; shard 1: seq 1, 3
    done = {}
    for seq in (0, 1, 2, 3, 4):
        claimed(stores, batch, seq)
        last = batch.shard_share(batch.shard_of(seq)) - 1
        done[seq] = stores.items.finish(ref(batch, seq), "w1", SUCCESS, NOW + 1, shard_last=last).shard_done
    assert done == {0: False, 1: False, 2: False, 3: True, 4: True}
    assert counts(stores, batch.batch_id).succeeded == 5


# ---- items: back to pending ----------------------------------------------------------------------------------
def test_a_retry_spends_an_attempt_and_a_deferral_does_not(stores):
    batch = stored(stores)
    claimed(stores, batch, 0)
    assert stores.items.requeue(
        ref(batch, 0), "w1", NOW + 1, attempt_spent=True, proxy_id="p_a", error=ItemError("timeout", "slow")
    )
    again = claimed(stores, batch, 0, "w2", NOW + 2)
    assert (again.attempts, again.deferrals, again.last_proxy) == (1, 0, "p_a")
    assert stores.items.requeue(ref(batch, 0), "w2", NOW + 3, attempt_spent=False, proxy_id="p_b", error=None)
    third = claimed(stores, batch, 0, "w3", NOW + 4)
    assert (third.attempts, third.deferrals, third.last_proxy) == (1, 1, "p_b")
    assert not stores.items.requeue(ref(batch, 0), "w2", NOW + 5, attempt_spent=True, proxy_id=None, error=None)
    c = counts(stores, batch.batch_id)
    assert (c.retries, c.in_progress, c.failed) == (2, 1, 0)


# ---- items: cancelling ---------------------------------------------------------------------------------------
def test_a_pending_item_is_cancelled_once(stores):
    batch = stored(stores)
    assert stores.items.cancel(ref(batch, 0), NOW)
    assert not stores.items.cancel(ref(batch, 0), NOW + 1)
    assert counts(stores, batch.batch_id).cancelled == 1


def test_a_claimed_item_is_cancelled_only_by_the_delivery_holding_its_claim(stores):
    batch = stored(stores)
    claimed(stores, batch, 0, "w1")
    assert not stores.items.cancel(ref(batch, 0), NOW + 1)  # not pending any more
    assert not stores.items.cancel(ref(batch, 0), NOW + 1, claimed_by="w2")
    assert stores.items.cancel(ref(batch, 0), NOW + 2, claimed_by="w1")
    c = counts(stores, batch.batch_id)
    assert (c.cancelled, c.in_progress) == (1, 0)
    item = stores.items.get(batch.batch_id, 0)
    assert item and item.status is ItemStatus.CANCELLED and item.claim is None


# ---- items: dead letters -------------------------------------------------------------------------------------
def test_a_dead_lettered_item_ends_failed_from_any_state_and_is_never_counted_twice(stores):
    batch = stored(stores, total=4)
    stores.items.cancel(ref(batch, 2), NOW)  # already finished
    claimed(stores, batch, 1)  # in progress
    never_stored = ref(batch, 3)  # its chunk was dead-lettered: the record is written only by this path
    raw_key = {"pk": {"S": f"B#{batch.batch_id}#I0000"}, "sk": {"S": "I#0000003"}}
    stores.items.ddb.delete_item(TableName="batches", Key=raw_key)

    results = {
        "missing": stores.items.fail_from_dead_letter(never_stored, "https://example.com/3", POISON, NOW + 1),
        "pending": stores.items.fail_from_dead_letter(ref(batch, 0), "https://example.com/0", POISON, NOW + 1),
        "in_progress": stores.items.fail_from_dead_letter(ref(batch, 1), "https://example.com/1", POISON, NOW + 1),
        "finished": stores.items.fail_from_dead_letter(ref(batch, 2), "https://example.com/2", POISON, NOW + 1),
    }
    assert {k: bool(v) for k, v in results.items()} == {
        "missing": True,
        "pending": True,
        "in_progress": True,
        "finished": False,
    }
    assert not stores.items.fail_from_dead_letter(never_stored, "https://example.com/3", POISON, NOW + 2)
    c = counts(stores, batch.batch_id)
    assert (c.failed, c.cancelled, c.in_progress) == (3, 1, 0)
    assert c.errors == {"poison_message": 3}
    created = stores.items.get(batch.batch_id, 3)
    assert created and created.status is ItemStatus.FAILED and created.item == "https://example.com/3"
    assert created.attempts == 0  # a dead-lettered item ends without a new attempt


# ---- items: storing and paging -------------------------------------------------------------------------------
def test_a_replayed_chunk_reports_only_the_items_still_pending(stores):
    batch = stored(stores, total=4)
    claimed(stores, batch, 1)
    stores.items.cancel(ref(batch, 2), NOW)
    again = stores.items.put_pending(batch, 0, [f"https://example.com/{i}" for i in range(4)], NOW + 5)
    assert sorted(again) == [(0, "https://example.com/0"), (3, "https://example.com/3")]
    item = stores.items.get(batch.batch_id, 1)
    assert item and item.status is ItemStatus.IN_PROGRESS  # never overwritten


def test_item_pages_are_exact_with_and_without_a_status_filter(stores):
    batch = stored(stores, total=25, shards=2)
    for seq in range(0, 25, 3):
        stores.items.cancel(ref(batch, seq), NOW)

    def all_pages(read) -> list[int]:
        seqs, cursor = [], None
        while True:
            page, cursor = read(cursor)
            seqs += [r.seq for r in page]
            if not cursor:
                return seqs

    assert all_pages(lambda c: stores.items.query(batch.batch_id, None, 7, c)) == list(range(25))
    still = [s for s in range(25) if s % 3]
    assert all_pages(lambda c: stores.items.query(batch.batch_id, ItemStatus.PENDING, 4, c)) == still
    assert all_pages(lambda c: stores.items.pending(batch.batch_id, c, 5)) == still
    page, _ = stores.items.query(batch.batch_id, ItemStatus.CANCELLED, 100, None)
    assert [r.seq for r in page] == list(range(0, 25, 3))
    assert all(r.batch_id == batch.batch_id and r.shard == r.seq % 2 for r in page)


def test_an_item_cursor_we_did_not_give_out_is_refused(stores):
    batch, other = stored(stores, total=5), stored(stores, total=5)
    _, theirs = stores.items.query(other.batch_id, None, 2, None)
    assert theirs
    forged = base64.urlsafe_b64encode(json.dumps({"pk": f"B#{batch.batch_id}", "sk": 5}).encode()).decode()
    for cursor in (theirs, forged, "%%%"):
        with pytest.raises(InvalidCursor):
            stores.items.query(batch.batch_id, None, 2, cursor)
    with pytest.raises(InvalidCursor):
        stores.items.pending(batch.batch_id, theirs, 2)


# ---- tenants -------------------------------------------------------------------------------------------------
def test_a_tenant_is_found_by_its_key_hash_only(stores):
    stores.tenants.put_tenant("t_acme", "acme", "admin", "abc123", NOW)
    assert stores.tenants.by_key_hash("abc123") == TenantRecord("t_acme", "acme", "admin")
    assert stores.tenants.by_key_hash("other") is None


class _AnswerLost:
    """A client whose next `op` call is applied, then answers 500 (an answer lost after the write): what
    DynamoDB does now and then, and what a retry must not take for a lost race."""

    def __init__(self, client, op: str) -> None:
        self._client, self._op, self.armed = client, op, True

    def __getattr__(self, name):
        call = getattr(self._client, name)
        if name != self._op:
            return call

        def applied_then_lost(**kwargs):
            result = call(**kwargs)
            if self.armed:
                self.armed = False
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "lost"}}, name)
            return result

        return applied_then_lost


def test_a_finish_whose_answer_was_lost_is_still_ours_and_counted_once(stores):
    batch = stored(stores, total=2)
    token = claimed(stores, batch, 0).token
    lossy = _AnswerLost(stores.items.ddb, "transact_write_items")
    items = DynamoItemStore("batches", lossy)
    applied = items.finish(ref(batch, 0), token, ItemEnd(succeeded=True, item="https://a.example/"), NOW + 1)
    assert applied.won and not lossy.armed
    assert counts(stores, batch.batch_id).succeeded == 1


def test_a_batch_end_whose_answer_was_lost_is_still_ours(stores):
    batch = stored(stores, total=1)
    lossy = _AnswerLost(stores.batches.ddb, "update_item")
    batches = DynamoBatchStore("batches", lossy)
    assert batches.end(batch.batch_id, BatchStatus.COMPLETED, NOW + 5, ACTIVE_BATCH)  # so its group is released
    assert not lossy.armed
    assert not batches.end(batch.batch_id, BatchStatus.CANCELLED, NOW + 6, ACTIVE_BATCH)  # a real loss stays one


def test_every_row_of_a_batch_and_its_items_expires_after_the_retention(stores):
    retention = 7 * 86_400
    batches = DynamoBatchStore("batches", stores.batches.ddb, retention_s=retention)
    items = DynamoItemStore("batches", stores.batches.ddb, retention_s=retention)
    batch, _ = batches.create(new_batch(total=2), [2], "tok-ttl", take_group=False)
    items.put_pending(batch, 0, ["https://a.example/"], NOW + 3)
    items.fail_from_dead_letter(ref(batch, 1), "https://b.example/", ItemError("poison_message", "x"), NOW + 4)
    rows = stores.batches.ddb.scan(TableName="batches")["Items"]
    mine = [r for r in rows if batch.batch_id in r["pk"]["S"] or r["pk"]["S"].startswith("K#")]
    b = f"B#{batch.batch_id}"
    keys = {(r["pk"]["S"], r["sk"]["S"]) for r in mine}
    assert keys >= {(b, "A"), (f"{b}#C000", "C#000"), (f"{b}#I0000", "I#0000000"), (f"{b}#I0000", "I#0000001")}
    assert "T" in {sk for _, sk in keys}
    for r in mine:
        sk = r["sk"]["S"]
        start = NOW + 3 if sk == "I#0000000" else NOW + 4 if sk == "I#0000001" else batch.created_at
        assert int(r["expires_at"]["N"]) == int(start + retention), r


def test_the_sweep_indexes_find_unsent_batches_and_every_group_lock(stores):
    from scrapersky.adapters.dynamo_sweeps import DynamoSweeps

    sweeps = DynamoSweeps("batches", stores.batches.ddb)
    chunks = [(0, ["https://a.example/0"]), (1, [f"https://a.example/{i}" for i in range(1, 300)])]
    from scrapersky.services.batches import new_batch_id

    made = new_batch(total=300, group="g")
    batch = dataclasses.replace(made, batch_id=new_batch_id(made.created_at))  # ids that sort by creation time
    sweeps.save_chunks(batch.batch_id, chunks, NOW)
    stores.batches.create(batch, [300], None, take_group=True)
    assert sweeps.chunks(batch.batch_id) == chunks
    later = batch.created_at + 300
    assert sweeps.unsent(later, 10) == [batch.batch_id]
    assert sweeps.unsent(batch.created_at - 1, 10) == []  # only batches created before the bound
    assert sweeps.group_locks() == [GroupLock(TENANT, "g", batch.batch_id)]
    stores.batches.mark_fanout_sent(batch.batch_id)
    assert sweeps.unsent(later, 10) == []
    assert stores.batches.release_group(TENANT, "g", batch.batch_id)
    assert sweeps.group_locks() == [GroupLock(TENANT, "g", None)]  # a free group stays known
    assert stores.batches.get_with_counts(batch.batch_id)[1][0].total == 300  # chunk rows are no shards
