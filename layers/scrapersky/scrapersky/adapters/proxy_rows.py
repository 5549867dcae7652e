"""The proxies table's layout, known in one place by the pool and the host book that share the table.

Rows `p_…` are proxies. Per host h a proxy row carries `n#h` (earliest start of the next request), `r#h`
(learnt rate, req/s), `c#h` (ceiling: just below a rate the host refused) and `a#h` (usual answer time).
Rows `host#<h>` hold what the pool was told and learnt of the host and its waiting line (see dynamo_hosts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters.ddb import de_item, is_condition_failure, ser
from scrapersky.adapters.expressions import Update
from scrapersky.domain.pacing import HostPace, Learnt
from scrapersky.models import ProxyState
from scrapersky.records import ProxyRecord

PROXY_PREFIX = "p_"
HOST_PREFIX = "host#"


@dataclass(frozen=True)
class HostKeys:
    """The attribute names a proxy row holds for one host."""

    next: str  # earliest start of the proxy's next request to the host
    rate: str
    ceiling: str
    answer: str

    @classmethod
    def of(cls, host: str) -> HostKeys:
        return cls(next=f"n#{host}", rate=f"r#{host}", ceiling=f"c#{host}", answer=f"a#{host}")

    @property
    def learnt(self) -> tuple[str, str, str]:
        """What a proxy learnt of the host (its next slot is not learnt: it may be a running cooldown)."""
        return self.rate, self.ceiling, self.answer


PREFIXES = HostKeys.of("")


def is_proxy(row: dict[str, Any]) -> bool:
    return str(row.get("proxy_id", "")).startswith(PROXY_PREFIX)


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def learnt_hosts(row: dict[str, Any]) -> list[str]:
    """The hosts a proxy row has learnt a pace for."""
    prefix = PREFIXES.rate
    return [k[len(prefix) :] for k in row if k.startswith(prefix)]


def booked_hosts(row: dict[str, Any]) -> dict[str, float]:
    """Each host the proxy has a next slot booked for, and when it opens."""
    prefix = PREFIXES.next
    return {k[len(prefix) :]: float(v) for k, v in row.items() if k.startswith(prefix)}


def learnt_pace(row: dict[str, Any], host: str) -> HostPace | None:
    """The pace the proxy learnt for the host; None when it learnt nothing of it."""
    keys = HostKeys.of(host)
    rate = row.get(keys.rate)
    if rate is None:
        return None
    return HostPace(rate=float(rate), ceiling=_float(row.get(keys.ceiling)), answer_s=_float(row.get(keys.answer)))


def next_at(row: dict[str, Any], host: str) -> float | None:
    return _float(row.get(HostKeys.of(host).next))


def learnt_fields(host: str, learnt: Learnt, *, pace: bool, answer: bool) -> dict[str, Any]:
    """The attributes a release writes of what it learnt: the next slot always; the pace (rate and ceiling)
    and the usual answer time when asked."""
    keys = HostKeys.of(host)
    out: dict[str, Any] = {keys.next: learnt.next_at}
    if pace:
        out[keys.rate] = learnt.pace.rate
        if learnt.pace.ceiling is not None:
            out[keys.ceiling] = learnt.pace.ceiling
    if answer:
        out[keys.answer] = round(learnt.pace.answer_s or 0.0, 4)
    return out


COUNTERS = ("fence", "succeeded", "failed", "rate_limited", "consecutive_errors")


def new_proxy_row(proxy_id: str, url: str, endpoint: str, labels: dict[str, str], now: float) -> dict[str, Any]:
    row = {"proxy_id": proxy_id, "url": url, "endpoint": endpoint, "labels": labels, "created_at": now}
    return {**row, "state": ProxyState.AVAILABLE.value, "lease_until": 0, **dict.fromkeys(COUNTERS, 0)}


def proxy_record(row: dict[str, Any], cooldowns: dict[str, float]) -> ProxyRecord:
    """A proxy row as a ProxyRecord, with the paces it learnt and the cooldowns (worked out by the pool)."""
    paces = {h: pace for h in learnt_hosts(row) if (pace := learnt_pace(row, h)) is not None}
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


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    """Every row of the table, strongly consistent (the pool is small: tens to hundreds of proxies)."""
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [de_item(i) or {} for page in pages for i in page.get("Items", [])]


def update(client: Any, table: str, proxy_id: str, u: Update, **extra: Any) -> dict[str, Any] | None:
    """One UpdateItem on a row (a proxy's `p_…` or a host's `host#…`); None when its condition refused it."""
    try:
        got: dict[str, Any] = client.update_item(
            TableName=table, Key={"proxy_id": ser(proxy_id)}, **u.kwargs(), **extra
        )
    except ClientError as e:
        if is_condition_failure(e):
            return None
        raise
    return got


def delete(client: Any, table: str, row_id: str) -> bool:
    """Deletes a row; False when there was none."""
    try:
        client.delete_item(
            TableName=table, Key={"proxy_id": ser(row_id)}, ConditionExpression="attribute_exists(proxy_id)"
        )
    except ClientError as e:
        if is_condition_failure(e):
            return False
        raise
    return True
