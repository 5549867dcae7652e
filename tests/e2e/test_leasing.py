"""Leasing under real concurrency, on the local stack's DynamoDB (which, like AWS and unlike moto,
serialises conditional writes per item)."""

from __future__ import annotations

import threading
import time

import pytest
from scrapersky.adapters.dynamo_proxies import DynamoProxyPool
from scrapersky.errors import NoProxyAvailable

from devstack.stack import aws_client

pytestmark = pytest.mark.e2e


def test_concurrent_workers_never_share_a_proxy(stack):
    ddb = aws_client("dynamodb", stack.endpoint)
    table = f"lease-test-{int(time.time() * 1000)}"  # a pool of its own, apart from the proxies other tests use
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "proxy_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "proxy_id", "KeyType": "HASH"}],
    )
    now = time.time()
    admin = DynamoProxyPool(table, ddb)
    ids = [f"p_lease{i}" for i in range(5)]
    for pid in ids:
        admin.add(pid, "http://127.0.0.1:9", "x", {}, now)
    host = f"lease-{int(now)}.example"
    got, refused = [], []

    def worker(n: int) -> None:
        container = DynamoProxyPool(table, ddb)  # each worker is its own Lambda container
        try:
            got.append(container.lease(host, f"w{n}", now, 30).proxy_id)
        except NoProxyAvailable:
            refused.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ddb.delete_table(TableName=table)
    assert len(got) == len(set(got)), f"a proxy was leased twice: {got}"
    assert set(got) == set(ids)
    assert len(refused) == 12 - len(ids)
