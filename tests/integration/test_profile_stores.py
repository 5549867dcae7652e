"""The profile kind's stores on moto, with the tables as template.yaml declares them: a target's record changes in
the same transaction as its item's end (once, whatever redeliveries happen, never rolled back by an older result),
and sessions expire."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import boto3
import pytest
from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.dynamo_batches import DynamoBatchStore
from scrapersky.adapters.dynamo_items import DynamoItemStore
from scrapersky.adapters.dynamo_sessions import DynamoSessionStore
from scrapersky.adapters.dynamo_targets import DynamoTargetHistory
from scrapersky.checks import CheckState, FinishedCheck, TargetError
from scrapersky.errors import InvalidCursor
from scrapersky.models import BatchStatus, ItemStatus
from scrapersky.ports import Claim
from scrapersky.profile_ports import Cookie, Session, SessionKey, TargetKey
from scrapersky.records import BatchRecord, ItemEnd, ItemRef

NOW = 1_900_000_000.0
TENANT = "t_local"
_ids = itertools.count(1)


@dataclass
class Stores:
    batches: DynamoBatchStore
    items: DynamoItemStore
    targets: DynamoTargetHistory
    sessions: DynamoSessionStore
    ddb: object


@pytest.fixture
def stores(moto_aws) -> Stores:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = DynamoItemStore("batches", ddb)
    return Stores(
        DynamoBatchStore("batches", ddb),
        items,
        DynamoTargetHistory("batches", ddb, items),
        DynamoSessionStore("batches", ddb),
        ddb,
    )


def profile_batch(stores: Stores, targets: list[str], tenant: str = TENANT) -> BatchRecord:
    n = next(_ids)
    batch = BatchRecord(
        batch_id=f"b_{n:012x}{'0' * 12}",
        tenant_id=tenant,
        kind="profile",
        status=BatchStatus.PENDING,
        total_items=len(targets),
        shards=1,
        created_at=NOW + n,
        updated_at=NOW + n,
    )
    stores.batches.create(batch, [len(targets)], None, False)
    stores.items.put_pending(batch, 0, targets, NOW)
    return batch


def end_check(stores: Stores, batch: BatchRecord, seq: int, state: CheckState | None, at: float, tenant: str = TENANT):
    ref = ItemRef(batch.batch_id, seq, 0)
    claim = stores.items.claim(ref, f"tok{seq}", NOW + 600, NOW)
    assert isinstance(claim, Claim)
    item = stores.items.get(batch.batch_id, seq)
    assert item is not None
    return finish(stores, ref, f"tok{seq}", item.item, state, at, tenant)


def finish(stores: Stores, ref: ItemRef, token: str, target: str, state: CheckState | None, at: float, tenant=TENANT):
    ok = state is not None
    end = ItemEnd(succeeded=ok, item=target, result={"state": state.value} if ok else None)
    error = None if ok else TargetError("blocked", "refused", at)
    finished = FinishedCheck(ref.batch_id, at, state=state, error=error)
    key = TargetKey(tenant, "stories", target)
    return stores.targets.finish(ref, token, end, at, None, key, finished, state is CheckState.PRESENT)


def test_the_target_record_is_written_with_the_item_end_and_counted_detected(stores: Stores):
    batch = profile_batch(stores, ["alice"])

    done = end_check(stores, batch, 0, CheckState.PRESENT, NOW + 1)

    assert done.applied and done.event is None  # a first observation is no flip
    assert stores.items.get(batch.batch_id, 0).status is ItemStatus.SUCCEEDED
    rec = stores.targets.get(TargetKey(TENANT, "stories", "alice"))
    assert rec is not None and (rec.active, rec.checks, rec.detections, rec.active_since) == (True, 1, 1, NOW + 1)
    assert _detected(stores, batch) == 1


def _detected(stores: Stores, batch: BatchRecord) -> int:
    full = stores.batches.get_with_counts(batch.batch_id)  # the batch's counter shards, as the status read sums them
    assert full is not None
    return sum(s.detected for s in full[1])


def test_a_redelivered_end_changes_neither_the_item_nor_the_record(stores: Stores):
    batch = profile_batch(stores, ["alice"])
    end_check(stores, batch, 0, CheckState.PRESENT, NOW + 1)

    again = finish(stores, ItemRef(batch.batch_id, 0, 0), "tok0", "alice", CheckState.ABSENT, NOW + 2)

    assert not again.applied and again.event is None
    rec = stores.targets.get(TargetKey(TENANT, "stories", "alice"))
    assert rec is not None and (rec.checks, rec.active, rec.last_state) == (1, True, CheckState.PRESENT)
    assert _detected(stores, batch) == 1


def test_an_older_result_counts_but_never_rolls_the_state_back(stores: Stores):
    batch = profile_batch(stores, ["alice", "alice2"])
    stores.ddb.update_item(  # the second item checks the same target
        TableName="batches",
        Key=bt.item_key(batch.batch_id, 1),
        UpdateExpression="SET #i = :a",
        ExpressionAttributeNames={"#i": "item"},
        ExpressionAttributeValues={":a": {"S": "alice"}},
    )
    end_check(stores, batch, 0, CheckState.ABSENT, NOW + 10)

    end_check(stores, batch, 1, CheckState.PRESENT, NOW + 5)

    rec = stores.targets.get(TargetKey(TENANT, "stories", "alice"))
    assert rec is not None
    assert (rec.active, rec.last_state, rec.last_checked_at) == (False, CheckState.ABSENT, NOW + 10)
    assert (rec.checks, rec.detections) == (2, 1)


def test_flips_fire_events_and_a_concurrent_change_of_the_record_is_applied_on_top(stores: Stores):
    batch = profile_batch(stores, ["alice"])
    first = profile_batch(stores, ["alice"])
    end_check(stores, first, 0, CheckState.ABSENT, NOW + 1)
    real_row = stores.targets._row
    stale = real_row(TargetKey(TENANT, "stories", "alice"))
    calls = iter([stale])

    def racing_row(key):  # the first read is overtaken by another item's end before the transaction
        row = next(calls, None)
        if row is not None:
            second = profile_batch(stores, ["alice"])
            end_check(stores, second, 0, CheckState.ABSENT, NOW + 2)
            return row
        return real_row(key)

    stores.targets._row = racing_row  # type: ignore[method-assign]
    done = end_check(stores, batch, 0, CheckState.PRESENT, NOW + 3)

    assert done.event is not None and done.event.event.value == "target.became_active"
    rec = stores.targets.get(TargetKey(TENANT, "stories", "alice"))
    assert rec is not None and (rec.checks, rec.active) == (3, True)


def test_a_failed_item_counts_its_error_and_a_later_success_clears_it(stores: Stores):
    batch = profile_batch(stores, ["bob", "bob-again"])
    end_check(stores, batch, 0, None, NOW + 1)
    rec = stores.targets.get(TargetKey(TENANT, "stories", "bob"))
    assert rec is not None and (rec.active, rec.consecutive_errors, rec.last_error.code) == (None, 1, "blocked")

    again = profile_batch(stores, ["bob"])
    end_check(stores, again, 0, CheckState.ABSENT, NOW + 2)

    rec = stores.targets.get(TargetKey(TENANT, "stories", "bob"))
    assert rec is not None and (rec.active, rec.consecutive_errors, rec.last_error) == (False, 0, None)


def test_targets_list_in_order_filtered_paged_and_per_tenant(stores: Stores):
    batch = profile_batch(stores, ["c", "a", "b", "d"])
    for seq, state in enumerate([CheckState.PRESENT, CheckState.ABSENT, CheckState.PRESENT, CheckState.PRESENT]):
        end_check(stores, batch, seq, state, NOW + seq)
    other = profile_batch(stores, ["a"], tenant="t_other")
    end_check(stores, other, 0, CheckState.PRESENT, NOW, tenant="t_other")

    first, cursor = stores.targets.list(TENANT, "stories", True, 2, None)
    rest, end = stores.targets.list(TENANT, "stories", True, 2, cursor)

    assert [r.target for r in first + rest] == ["b", "c", "d"] and end is None
    assert [r.target for r in stores.targets.list(TENANT, "stories", None, 10, None)[0]] == ["a", "b", "c", "d"]
    assert stores.targets.known_check(TENANT, "stories") and not stores.targets.known_check(TENANT, "reels")
    with pytest.raises(InvalidCursor):
        stores.targets.list("t_other", "stories", True, 2, cursor)


def test_sessions_expire_are_counted_per_proxy_and_swept(stores: Stores):
    jar = (Cookie("sid", "s3cret", "social.test"),)
    live = SessionKey(TENANT, "p_1", "social.test")
    old = SessionKey("t_other", "p_1", "social.test")
    stores.sessions.put(live, Session(jar, 1, NOW, NOW + 600))
    stores.sessions.put(old, Session(jar, 1, NOW - 700, NOW - 100))
    stores.sessions.put(SessionKey(TENANT, "p_2", "social.test"), Session(jar, 0, NOW, NOW + 600))

    assert stores.sessions.get(live, NOW) == Session(jar, 1, NOW, NOW + 600)
    assert stores.sessions.get(old, NOW) is None  # expired: never handed out, even before the sweep
    assert stores.sessions.open_count("p_1", NOW) == 1
    raw = stores.ddb.get_item(TableName="batches", Key={"pk": {"S": "SESS#p_1"}, "sk": {"S": f"{TENANT}#social.test"}})
    assert int(raw["Item"]["expires_at"]["N"]) >= NOW + 600  # the table's TTL removes it after its end

    assert stores.sessions.sweep("p_1", NOW) == 1
    assert stores.sessions.get(old, NOW - 200) is None and stores.sessions.get(live, NOW) is not None
    stores.sessions.retire(live)
    assert stores.sessions.open_count("p_1", NOW) == 0
