"""Opt-in AWS call counter for the local stack's Lambda handler processes (bench/cost.py), not part of the layer.

devstack/stack.py puts this folder on PYTHONPATH of ministack (whose handler processes inherit it) only when the
handler environment has SCRAPERSKY_COST_LOG (a folder); without it nothing here runs, and the deployed template never
sets it. In a handler process (AWS_LAMBDA_FUNCTION_NAME is set), a one-shot import hook waits for the handler's own
botocore (the layer's copy, imported after ministack extends sys.path) and adds three built-in botocore handlers,
which every Session copies:
- before-parameter-build.dynamodb: ReturnConsumedCapacity=TOTAL on every operation that accepts it;
- before-call: the request body's size (and, for DynamoDB, the number of TransactItems / RequestItems);
- after-call: one JSON line per API call to SCRAPERSKY_COST_LOG/<pid>.jsonl: time, function, service, operation,
  HTTP status, error code, request and response bytes, entries, ConsumedCapacity.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
import time
from typing import Any

_DIR = os.environ.get("SCRAPERSKY_COST_LOG", "")
_FUNCTION = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
_ENTRIES = ("Entries", "TransactItems")  # SendMessageBatch / DeleteMessageBatch / PutEvents; transactions


def _add_consumed_capacity(params: dict[str, Any], model: Any, **_: Any) -> None:
    if "ReturnConsumedCapacity" in model.input_shape.members and params.get("ReturnConsumedCapacity") != "INDEXES":
        params["ReturnConsumedCapacity"] = "TOTAL"


def _body_size(body: Any) -> int:
    if isinstance(body, (bytes, bytearray)):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    if isinstance(body, dict):  # query protocol: form-encoded later
        from urllib.parse import urlencode

        return len(urlencode(body, doseq=True))
    return 0


def _count_entries(body: Any) -> int:
    if not isinstance(body, (bytes, str)) or not body:
        return 0
    try:
        doc = json.loads(body)
    except ValueError:
        return 0
    if not isinstance(doc, dict):
        return 0
    for key in _ENTRIES:
        if isinstance(doc.get(key), list):
            return len(doc[key])
    items = doc.get("RequestItems")
    if isinstance(items, dict):  # BatchWriteItem: lists of requests; BatchGetItem: {"Keys": [...]} per table
        return sum(len(v) if isinstance(v, list) else len(v.get("Keys", [])) for v in items.values())
    return 0


def _value_size(v: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it (approximately for numbers: 1 byte per 2 digits + 1)."""
    ((kind, val),) = v.items()
    if kind in ("S", "B"):
        return len(val.encode() if isinstance(val, str) else val)
    if kind == "N":
        return 1 + (len(val.lstrip("-").replace(".", "")) + 1) // 2
    if kind in ("SS", "BS", "NS"):
        return sum(_value_size({kind[0]: x}) for x in val)
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in val)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(x) for k, x in val.items())
    return 1  # BOOL, NULL


def _batch_get_units(parsed: dict[str, Any], consistent: bool) -> list[dict[str, Any]]:
    """BatchGetItem's units from the returned items' sizes, as AWS defines them (ministack returns none): each item
    rounded up to 4 KB, 1 unit per 4 KB strongly consistent, 0.5 eventually consistent."""
    units = []
    for table, items in (parsed.get("Responses") or {}).items():
        sizes = [sum(len(k.encode()) + _value_size(v) for k, v in item.items()) for item in items]
        total = sum(max(1, -(-size // 4096)) for size in sizes) * (1.0 if consistent else 0.5)
        units.append({"TableName": table, "CapacityUnits": total, "ReadCapacityUnits": total, "computed": True})
    return units


def _before_call(model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
    if context is None:
        return
    body = params.get("body")
    context["cost_req_bytes"] = _body_size(body)
    context["cost_entries"] = _count_entries(body)
    context["cost_consistent"] = isinstance(body, bytes) and b'"ConsistentRead": true' in body.replace(
        b'":true', b'": true'
    )


def _after_call(http_response: Any, parsed: Any, model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
    context = context or {}
    parsed = parsed if isinstance(parsed, dict) else {}
    record = {
        "t": round(time.time(), 3),
        "fn": _FUNCTION,
        "svc": model.service_model.service_name,
        "op": model.name,
        "status": getattr(http_response, "status_code", 0),
        "err": (parsed.get("Error") or {}).get("Code"),
        "req": context.get("cost_req_bytes", 0),
        "resp": len(getattr(http_response, "content", b"") or b""),
        "entries": context.get("cost_entries", 0),
        "cap": parsed.get("ConsumedCapacity"),
    }
    if record["op"] == "BatchGetItem" and record["cap"] is None and not record["err"]:
        record["cap"] = _batch_get_units(parsed, bool(context.get("cost_consistent")))
    with open(os.path.join(_DIR, f"{os.getpid()}.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")


class _BotocoreHandlers(importlib.abc.MetaPathFinder):
    """Finds botocore.handlers through the other finders once, and extends BUILTIN_HANDLERS after it loads."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "botocore.handlers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_extend(module: Any) -> None:
            exec_module(module)
            module.BUILTIN_HANDLERS.extend(
                [
                    ("before-parameter-build.dynamodb", _add_consumed_capacity),
                    ("before-call", _before_call),
                    ("after-call", _after_call),
                ]
            )

        loader.exec_module = exec_and_extend  # type: ignore[method-assign]
        return spec


if _DIR and _FUNCTION:
    sys.meta_path.insert(0, _BotocoreHandlers())
