"""Low-level DynamoDB helpers shared by the table adapters: typed values in and out, error translation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from scrapersky.errors import RetryableStoreError

_ser = TypeSerializer()
_de = TypeDeserializer()

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


def raise_if_retryable(e: ClientError) -> None:
    if error_code(e) in THROTTLING:
        raise RetryableStoreError(str(e)) from e


def cancellation_codes(e: ClientError) -> list[str]:
    return [str(r.get("Code") or "None") for r in e.response.get("CancellationReasons", [])]


def cancellation_items(e: ClientError) -> list[dict[str, Any] | None]:
    return [de_item(r.get("Item")) for r in e.response.get("CancellationReasons", [])]
