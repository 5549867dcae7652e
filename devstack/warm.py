"""Warms a just-deployed local stack before it says "ready", so a user's first batch does not wait for the cold
starts on its path, one after another: ministack starts a function's handler process at its first invocation,
and a new one for each invocation that finds all of them busy. A fresh stack measured (bench.rate_limits, its
cold row): the first fan-out process came up 15 s after the batch was created, the four worker processes 55-56 s
after it, and the site saw the first request at 62 s.

Each SQS consumer on a batch's path (fan-out, worker) gets that many invocations at once (as many processes as its event
source mapping may run at the same time), with an event of no records, which the handlers answer with no work
done; the API's functions on a batch's path (the authorizer, the batches and status functions) get one read each.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import requests
from botocore.config import Config

EMPTY_SQS_EVENT = b'{"Records": []}'
TIMEOUT_S = 300  # a cold start on a loaded 2-core machine has taken over 40 s


BATCH_PATH = ("FanoutFunction", "WorkerFunction")  # logical ids: the events function runs once a batch has ended


def consumers(lam: Any) -> dict[str, int]:
    """Function name -> how many of its invocations the event source mappings may run at once, for the queue
    consumers a batch goes through."""
    wanted: dict[str, int] = {}
    for esm in lam.list_event_source_mappings()["EventSourceMappings"]:
        limit = (esm.get("ScalingConfig") or {}).get("MaximumConcurrency")
        if limit and any(f"-{logical}-" in esm["FunctionArn"] for logical in BATCH_PATH):
            name = esm["FunctionArn"].rsplit(":", 1)[-1]
            wanted[name] = max(wanted.get(name, 0), int(limit))
    return wanted


def warm_batch_path(endpoint: str, region: str, api_url: str, api_key: str) -> dict[str, int]:
    """Starts the handler processes a first batch needs at once; returns how many invocations each function got."""
    config = Config(read_timeout=TIMEOUT_S, retries={"max_attempts": 0})
    lam = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )
    wanted = consumers(lam)
    calls = [(name, i) for name, n in wanted.items() for i in range(n)]
    reads = ("/tenant", "/batches")  # the authorizer and the batches function; the status function
    with ThreadPoolExecutor(max_workers=len(calls) + len(reads)) as pool:
        done = [pool.submit(lam.invoke, FunctionName=name, Payload=EMPTY_SQS_EVENT) for name, _ in calls]
        headers = {"Authorization": f"Bearer {api_key}"}
        done += [pool.submit(requests.get, f"{api_url}{path}", headers=headers, timeout=TIMEOUT_S) for path in reads]
        for f in done:
            f.result()
    return wanted
