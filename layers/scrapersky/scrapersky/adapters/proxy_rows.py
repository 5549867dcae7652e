"""The proxies table's layout, known in one place by the pool and the host book that share the table.

- `p_…` rows are proxies: lease, fence, state, health and counters only. Their size does not depend on how
  many hosts the proxy has seen.
- `ph#<proxy>#<host>` rows are the pace of one proxy for one host (proxy_paces): `n` (earliest start of the
  next request), `r` (learnt rate, req/s), `c` (ceiling: just below a rate the host refused), `a` (usual
  answer time), `z`/`k` (the host's last refusal and the answers since), `f`/`u` (fence and lease end of the
  lease that booked the row) and `expires_at` (the table's TTL: a pace unused for hours goes by itself, so the
  table holds the hosts in use, not every host ever seen).
- `host#<h>` rows hold what the pool was told and learnt of the host and its waiting line (dynamo_hosts), and with
  a total limit (`total_rate`, a learnt `crawl_delay_s`) the host's next slot across the pool, `n` (host_slots).
- `index#proxies` lists the proxy ids (`ids`), so a worker reads the proxies by key instead of scanning a
  table full of pacing rows. `complete` marks that the list was built from a scan once (rows of a table
  written before the list existed are found by that scan).
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters.ddb import de_item, is_condition_failure, raise_if_retryable, ser
from scrapersky.adapters.expressions import Update
from scrapersky.domain.pacing import HostPace, Learnt
from scrapersky.errors import RetryableStoreError
from scrapersky.models import ProxyState
from scrapersky.records import HostRecord, ProxyRecord

PROXY_PREFIX = "p_"
HOST_PREFIX = "host#"
PACE_PREFIX = "ph#"
INDEX_ID = "index#proxies"
BATCH_GET_MAX = 100
LEGACY_PREFIXES = ("n#", "r#", "c#", "a#")  # per-host attributes proxy rows carried before the pacing rows


def is_proxy(row: dict[str, Any]) -> bool:
    return str(row.get("proxy_id", "")).startswith(PROXY_PREFIX)


def pace_id(proxy_id: str, host: str) -> str:
    return f"{PACE_PREFIX}{proxy_id}#{host}"


def pace_of_row(row: dict[str, Any]) -> tuple[str, str] | None:
    """(proxy, host) of a pacing row; None for any other row."""
    rid = str(row.get("proxy_id", ""))
    if not rid.startswith(PACE_PREFIX):
        return None
    proxy_id, _, host = rid[len(PACE_PREFIX) :].partition("#")
    return proxy_id, host


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def host_row_id(host: str) -> str:
    return f"{HOST_PREFIX}{host}"


def host_record(row: dict[str, Any] | None) -> HostRecord | None:
    """A `host#<h>` row as a HostRecord (without its proxies); None for any other row (or none)."""
    rid = str((row or {}).get("proxy_id", ""))
    if row is None or not rid.startswith(HOST_PREFIX):
        return None
    return HostRecord(
        host=rid[len(HOST_PREFIX) :],
        rate=_float(row.get("start_rate")),
        max_rate=_float(row.get("max_rate")),
        ceiling=_float(row.get("ceiling")),
        total_rate=_float(row.get("total_rate")),
        crawl_delay_s=_float(row.get("crawl_delay_s")),
        crawl_delay_at=_float(row.get("crawl_delay_at")),
        crawl_delay_until=_float(row.get("crawl_delay_until")),
        next_at=_float(row.get("n")),
    )


def host_records(rows: list[dict[str, Any]]) -> dict[str, HostRecord]:
    """The hosts among a scan's rows, by name."""
    return {rec.host: rec for rec in map(host_record, rows) if rec is not None}


def learnt_pace(row: dict[str, Any] | None) -> HostPace | None:
    """The pace a pacing row holds; None when the proxy learnt nothing of the host (or there is no row)."""
    if not row or row.get("r") is None:
        return None
    return HostPace(
        rate=float(row["r"]),
        ceiling=_float(row.get("c")),
        answer_s=_float(row.get("a")),
        refused_at=_float(row.get("z")),
        since_refusal=int(row.get("k", 0)),
    )


def next_at(row: dict[str, Any] | None) -> float | None:
    return _float((row or {}).get("n"))


# what a proxy learnt of a host (its next slot is not learnt: it may be a cooldown); `z`/`k`: when the host last
# refused it and the answers since (what the host admits between two refusals bounds its limit: domain/pacing)
LEARNT = ("r", "c", "a", "z", "k")


def learnt_fields(learnt: Learnt, *, pace: bool, answer: bool) -> dict[str, Any]:
    """The attributes a release writes of what it learnt: the next slot always; the pace (rate and ceiling)
    and the usual answer time when asked."""
    out: dict[str, Any] = {"n": learnt.next_at}
    if pace:
        out["r"] = learnt.pace.rate
        if learnt.pace.ceiling is not None:
            out["c"] = learnt.pace.ceiling
        if learnt.pace.refused_at is not None:
            out.update(z=learnt.pace.refused_at, k=learnt.pace.since_refusal)
    if answer:
        out["a"] = round(learnt.pace.answer_s or 0.0, 4)
    return out


COUNTERS = ("fence", "succeeded", "failed", "rate_limited", "consecutive_errors")


def new_proxy_row(proxy_id: str, url: str, endpoint: str, labels: dict[str, str], now: float) -> dict[str, Any]:
    row = {"proxy_id": proxy_id, "url": url, "endpoint": endpoint, "labels": labels, "created_at": now}
    return {**row, "state": ProxyState.AVAILABLE.value, "lease_until": 0, **dict.fromkeys(COUNTERS, 0)}


