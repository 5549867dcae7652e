"""Figures of a cost run (bench/cost.py), pure over its records: the handlers' AWS calls (devstack/costhook), the
Lambda REPORT lines (duration, memory) and the API requests the run made; priced with bench/prices.py."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.prices import PRICES, SQS_CHUNK_BYTES

DDB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
S3_PUT_CLASS = {"PutObject", "CopyObject", "ListObjects", "ListObjectsV2", "CreateMultipartUpload", "UploadPart"}
S3_PUT_CLASS |= {"CompleteMultipartUpload", "ListParts", "ListMultipartUploads"}
# Naive design: a Step Functions Standard distributed map, one child execution per item: lease a proxy, fetch,
# record the result, release the lease, end (state transitions per item; each Task a Lambda request)
NAIVE_TRANSITIONS = 5
NAIVE_TASKS = 4


@dataclass
class Usage:
    """What one kind's run used, in total (divide by `items` for per item)."""

    items: int
    wcu: float = 0.0
    rcu: float = 0.0
    wcu_estimated: float = 0.0  # failed conditional writes / cancelled transactions: no ConsumedCapacity returned
    sqs_handler: int = 0  # billed requests (64 KB chunks) the handlers made
    sqs_polling: int = 0  # estimated: the event source mapping's ReceiveMessage + DeleteMessageBatch per invocation
    s3_put: int = 0
    s3_get: int = 0
    events: int = 0
    api_requests: int = 0
    outcome: str = ""  # the batch's final counts
    calls: Counter = field(default_factory=Counter)  # service:operation -> calls
    lambda_requests: Counter = field(default_factory=Counter)  # function -> invocations
    lambda_gb_s: defaultdict = field(default_factory=lambda: defaultdict(float))  # function -> GB-s


def _units(cap: Any, op: str) -> tuple[float, float]:
    """(read, write) units of one response's ConsumedCapacity (a dict, or a list for batch/transaction calls)."""
    read = write = 0.0
    for entry in cap if isinstance(cap, list) else [cap]:
        if not isinstance(entry, dict):
            continue
        total = float(entry.get("CapacityUnits") or 0.0)  # the table's and its indexes' units
        if entry.get("ReadCapacityUnits") is not None and entry.get("WriteCapacityUnits") is not None:
            r = float(entry["ReadCapacityUnits"])
            read, write = read + r, write + total - r
        elif op in DDB_WRITES:
            write += total
        else:
            read += total
    return read, write


def _dynamodb(u: Usage, rec: dict[str, Any]) -> None:
    if rec.get("cap") is not None:
        read, write = _units(rec["cap"], rec["op"])
        u.rcu += read
        u.wcu += write
    elif rec.get("err") == "ConditionalCheckFailedException" and rec["op"] in DDB_WRITES:
        u.wcu_estimated += 1.0  # AWS bills a failed conditional write (at least 1 WCU); the error carries no units
    elif rec.get("err") == "TransactionCanceledException":
        u.wcu_estimated += 2.0 * max(1, rec.get("entries", 1))


def add_call(u: Usage, rec: dict[str, Any]) -> None:
    svc, op = rec["svc"], rec["op"]
    u.calls[f"{svc}:{op}"] += 1
    if svc == "dynamodb":
        _dynamodb(u, rec)
    elif svc == "sqs":
        u.sqs_handler += max(1, math.ceil(max(rec.get("req", 0), rec.get("resp", 0)) / SQS_CHUNK_BYTES))
    elif svc == "s3":
        if op in S3_PUT_CLASS:
            u.s3_put += 1
        else:
            u.s3_get += 1
    elif svc == "events" and op == "PutEvents":
        u.events += max(1, rec.get("entries", 1))


def add_invocation(u: Usage, function: str, duration_ms: float, memory_mb: int, sqs_triggered: bool) -> None:
    u.lambda_requests[function] += 1
    u.lambda_gb_s[function] += math.ceil(duration_ms) / 1000.0 * memory_mb / 1024.0
    if sqs_triggered:
        u.sqs_polling += 2


def dollars(u: Usage, arch: str = "x86_64") -> dict[str, float]:
    """USD for the run's usage, by service."""
    p = PRICES
    gb_s = sum(u.lambda_gb_s.values())
    return {
        "dynamodb": (u.wcu + u.wcu_estimated) * p["dynamodb_write_request_unit"]
        + u.rcu * p["dynamodb_read_request_unit"],
        "sqs": (u.sqs_handler + u.sqs_polling) * p["sqs_request"],
        "lambda": sum(u.lambda_requests.values()) * p["lambda_request"] + gb_s * p[f"lambda_gb_s_{arch}"],
        "s3": u.s3_put * p["s3_put_request"] + u.s3_get * p["s3_get_request"],
        "eventbridge": u.events * p["eventbridge_event"],
        "apigateway": u.api_requests * p["apigw_rest_request"],
    }


