"""Low-level DynamoDB helpers shared by the table adapters: typed values in and out, error translation,
pagination cursors and query loops."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from scrapersky.errors import InvalidCursor, RetryableStoreError

_ser = TypeSerializer()
_de = TypeDeserializer()

BATCH_GET_KEYS = 100  # BatchGetItem's limit
_BATCH_GET_TRIES = 8
THROTTLING = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "InternalServerError",
}


def _to_ddb(v: Any) -> Any:
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, dict):
        return {k: _to_ddb(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_to_ddb(x) for x in v]
    return v


def _from_ddb(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: _from_ddb(x) for k, x in v.items()}
    if isinstance(v, list | set):
        return [_from_ddb(x) for x in v]
    return v


def ser(v: Any) -> dict[str, Any]:
    return _ser.serialize(_to_ddb(v))


def ser_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: ser(v) for k, v in item.items() if v is not None}


def de_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {k: _from_ddb(_de.deserialize(v)) for k, v in item.items()}


def values(**kw: Any) -> dict[str, Any]:
    return {f":{k}": ser(v) for k, v in kw.items()}


def error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def is_condition_failure(e: ClientError) -> bool:
    return error_code(e) == "ConditionalCheckFailedException"


def is_retryable(e: ClientError) -> bool:
    return error_code(e) in THROTTLING


def raise_if_retryable(e: ClientError) -> None:
    if is_retryable(e):
        raise RetryableStoreError(str(e)) from e


def cancellation_codes(e: ClientError) -> list[str]:
    return [str(r.get("Code") or "None") for r in e.response.get("CancellationReasons", [])]


def cancellation_items(e: ClientError) -> list[dict[str, Any] | None]:
    return [de_item(r.get("Item")) for r in e.response.get("CancellationReasons", [])]


def raise_translated(e: ClientError) -> None:
    """Throttling and transaction conflicts become RetryableStoreError (the caller may retry); else nothing."""
    raise_if_retryable(e)
    if "TransactionConflict" in cancellation_codes(e):
        raise RetryableStoreError("transaction conflict") from e


def conditional(call: Callable[..., Any], **kwargs: Any) -> bool:
    """Runs a conditional write: False when its condition did not hold, True when it was applied."""
    try:
        call(**kwargs)
        return True
    except ClientError as e:
        if is_condition_failure(e):
            return False
        raise_translated(e)
        raise


def put_new_op(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A Put of a row that must not exist yet, as one part of a TransactWriteItems."""
    return {"TableName": table, "Item": ser_item(row), "ConditionExpression": "attribute_not_exists(pk)"}


def put_new(client: Any, table: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """Puts a row that must not exist yet (never overwrites): None when it was put, else the row already there."""
    try:
        client.put_item(
            TableName=table,
            Item=ser_item(row),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return None
    except ClientError as e:
        if is_condition_failure(e):
            return de_item(e.response.get("Item")) or {}
        raise_translated(e)
        raise


# ---- pagination ----------------------------------------------------------------------------------------------
def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """A cursor is the (plain) LastEvaluatedKey, base64url JSON: opaque to clients, cheap to check back."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(
    cursor: str | None, keys: frozenset[str], belongs: Callable[[dict[str, str]], bool]
) -> dict[str, str] | None:
    """The start key of a cursor we gave out: exactly these string keys, and `belongs(key)` (the cursor is of
    this batch or tenant: a forged one must not page through someone else's partition)."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, RecursionError) as e:  # RecursionError: JSON nested past the parser's depth
        raise InvalidCursor("cursor is not valid") from e
    if (
        not isinstance(key, dict)
        or set(key) != keys
        or not all(isinstance(v, str) and 0 < len(v) <= 1024 and _utf8(v) for v in key.values())
        or not belongs(key)
    ):
        raise InvalidCursor("cursor is not valid")
    return key


def _utf8(text: str) -> bool:
    """DynamoDB refuses strings that are not valid UTF-8 (a lone surrogate from a forged cursor's JSON)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def query_page(
    client: Any, kwargs: dict[str, Any], limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to `limit` rows of a (filtered) query from `start`, and the key to go on from (None at the end).

    Each request asks only for what is still missing (`Limit` counts rows read before the filter), so the
    key handed back is exactly after the last row returned: the next page has no gap and no duplicate."""
    found: list[dict[str, Any]] = []
    while len(found) < limit:
        page_kwargs = {**kwargs, "Limit": limit - len(found)}
        if start:
            page_kwargs["ExclusiveStartKey"] = {k: ser(v) for k, v in start.items()}
        page = client.query(**page_kwargs)
        found.extend(de_item(i) or {} for i in page.get("Items", []))
        last = page.get("LastEvaluatedKey")
        start = de_item(last) if last else None
        if not start:
            break
    return found, start


def query_all(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every row of a query, through botocore's paginator."""
    rows: list[dict[str, Any]] = []
    for page in client.get_paginator("query").paginate(**kwargs):
        rows.extend(de_item(i) or {} for i in page.get("Items", []))
    return rows


def batch_get(client: Any, table: str, keys: list[dict[str, Any]], consistent: bool = True) -> list[dict[str, Any]]:
    """The rows of these keys that exist (in no particular order): one BatchGetItem per 100 keys, plus a
    retry of any keys it leaves unprocessed (throttling)."""
    rows: list[dict[str, Any]] = []
    for at in range(0, len(keys), BATCH_GET_KEYS):
        pending: dict[str, Any] = {table: {"Keys": keys[at : at + BATCH_GET_KEYS], "ConsistentRead": consistent}}
        for attempt in range(_BATCH_GET_TRIES):
            try:
                got = client.batch_get_item(RequestItems=pending)
            except ClientError as e:
                raise_translated(e)
                raise
            rows.extend(de_item(i) or {} for i in got.get("Responses", {}).get(table, []))
            pending = got.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(0.02 * 2**attempt)
        if pending:
            raise RetryableStoreError("a batch read kept coming back unprocessed")
    return rows