def proxy_record(row: dict[str, Any], paces: dict[str, HostPace], cooldowns: dict[str, float]) -> ProxyRecord:
    """A proxy row as a ProxyRecord, with the paces it learnt and the cooldowns (worked out by the pool)."""
    return ProxyRecord(
        proxy_id=str(row["proxy_id"]),
        url=str(row.get("url", "")),
        endpoint=str(row.get("endpoint", "")),
        state=ProxyState(row.get("state", ProxyState.AVAILABLE)),
        labels=dict(row.get("labels") or {}),
        lease_until=float(row.get("lease_until", 0)),
        checks=int(row.get("checks", 0)),
        next_check_at=float(row.get("next_check_at", 0)),
        last_used_at=_float(row.get("last_used_at")),
        last_success_at=_float(row.get("last_success_at")),
        paces=paces,
        cooldowns=cooldowns,
        **{k: int(row.get(k, 0)) for k in COUNTERS},
    )


def pace_rows_by_proxy(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The pacing rows among a scan's rows: proxy -> host -> row."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        ids = pace_of_row(row)
        if ids is not None:
            out.setdefault(ids[0], {})[ids[1]] = row
    return out


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    """Every row of the table, strongly consistent: for the admin views only (never on the lease path)."""
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [de_item(i) or {} for page in pages for i in page.get("Items", [])]


def batch_get(client: Any, table: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rows with these ids that exist, by id, strongly consistent (100 keys per call)."""
    out: dict[str, dict[str, Any]] = {}
    unique = sorted(set(ids))
    for i in range(0, len(unique), BATCH_GET_MAX):
        keys = [{"proxy_id": ser(rid)} for rid in unique[i : i + BATCH_GET_MAX]]
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(8):
            got = client.batch_get_item(RequestItems=request)
            for item in got.get("Responses", {}).get(table, []):
                row = de_item(item) or {}
                out[str(row["proxy_id"])] = row
            request = got.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.02 * 2**attempt)  # throttled: back off before asking for the rest
        if request:  # never a snapshot silently short of proxies or pacing rows
            raise RetryableStoreError(f"{table}: keys left unread after retries")
    return out


def update(client: Any, table: str, row_id: str, u: Update, **extra: Any) -> dict[str, Any] | None:
    """One UpdateItem on a row (a proxy's, a host's or a pacing row); None when its condition refused it."""
    try:
        got: dict[str, Any] = client.update_item(TableName=table, Key={"proxy_id": ser(row_id)}, **u.kwargs(), **extra)
    except ClientError as e:
        if is_condition_failure(e):
            return None
        raise_if_retryable(e)  # throttling is a RetryableStoreError, as from every other adapter
        raise
    return got


def update_or_current(client: Any, table: str, row_id: str, u: Update) -> tuple[bool, dict[str, Any]]:
    """One conditional UpdateItem: (True, the row as written) or, when the condition refused it, (False, the row
    as it is: the refusal carries it, so the caller is better informed at no extra read)."""
    try:
        got = client.update_item(
            TableName=table,
            Key={"proxy_id": ser(row_id)},
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **u.kwargs(),
        )
    except ClientError as e:
        if is_condition_failure(e):
            return False, de_item(e.response.get("Item")) or {}
        raise_if_retryable(e)
        raise
    return True, de_item(got["Attributes"]) or {}


def delete(client: Any, table: str, row_id: str) -> bool:
    """Deletes a row; False when there was none."""
    try:
        client.delete_item(
            TableName=table, Key={"proxy_id": ser(row_id)}, ConditionExpression="attribute_exists(proxy_id)"
        )
    except ClientError as e:
        if is_condition_failure(e):
            return False
        raise_if_retryable(e)
        raise
    return True


# ---- the list of proxies -------------------------------------------------------------------------------------
def _index(client: Any, table: str, expression: str, **values: Any) -> None:
    client.update_item(
        TableName=table,
        Key={"proxy_id": ser(INDEX_ID)},
        UpdateExpression=expression,
        ExpressionAttributeValues={f":{k}": ser(v) for k, v in values.items()},
    )


def list_proxy(client: Any, table: str, proxy_id: str) -> None:
    """Puts a proxy on the list (before its row is written: a listed id without a row is skipped)."""
    _index(client, table, "ADD ids :ids", ids={proxy_id})


def unlist_proxy(client: Any, table: str, proxy_id: str) -> None:
    """Takes a proxy off the list (after its row was deleted)."""
    _index(client, table, "DELETE ids :ids", ids={proxy_id})


def proxy_ids(client: Any, table: str) -> list[str]:
    """The listed proxy ids; the first call on a table written before the list existed builds it from a scan."""
    got = de_item(client.get_item(TableName=table, Key={"proxy_id": ser(INDEX_ID)}, ConsistentRead=True).get("Item"))
    if got is not None and got.get("complete"):
        return sorted(got.get("ids") or [])
    ids = [str(r["proxy_id"]) for r in scan(client, table) if is_proxy(r)]
    expression = "SET complete = :yes" + (" ADD ids :ids" if ids else "")
    _index(client, table, expression, yes=True, **({"ids": set(ids)} if ids else {}))
    return sorted(set(ids) | set((got or {}).get("ids") or []))


def strip_legacy(client: Any, table: str, row: dict[str, Any]) -> None:
    """Drops the per-host attributes a proxy row carried before the pacing rows (they are read no more)."""
    legacy = [k for k in row if k.startswith(LEGACY_PREFIXES)]
    for i in range(0, len(legacy), 100):
        u = Update().remove(*legacy[i : i + 100]).when("attribute_exists(proxy_id)")
        update(client, table, str(row["proxy_id"]), u)