def naive_dollars(u: Usage, arch: str = "x86_64") -> dict[str, float]:
    """The naive design for the same items: DynamoDB, S3, EventBridge and API Gateway as measured; no SQS; Step
    Functions transitions; NAIVE_TASKS Lambda requests per item, with the measured GB-s (the fetch's wait dominates)."""
    p, ours = PRICES, dollars(u, arch)
    gb_s = sum(u.lambda_gb_s.values())
    return {
        **ours,
        "sqs": 0.0,
        "stepfunctions": u.items * NAIVE_TRANSITIONS * p["sfn_standard_transition"],
        "lambda": u.items * NAIVE_TASKS * p["lambda_request"] + gb_s * p[f"lambda_gb_s_{arch}"],
    }


def per_million(costs: dict[str, float], items: int) -> dict[str, float]:
    return {k: v * 1e6 / max(1, items) for k, v in costs.items()}


def summary(u: Usage) -> dict[str, Any]:
    """The JSON figures of one kind."""
    x86, arm = per_million(dollars(u), u.items), per_million(dollars(u, "arm64"), u.items)
    naive = per_million(naive_dollars(u), u.items)
    total = sum(x86.values())
    n = max(1, u.items)
    return {
        "items": u.items,
        "usd_per_million_items": round(total, 2),
        "usd_per_million_items_arm64": round(sum(arm.values()), 2),
        "lambda_share": round(x86["lambda"] / total, 3) if total else 0.0,
        "dynamodb_share": round(x86["dynamodb"] / total, 3) if total else 0.0,
        "wcu_per_item": round((u.wcu + u.wcu_estimated) / n, 2),
        "rcu_per_item": round(u.rcu / n, 2),
        "sqs_requests_per_item": round((u.sqs_handler + u.sqs_polling) / n, 2),
        "lambda_requests_per_item": round(sum(u.lambda_requests.values()) / n, 3),
        "lambda_gb_s_per_item": round(sum(u.lambda_gb_s.values()) / n, 4),
        "naive_usd_per_million_items": round(sum(naive.values()), 2),
    }


def _fmt(costs: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in costs.items() if v) + f"; total {sum(costs.values()):.2f}"


def report(kind: str, u: Usage, elapsed_s: float) -> list[str]:
    n = max(1, u.items)
    gb_s = sum(u.lambda_gb_s.values())
    by_fn = ", ".join(
        f"{f} {u.lambda_requests[f] / n:.3f} req {u.lambda_gb_s[f] / n:.4f} GB-s"
        for f in sorted(u.lambda_requests, key=lambda f: -u.lambda_gb_s[f])
    )
    top_calls = ", ".join(f"{k} {v / n:.2f}" for k, v in u.calls.most_common(8))
    x86, arm = per_million(dollars(u), n), per_million(dollars(u, "arm64"), n)
    return [
        f"{kind}: {u.items} items in {elapsed_s:.1f} s ({u.outcome}); per item:",
        f"  DynamoDB     {u.wcu / n:.2f} WCU, {u.rcu / n:.2f} RCU (the emulator's ConsumedCapacity; BatchGetItem, for"
        f" which it returns none, from item sizes) + {u.wcu_estimated / n:.3f} WCU estimated (failed conditional"
        " writes 1 each, cancelled transactions 2 per item: their errors carry no units)",
        f"  SQS          {(u.sqs_handler + u.sqs_polling) / n:.2f} requests: {u.sqs_handler / n:.2f} by the handlers "
        f"(64 KB chunks) + {u.sqs_polling / n:.2f} estimated event-source polling (receive + delete per invocation)",
        f"  Lambda       {sum(u.lambda_requests.values()) / n:.3f} requests, {gb_s / n:.4f} GB-s: {by_fn}",
        f"  S3           {u.s3_put / n:.3f} PUT-class, {u.s3_get / n:.3f} GET-class; EventBridge {u.events / n:.3f}"
        f" events; API Gateway {u.api_requests / n:.4f} requests (create + status polls)",
        f"  calls        {top_calls}",
        f"  USD per million items, x86_64: {_fmt(x86)}",
        f"  USD per million items, arm64:  {_fmt(arm)}",
        f"  naive design (Step Functions Standard distributed map, {NAIVE_TRANSITIONS} transitions and "
        f"{NAIVE_TASKS} Lambda tasks per item, same DynamoDB and GB-s, no SQS):",
        f"    {_fmt(per_million(naive_dollars(u), n))}",
    ]
