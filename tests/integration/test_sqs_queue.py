"""The SQS adapter on moto: sends are sized by bytes, as SQS counts them, not only by count."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from scrapersky.adapters.sqs_queue import MAX_CALL_BYTES, SqsWorkQueue
from scrapersky.models import FanoutMessage
from scrapersky.services.batches import CHUNK_BYTES, chunk_items


@pytest.fixture
def sqs(monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        calls: list[int] = []

        def count(params, **_):
            calls.append(sum(len(e["MessageBody"].encode()) for e in params["Entries"]))

        client.meta.events.register("provide-client-params.sqs.SendMessageBatch", count)
        yield client, calls


def test_ten_big_chunks_go_out_in_calls_under_the_one_mib_limit(sqs):
    client, calls = sqs
    url = client.create_queue(QueueName="fanout")["QueueUrl"]
    items = [f"https://example.com/{'é' * 540}/{i}" for i in range(2_000)]  # ~1.1 kB each as UTF-8 JSON
    chunks = chunk_items(items, 100)
    messages = [FanoutMessage(type="chunk", batch_id="b_x", tenant_id="t_x", first_seq=f, items=c) for f, c in chunks]
    assert all(len(m.model_dump_json().encode()) < CHUNK_BYTES + 1_000 for m in messages)
    SqsWorkQueue(url, url, client).send_fanout(messages)
    assert calls and max(calls) <= MAX_CALL_BYTES
    got = 0
    while True:
        batch = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        got += len(batch)
        client.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    assert got == len(messages)
