"""bench.cost's figures: capacity units as AWS bills them, SQS 64 KB chunks, GB-s, and the price sums."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench import cost_model
from bench.prices import PRICES

HOOK = Path(__file__).resolve().parents[2] / "devstack" / "costhook" / "sitecustomize.py"


def load_hook():
    spec = importlib.util.spec_from_file_location("costhook_under_test", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # no SCRAPERSKY_COST_LOG here: nothing is installed
    return module


def call(svc: str, op: str, **extra) -> dict:
    return {"t": 1.0, "fn": "f", "svc": svc, "op": op, "status": 200, "err": None, "req": 0, "resp": 0, **extra}


def test_transaction_units_include_its_index_units_and_reads_stay_reads() -> None:
    u = cost_model.Usage(items=1)
    txn = [{"TableName": "t", "CapacityUnits": 6.0, "WriteCapacityUnits": 4.0}]  # 2 items x 2, GSI 2
    cost_model.add_call(u, call("dynamodb", "TransactWriteItems", cap=txn))
    cost_model.add_call(u, call("dynamodb", "GetItem", cap={"TableName": "t", "CapacityUnits": 0.5}))
    cost_model.add_call(u, call("dynamodb", "UpdateItem", cap={"TableName": "t", "CapacityUnits": 1.0}))
    assert (u.wcu, u.rcu) == (7.0, 0.5)


def test_failed_conditional_writes_are_billed_as_estimates() -> None:
    u = cost_model.Usage(items=1)
    cost_model.add_call(u, call("dynamodb", "UpdateItem", err="ConditionalCheckFailedException", cap=None))
    cost_model.add_call(u, call("dynamodb", "TransactWriteItems", err="TransactionCanceledException", entries=3))
    assert (u.wcu, u.wcu_estimated) == (0.0, 7.0)


def test_sqs_requests_are_billed_per_64_kb_chunk() -> None:
    u = cost_model.Usage(items=1)
    cost_model.add_call(u, call("sqs", "SendMessageBatch", req=200 * 1024))
    cost_model.add_call(u, call("sqs", "DeleteMessageBatch", req=100))
    assert u.sqs_handler == 4 + 1


def test_lambda_gb_seconds_and_dollars() -> None:
    u = cost_model.Usage(items=2)
    cost_model.add_invocation(u, "WorkerFunction", 1000.4, 512, sqs_triggered=True)
    assert u.lambda_gb_s["WorkerFunction"] == pytest.approx(1.001 * 0.5)
    assert u.sqs_polling == 2
    usd = cost_model.dollars(u)
    assert usd["lambda"] == pytest.approx(PRICES["lambda_request"] + 0.5005 * PRICES["lambda_gb_s_x86_64"])
    assert cost_model.dollars(u, "arm64")["lambda"] < usd["lambda"]
    summary = cost_model.summary(u)
    assert summary["lambda_gb_s_per_item"] == pytest.approx(0.2502, abs=1e-4)
    assert 0 < summary["lambda_share"] <= 1
    assert summary["naive_usd_per_million_items"] > summary["usd_per_million_items"]


def test_batch_get_units_from_item_sizes() -> None:
    hook = load_hook()
    small = {"pk": {"S": "a"}, "n": {"N": "12"}}
    big = {"pk": {"S": "b"}, "blob": {"S": "x" * 5000}}  # 2 x 4 KB
    parsed = {"Responses": {"t": [small, big]}}
    assert hook._batch_get_units(parsed, consistent=False)[0]["CapacityUnits"] == 1.5
    assert hook._batch_get_units(parsed, consistent=True)[0]["CapacityUnits"] == 3.0


def test_the_hook_counts_entries_of_batches_and_transactions() -> None:
    hook = load_hook()
    assert hook._count_entries(b'{"Entries": [{}, {}, {}]}') == 3
    assert hook._count_entries(b'{"TransactItems": [{}, {}]}') == 2
    assert hook._count_entries(b'{"RequestItems": {"t": {"Keys": [{}, {}]}, "u": [{}]}}') == 3
    assert hook._count_entries(b"Action=SendMessage") == 0
